"""Every file of the shared corpus, uploaded through the API to real workers, ends the way its
kind calls for: ``completed`` with chunks, or ``failed`` with the right reason; none stays
``processing``. Once with the embedded components (local model, LanceDB), once with the
production clients against the Gemini and Pinecone doubles, where every chunk must have
exactly one vector, in its tenant's namespace."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Chunk, Document, Status
from tests.corpus import AVAILABLE, CORPUS, expected_outcome, manifest
from tests.polling import wait_for_documents

if not AVAILABLE:
    pytest.skip(f"no corpus at {CORPUS}", allow_module_level=True)

pytestmark = [pytest.mark.corpus, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = manifest()


# The 607-page file is freeculture.pdf, GeoTopo-komprimiert.pdf and ISO-IEC-29500-2.pdf put
# end to end, all three uploaded in the same run: the local-model run leaves it out (it would
# add six minutes of embedding the same text again), the doubles run keeps it for scale.
SCALE_ONLY = {"synthetic-concat-607p.pdf"}


def upload_corpus(client, *, leave_out=frozenset()) -> dict[str, str]:
    ids = {}
    for name in ROWS:
        if name in leave_out:
            continue
        content = (CORPUS / name).read_bytes()
        response = client.post(
            "/api/ingest/",
            # test.docx and synthetic-not-a-pdf.pdf are the same bytes: every file is
            # processed on its own, not answered as a duplicate of the other.
            {"file": SimpleUploadedFile(name, content), "keep_duplicate": "true"},
            format="multipart",
        )
        if not content:
            # empty.pdf is 0 bytes: refused at the door with a reason, never a document.
            assert response.status_code == 400, name
            assert "empty" in response.json()["error"]["message"]
            continue
        assert response.status_code == 202, (name, response.content)
        ids[name] = response.json()["document_id"]
    return ids


def check_outcomes(ids: dict[str, str], worker) -> list[Document]:
    documents = wait_for_documents(list(ids.values()), timeout=1500, worker=worker)
    by_name = {d.original_filename: d for d in documents}
    wrong = []
    for name, document in by_name.items():
        expected = expected_outcome(ROWS[name])
        if expected == "text":
            ok = document.status == Status.COMPLETED and document.chunk_count > 0
        else:
            ok = document.status == Status.FAILED and document.failure_kind == expected
        if not ok:
            wrong.append(
                (name, expected, document.status, document.failure_kind, document.failure_message)
            )
        if document.status == Status.FAILED:
            assert document.failure_message, name
    assert not wrong, wrong
    assert all(d.status != Status.PROCESSING for d in documents)
    return documents


@pytest.fixture(scope="module")
def corpus_worker(django_db_setup, django_db_blocker):
    """A worker of its own for the corpus, on its own queue, so a run that times out leaves
    no backlog in front of other tests' documents."""
    import os

    from tests.conftest import _worker_env
    from tests.workers import WorkerProcess

    queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"] + "-corpus"
    with django_db_blocker.unblock():
        env = _worker_env({"CELERY_TASK_DEFAULT_QUEUE": queue})
    worker = WorkerProcess(env=env, name="corpus", queue=queue)
    worker.start()
    yield worker
    worker.stop()
    from backoffice.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


@pytest.fixture
def corpus_queue(corpus_worker):
    from backoffice.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = corpus_worker.queue
    yield corpus_worker
    app.conf.task_default_queue = previous


@pytest.mark.timeout(1800)
def test_the_whole_corpus_ends_as_its_kinds_call_for(personas, api_for, corpus_queue):
    ids = upload_corpus(api_for(personas.staff_a), leave_out=SCALE_ONLY)
    documents = check_outcomes(ids, corpus_queue)
    scans = [d for d in documents if ROWS[d.original_filename]["kind"].startswith("scan")]
    assert scans and all("ocr" in d.stage_timings for d in scans if d.status == "completed")


@pytest.mark.timeout(1800)
def test_the_corpus_against_the_gemini_and_pinecone_doubles_has_one_vector_per_chunk(
    personas, api_for, remote_queue, provider_doubles
):
    gemini, pinecone = provider_doubles
    gemini.clear_faults()
    pinecone.clear_faults()
    ids = upload_corpus(api_for(personas.staff_b))
    documents = check_outcomes(ids, remote_queue)
    expected_ids = sorted(
        Chunk.objects.filter(document__in=documents).values_list("vector_id", flat=True)
    )
    assert expected_ids
    assert sorted(pinecone.ids(personas.tenant_b.vector_namespace)) == expected_ids
    assert pinecone.ids(personas.tenant_a.vector_namespace) == []
    for document in documents:
        assert document.vector_count == document.chunk_count
