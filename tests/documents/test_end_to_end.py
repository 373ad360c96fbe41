"""Upload through the API; a real worker process picks the document up; its status ends."""

from __future__ import annotations

import io

import pytest

from documents.errors import FailureKind
from documents.models import Chunk, Status
from tests.polling import wait_for_document, wait_for_documents

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STORY = (
    "The lighthouse keeper climbed the stairs every evening. He lit the lamp and watched "
    "the ships pass the rocks. In winter the storms were fierce and the sea was grey. "
) * 30


def upload(client, name: str, content: bytes, **fields):
    handle = io.BytesIO(content)
    handle.name = name
    response = client.post("/api/ingest/", {"file": handle, **fields}, format="multipart")
    assert response.status_code == 202, response.content
    return response.json()


def test_a_text_upload_is_processed_to_completed_with_chunks_and_vectors(
    personas, api_for, celery_worker
):
    body = upload(api_for(personas.staff_a), "story.txt", STORY.encode())
    document = wait_for_document(body["document_id"], worker=celery_worker)
    assert document.status == Status.COMPLETED, document.failure_message
    assert document.stage == "done"
    assert document.chunk_count > 1
    assert document.chunk_count == Chunk.objects.filter(document=document).count()
    assert document.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert document.embedding_dimension == 384
    assert set(document.stage_timings) >= {"downloading", "extracting", "chunking", "embedding"}
    assert document.attempts == 1 and document.last_task_id == body["task_id"]
    detail = api_for(personas.staff_a).get(body["status_url"]).json()
    assert detail["status"] == "completed" and detail["progress"]["percent"] == 100

    from django.conf import settings

    from documents.pipeline.stores.lancedb_store import LanceDBStore

    store = LanceDBStore(uri=settings.LANCEDB_URI, dimension=384)
    ids = store.list_ids(personas.tenant_a.vector_namespace, f"{document.pk}#")
    assert sorted(ids) == sorted(c.vector_id for c in Chunk.objects.filter(document=document))
    assert store.list_ids(personas.tenant_b.vector_namespace, f"{document.pk}#") == []


def test_transient_errors_retry_three_times_then_fail_with_one_sentry_event(
    personas, api_for, remote_queue, provider_doubles, sentry_session_double
):
    gemini, _ = provider_doubles
    gemini.clear_faults()
    sentry_session_double.clear()
    gemini.fail_next(503, times=50)
    try:
        body = upload(api_for(personas.staff_a), "story.txt", STORY.encode())
        document = wait_for_document(body["document_id"], worker=remote_queue, timeout=120)
    finally:
        gemini.clear_faults()
    assert document.status == Status.FAILED
    assert document.failure_kind == FailureKind.UNAVAILABLE
    assert document.attempts == 4  # the first try and three retries
    assert [entry["kind"] for entry in document.attempt_log] == ["unavailable"] * 4
    import time

    deadline = time.monotonic() + 15
    while not sentry_session_double.events and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a second event, if one were (wrongly) sent, would arrive by now
    assert len(sentry_session_double.events) == 1
    assert sentry_session_double.exception_types()[-1].endswith("TransientError")


def test_a_rate_limit_is_retried_after_the_servers_delay_and_then_succeeds(
    personas, api_for, remote_queue, provider_doubles
):
    gemini, pinecone = provider_doubles
    gemini.clear_faults()
    # the stage waits out three per-minute 429s itself; the fourth ends the attempt
    gemini.fail_next(429, retry_delay="1.5s", times=4)
    body = upload(api_for(personas.staff_b), "story.txt", STORY.encode())
    document = wait_for_document(body["document_id"], worker=remote_queue, timeout=120)
    assert document.status == Status.COMPLETED, document.failure_message
    assert document.attempts == 2
    assert document.attempt_log[0]["kind"] == "rate_limited"
    ids = pinecone.ids(personas.tenant_b.vector_namespace)
    assert sorted(ids) == sorted(c.vector_id for c in Chunk.objects.filter(document=document))
    assert document.embedding_dimension == 768


def test_small_documents_queued_together_share_embedding_batches_and_all_complete(
    personas, celery_worker
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from documents import services

    # Queued in one transaction, so all eight messages leave at once (after commit): the
    # worker's two processes each take one document and claim queued ones as batch-mates.
    with transaction.atomic():
        created = [
            services.document_create(
                tenant=personas.tenant_a,
                uploaded_file=SimpleUploadedFile(f"note-{n}.txt", f"Note {n}. {STORY}".encode()),
            )
            for n in range(8)
        ]
    documents = wait_for_documents([d.pk for d in created], worker=celery_worker)
    for document in documents:
        assert document.status == Status.COMPLETED, document.failure_message
        assert document.attempts == 1 and document.vector_count == document.chunk_count
    # every document's chunks went into one shared embedding, recorded on each of them
    shared = [d.stage_timings["embedding"]["batch"] for d in documents]
    embeddings = {(s["documents"], s["chunks"], s["seconds"]) for s in shared}
    assert sum(documents for documents, _, _ in embeddings) == len(documents)
    assert len(embeddings) < len(documents) and max(s["documents"] for s in shared) >= 2
