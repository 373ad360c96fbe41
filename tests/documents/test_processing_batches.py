"""Batches across documents (documents/processing.py: gather, Batch, settle_mate), run in the
test process: a run whose document is small claims further small queued documents and embeds
their chunks together; each keeps its own claim, progress and outcome. Real stages, the local
embedder, a temporary LanceDB; PostgreSQL's lock timeout makes the database fail on demand."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from backoffice.celery import app
from documents import lifecycle, processing, services
from documents.clients import get_vector_store
from documents.errors import FailureKind, TransientError
from documents.models import Document, EmbeddingCacheEntry, Stage, Status
from documents.pipeline.types import VectorRecord
from tests.documents.pipeline import makedocs
from tests.documents.test_processing import (
    STORY,
    attempt,
    in_thread,
    lock_timeout,
    upload,
    vector_ids,
    wait_for_stage,
)

# Uploads queue a message after commit; a session worker of this test process would take it
# and process the document behind the test's back, so messages go to a queue nobody reads.
pytestmark = pytest.mark.usefixtures("isolated_queue")


def story(n: int) -> bytes:
    # different bytes each: the same bytes twice would be answered as a duplicate
    return (f"Chapter {n}. " + STORY).encode()


def shared(document: Document) -> dict:
    return document.stage_timings["embedding"]["batch"]


def fresh(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


@pytest.mark.django_db
def test_small_documents_are_embedded_together_and_each_completes(personas, local_clients):
    lead, *mates = [upload(personas.tenant_a, f"s{n}.txt", story(n)) for n in range(3)]
    other_tenant = upload(personas.tenant_b, "b.txt", story(9))
    outcome = attempt(lead, task_id="t-batch")
    assert outcome.error is None and outcome.summary["document_id"] == str(lead.pk)
    documents = [fresh(d) for d in (lead, *mates, other_tenant)]
    chunks = sum(d.chunk_count for d in documents)
    for document in documents:
        assert (document.status, document.stage) == (Status.COMPLETED, Stage.DONE)
        assert document.attempts == 1 and document.last_task_id == "t-batch"
        assert document.chunks_done == document.chunk_count == document.vector_count
        assert sorted(vector_ids(document)) == sorted(
            document.chunks.values_list("vector_id", flat=True)
        )
        assert shared(document)["documents"] == 4 and shared(document)["chunks"] == chunks
    # each document's embedding seconds are its share of the one embedding, by chunks
    total = sum(d.stage_timings["embedding"]["seconds"] for d in documents)
    assert total == pytest.approx(shared(documents[0])["seconds"], abs=0.01)
    # and each tenant's vectors are in its own namespace only
    assert (
        vector_ids(other_tenant)
        and get_vector_store().list_ids(personas.tenant_a.vector_namespace, f"{other_tenant.pk}#")
        == []
    )


@pytest.mark.django_db
def test_a_batch_mate_that_cannot_be_read_fails_alone(personas, local_clients, tmp_path):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text on a page."] * 3)
    damaged = makedocs.truncated(pdf, tmp_path / "b.pdf")
    lead = upload(personas.tenant_a, "lead.txt", story(1))
    broken = upload(personas.tenant_a, "b.pdf", damaged.read_bytes())
    mate = upload(personas.tenant_a, "mate.txt", story(2))
    outcome = attempt(lead)
    assert outcome.error is None and outcome.retry_in is None
    broken = fresh(broken)
    assert broken.status == Status.FAILED and broken.failure_kind == FailureKind.CORRUPT
    assert [e["stage"] for e in broken.attempt_log] == [Stage.EXTRACTING]
    for document in (fresh(lead), fresh(mate)):
        assert document.status == Status.COMPLETED
        assert shared(document)["documents"] == 2


@pytest.mark.django_db
def test_more_documents_join_only_until_the_batch_holds_its_chunks(
    personas, local_clients, settings
):
    settings.PIPELINE_BATCH_CHUNKS = 5
    documents = [upload(personas.tenant_a, f"s{n}.txt", story(n)) for n in range(6)]
    attempt(documents[0])
    after = [fresh(d) for d in documents]
    per_document = after[0].chunk_count
    assert 1 < per_document < 5
    # documents join while the batch holds fewer than 5 chunks
    joined = -(-5 // per_document)
    assert [d.status for d in after] == (
        [Status.COMPLETED] * joined + [Status.PROCESSING] * (6 - joined)
    )
    assert all(d.stage == Stage.QUEUED and d.attempts == 0 for d in after[joined:])
    assert shared(after[0]) == shared(after[joined - 1])
    assert shared(after[0])["documents"] == joined


@pytest.mark.django_db
def test_a_retry_and_a_large_document_run_alone(personas, local_clients, settings):
    waiting = upload(personas.tenant_a, "waiting.txt", story(1))
    large = upload(personas.tenant_a, "large.txt", story(2))
    settings.PIPELINE_BATCH_MAX_DOCUMENT_BYTES = large.size_bytes - 1
    retried = upload(personas.tenant_a, "retried.txt", story(3))
    attempt(retried, retries=1)  # a retry keeps its own message's count: no batch
    assert fresh(retried).status == Status.COMPLETED
    assert shared(fresh(retried))["documents"] == 1
    assert fresh(waiting).stage == Stage.QUEUED and fresh(waiting).attempts == 0
    attempt(waiting)  # its first attempt: the large document does not join
    assert shared(fresh(waiting))["documents"] == 1
    assert fresh(large).stage == Stage.QUEUED


@pytest.mark.django_db
def test_an_embedder_that_sends_titles_embeds_each_document_alone(personas, remote_clients):
    lead = upload(personas.tenant_a, "a.txt", story(1))
    other = upload(personas.tenant_a, "b.txt", story(2))
    attempt(lead)
    assert fresh(lead).status == Status.COMPLETED
    assert fresh(other).stage == Stage.QUEUED and fresh(other).attempts == 0


def ocr_pdf(tmp_path) -> bytes:
    # Enough pages that OCR is still reading when a loaded machine's test thread gets to act.
    pages = [f"Page {n} of a scanned letter about the harbour." for n in range(16)]
    return makedocs.image_pdf(tmp_path / "scan.pdf", pages).read_bytes()


@pytest.mark.django_db(transaction=True)
def test_documents_cancelled_mid_batch_leave_it_and_the_rest_complete(
    personas, local_clients, tmp_path
):
    lead = upload(personas.tenant_a, "lead.txt", story(1))
    mate = upload(personas.tenant_a, "mate.txt", story(2))
    scan = upload(personas.tenant_a, "scan.pdf", ocr_pdf(tmp_path))
    running = in_thread(attempt, lead)
    # the scan is read last, by OCR page after page: cancel the two already chunked
    wait_for_stage(scan, Stage.OCR)
    assert fresh(mate).stage == Stage.CHUNKING
    services.documents_cancel(queryset=Document.objects.filter(pk__in=[lead.pk, mate.pk]))
    assert running.result(timeout=120) == processing.Outcome()
    for document in (fresh(lead), fresh(mate)):
        assert document.status == Status.FAILED
        assert document.failure_kind == FailureKind.CANCELLED
        assert vector_ids(document) == []
    scan = fresh(scan)
    assert scan.status == Status.COMPLETED, scan.failure_message
    assert shared(scan)["documents"] == 1 and vector_ids(scan)


@pytest.mark.django_db(transaction=True)
def test_a_batch_mate_taken_over_mid_batch_is_left_to_its_new_owner(
    personas, local_clients, tmp_path
):
    lead = upload(personas.tenant_a, "lead.txt", story(1))
    mate = upload(personas.tenant_a, "mate.txt", story(2))
    scan = upload(personas.tenant_a, "scan.pdf", ocr_pdf(tmp_path))
    running = in_thread(attempt, lead, task_id="slow")
    wait_for_stage(scan, Stage.OCR)
    # the mate's run is taken for dead: its heartbeat is old, another delivery claims it
    stale = lifecycle.stale_before(timezone.now()) - timedelta(seconds=1)
    Document.objects.filter(pk=mate.pk).update(heartbeat_at=stale)
    taken = lifecycle.claim(str(mate.pk), task_id="fresh", retries=0)
    assert taken is not None
    get_vector_store().upsert(
        mate.tenant.vector_namespace, [VectorRecord(f"{mate.pk}#0", [1.0] + [0.0] * 383, {})]
    )
    outcome = running.result(timeout=120)
    assert outcome.error is None and outcome.summary["status"] == Status.COMPLETED
    mate = fresh(mate)
    assert mate.status == Status.PROCESSING and mate.claimed_by == taken.owner
    assert vector_ids(mate) == [f"{mate.pk}#0"]
    for document in (fresh(lead), fresh(scan)):
        assert document.status == Status.COMPLETED and shared(document)["documents"] == 2


def lock_embedding_cache(seconds: float, held: threading.Event, release: threading.Event) -> None:
    """Another connection holds the embedding cache's table, as a long migration would, until
    ``release`` is set (at most ``seconds``); ``held`` is set once it holds it."""
    with transaction.atomic(), connection.cursor() as cursor:
        table = EmbeddingCacheEntry._meta.db_table
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        held.set()
        release.wait(timeout=seconds)


def queued_headers(queue: str) -> list[dict]:
    with app.connection_for_read() as conn:
        return [json.loads(m)["headers"] for m in conn.default_channel.client.lrange(queue, 0, -1)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_shared_embedding_is_each_documents_own_transient_failure(
    personas, local_clients, postgres_only, isolated_queue
):
    lead, *mates = [upload(personas.tenant_a, f"s{n}.txt", story(n)) for n in range(3)]
    held, release = threading.Event(), threading.Event()
    holder = in_thread(lock_embedding_cache, 120.0, held, release)
    assert held.wait(timeout=30)  # a loaded machine may be slow to start the holder
    lock_timeout(300)  # the run's connection gives up on a lock after 0.3 s
    try:
        outcome = attempt(lead)
    finally:
        lock_timeout(0)
        release.set()
    holder.result(timeout=30)
    # the lead's retry is the task's own (Celery retries it after 2 s) ...
    assert outcome.retry_in == 2.0 and isinstance(outcome.error, TransientError)
    for document in (fresh(lead), *(fresh(m) for m in mates)):
        assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
        assert document.claimed_by == "" and document.failure_kind == FailureKind.UNAVAILABLE
        assert [e["stage"] for e in document.attempt_log] == [Stage.EMBEDDING]
        assert "lock timeout" in document.attempt_log[0]["message"]
    # ... and each mate's is a message of its own, counting the batch's attempt as its first
    retries = [h for h in queued_headers(isolated_queue) if h["retries"]]
    assert sorted(h["id"] for h in retries) == sorted(fresh(m).last_task_id for m in mates)
    assert all(h["retries"] == 1 and h["eta"] for h in retries)  # after the 2 s backoff


@pytest.mark.django_db
def test_heartbeats_between_members_keep_the_waiting_ones_and_spare_the_completed(
    personas, local_clients, monkeypatch
):
    # a heartbeat for the others before every member's step, as on a slow machine
    monkeypatch.setattr(processing, "_KEEP_ALIVE_SECONDS", 0.0)
    lead, *mates = [upload(personas.tenant_a, f"s{n}.txt", story(n)) for n in range(3)]
    outcome = attempt(lead)
    assert outcome.error is None and outcome.summary["status"] == Status.COMPLETED
    for document in (fresh(lead), *(fresh(m) for m in mates)):
        assert document.status == Status.COMPLETED and document.claimed_by == ""
        assert shared(document)["documents"] == 3
