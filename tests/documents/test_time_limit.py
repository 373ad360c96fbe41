"""PIPELINE_MAX_DOCUMENT_SECONDS through a real worker: the processing task's soft time limit
ends a document that outlives it ``failed`` / ``time_limit`` with a sentence naming the
limit, once (never retried), and the pool process that ran it goes on to the next task."""

from __future__ import annotations

import io

import pytest

from backoffice.celery import app
from documents.errors import FailureKind
from documents.lifecycle import transient_failure
from documents.models import Document, Status
from tests.conftest import dedicated_worker
from tests.polling import wait_for_document
from tests.workers import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LIMIT_SECONDS = 3

# About 6 MB of sentences: extracted at once, then split into sentences and chunks for many
# seconds. The limit must stop a stage that runs Python code; loading the local model (5 s to
# a minute here, by the machine's load) is left out of it: a soft limit that fired inside
# torch's import would leave the process unable to import it again.
LONG_TEXT = "\n".join(
    f"Entry {n} of the keeper's log: ship {n * 7919 % 10007} passed the rocks at "
    f"{n % 24:02d}:{n * 13 % 60:02d}, wind {n * 31 % 360} degrees, sea state {n % 9}, "
    f"lamp checked by assistant {n * 17 % 101} and logged in volume {n // 500 + 1}."
    for n in range(40_000)
)


@pytest.fixture(scope="module")
def slow_limit_worker(django_db_setup, django_db_blocker):
    settings_env = {
        "PIPELINE_MAX_DOCUMENT_SECONDS": str(LIMIT_SECONDS),
        # the hard limit only for a task the soft one cannot reach; not this test's path
        "PIPELINE_TIME_LIMIT_GRACE_SECONDS": "60",
    }
    with dedicated_worker("timelimit", settings_env, django_db_blocker=django_db_blocker) as worker:
        yield worker


def upload(client, name: str, text: str) -> str:
    handle = io.BytesIO(text.encode())
    handle.name = name
    response = client.post("/api/ingest/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    return response.json()["document_id"]


def test_a_document_over_its_wall_time_fails_once_as_time_limit_and_the_worker_goes_on(
    personas, api_for, slow_limit_worker
):
    client = api_for(personas.staff_a)
    children = slow_limit_worker.child_pids()
    slow = wait_for_document(
        upload(client, "log.txt", LONG_TEXT), worker=slow_limit_worker, timeout=150
    )
    assert slow.status == Status.FAILED, slow.failure_message
    assert slow.failure_kind == FailureKind.TIME_LIMIT, slow.failure_message
    assert f"longer than the limit of {LIMIT_SECONDS} seconds per document" in (
        slow.failure_message
    )
    assert "stopped after" in slow.failure_message
    # permanent: one attempt, no loss of a worker, never picked by the scheduled retry
    assert slow.attempts == 1 and slow.worker_losses == 0
    assert [entry["kind"] for entry in slow.attempt_log] == [FailureKind.TIME_LIMIT]
    assert not Document.objects.filter(transient_failure(), pk=slow.pk).exists()

    # The same pool process, still alive, runs the next task.
    assert ping(slow_limit_worker)
    assert slow_limit_worker.child_pids() == children
    assert app.send_task("documents.test_celery", args=["still here"]).get(timeout=60) == (
        "still here"
    )
    assert slow_limit_worker.child_pids() == children
