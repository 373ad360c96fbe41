"""The hostile corpus (tests/hostile/make_hostile.py) uploaded through the API to a real
worker, with a normal document from the shared corpus queued behind it.

Each hostile file ends ``failed`` with its own kind and a sentence naming the limit and the
value (the form that draws itself completes), in one attempt, without costing the worker a
process; the normal document completes; the worker still answers. The worker runs with
some budgets lowered (tests/hostile/worker_cases.py), passed as its settings.
bench/bench_hostile_worker.py times the same files and samples the worker's memory.
"""

from __future__ import annotations

import pytest

from documents.errors import FailureKind
from documents.models import Status
from tests.conftest import dedicated_worker
from tests.corpus import AVAILABLE, CORPUS
from tests.hostile.worker_cases import CASES, COMPLETED, WORKER_SETTINGS, write_all
from tests.polling import wait_for_documents
from tests.workers import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

NORMAL = "pdflatex-4-pages.pdf"


@pytest.fixture(scope="module")
def hostile_worker(django_db_setup, django_db_blocker):
    with dedicated_worker(
        "hostile", WORKER_SETTINGS, django_db_blocker=django_db_blocker, concurrency=2
    ) as worker:
        yield worker


def upload(client, path) -> str:
    with path.open("rb") as handle:
        response = client.post("/api/ingest/", {"file": handle}, format="multipart")
    assert response.status_code == 202, (path.name, response.content)
    return response.json()["document_id"]


@pytest.mark.skipif(not AVAILABLE, reason="the shared corpus is not here")
@pytest.mark.timeout(600)
def test_every_hostile_file_fails_for_its_own_reason_and_the_normal_one_behind_completes(
    personas, api_for, hostile_worker, tmp_path
):
    files = write_all(tmp_path / "hostile")
    client = api_for(personas.staff_a)
    ids = {case.name: upload(client, files[case.name]) for case in CASES}
    ids["normal"] = upload(client, CORPUS / NORMAL)

    documents = dict(
        zip(
            ids,
            wait_for_documents(list(ids.values()), worker=hostile_worker, timeout=300),
            strict=True,
        )
    )

    outcomes = {
        name: document.status if document.status == COMPLETED else document.failure_kind
        for name, document in documents.items()
    }
    assert outcomes == {
        **{case.name: case.outcome for case in CASES},
        "normal": COMPLETED,
    }, {name: d.failure_message for name, d in documents.items()}
    for case in CASES:
        document = documents[case.name]
        for fragment in case.fragments:
            assert fragment in document.failure_message, (case.name, document.failure_message)
        if case.outcome != COMPLETED:
            assert document.status == Status.FAILED
            assert case.outcome not in FailureKind.TRANSIENT  # never retried
    # One attempt each: nothing was retried, and no document cost the worker a process, so
    # none took a pool process over WORKER_SETTINGS' memory limit either (the watchdog's kill
    # would count as a worker loss).
    assert {name: (d.attempts, d.worker_losses) for name, d in documents.items()} == {
        name: (1, 0) for name in documents
    }
    assert documents["normal"].chunk_count > 0
    assert ping(hostile_worker)
