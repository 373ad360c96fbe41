"""The orchestrator, run in the test process: real stages on small generated files, the local
embedder or the Gemini double, a temporary LanceDB or the Pinecone double. Every way an
attempt can end is covered here; the worker-level tests only prove the wiring."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone

from documents import broker, lifecycle, processing, services
from documents.clients import get_vector_store
from documents.errors import (
    ApplicationError,
    FailureKind,
    PermanentError,
    RepeatedWorkerLoss,
    TransientError,
)
from documents.models import Chunk, DeletedDocument, Document, Stage, Status, VectorState
from documents.pipeline.embedders.gemini import seconds_until_daily_reset
from documents.pipeline.types import VectorRecord
from documents.tasks import process_document as process_task
from documents.vector_state import Written
from tests.documents.conftest import use_doubles
from tests.documents.pipeline import makedocs
from tests.doubles.gemini import GeminiDouble
from tests.doubles.pinecone import PineconeDouble
from tests.factories import make_document

# Uploads queue a message after commit; a session worker of this test process would take it
# and process the document behind the test's back, so messages go to a queue nobody reads.
pytestmark = pytest.mark.usefixtures("isolated_queue")

STORY = (
    "The lighthouse keeper climbed the stairs every evening. He lit the lamp and watched "
    "the ships pass the rocks. In winter the storms were fierce and the sea was grey. "
) * 12


def upload(tenant, name: str, content: bytes) -> Document:
    return services.document_create(
        tenant=tenant, uploaded_file=SimpleUploadedFile(name, content), uploaded_by=None
    )


def attempt(document, *, task_id="t1", retries=0, max_retries=3) -> processing.Outcome:
    return processing.process_document(
        str(document.pk), task_id=task_id, retries=retries, max_retries=max_retries
    )


def vector_ids(document) -> list[str]:
    return get_vector_store().list_ids(document.tenant.vector_namespace, f"{document.pk}#")


def in_thread(function, *args, **kwargs):
    """Run ``function`` in another thread (its own database connection), for tests that act
    on a document while its attempt is running."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


def wait_for_stage(document, stage: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while Document.objects.get(pk=document.pk).stage != stage:
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.02)


# --- backoff ----------------------------------------------------------------------------------


def test_in_task_retries_wait_2_4_and_8_seconds(settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    assert [processing.retry_countdown(n, None) for n in range(3)] == [2.0, 4.0, 8.0]
    assert processing.longest_backoff() == 8.0


def test_a_longer_delay_given_by_the_server_wins(settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    assert processing.retry_countdown(0, 38.9) == 38.9
    assert processing.retry_countdown(2, 1.0) == 8.0


# --- every branch of an attempt ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_text_file_completes_with_its_chunks_vectors_and_stage_timings(personas, local_clients):
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    outcome = attempt(document)
    assert outcome.error is None and outcome.retry_in is None
    assert outcome.summary == {
        "document_id": str(document.pk),
        "status": Status.COMPLETED,
        "chunks": document.chunks.count(),
    }
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.COMPLETED, Stage.DONE)
    assert document.chunk_count > 1 and document.vector_count == document.chunk_count
    assert document.embedding_dimension == 384 and document.claimed_by == ""
    assert set(document.stage_timings) == {
        "downloading",
        "extracting",
        "chunking",
        "embedding",
        "indexing",
    }
    assert all("seconds" in timing for timing in document.stage_timings.values())
    assert sorted(vector_ids(document)) == sorted(
        Chunk.objects.filter(document=document).values_list("vector_id", flat=True)
    )
    assert get_vector_store().list_ids(personas.tenant_b.vector_namespace, "") == []


@pytest.mark.django_db
def test_a_pdf_is_read_page_by_page_and_its_chunks_keep_their_pages(
    personas, local_clients, tmp_path
):
    pdf = makedocs.text_pdf(tmp_path / "two.pdf", ["First page about apples.", "Pears here."])
    document = upload(personas.tenant_a, "two.pdf", pdf.read_bytes())
    attempt(document)
    document.refresh_from_db()
    assert document.status == Status.COMPLETED and document.pages_total == 2
    assert document.pages_done == 2
    chunk = document.chunks.get()
    assert (chunk.page_start, chunk.page_end) == (1, 2)


@pytest.mark.django_db
def test_a_second_delivery_while_the_first_holds_the_claim_does_nothing(personas, local_clients):
    from documents import lifecycle

    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    lifecycle.claim(str(document.pk), task_id="t1", retries=0)
    assert attempt(document, task_id="t1") == processing.Outcome()
    document.refresh_from_db()
    assert document.attempts == 1 and document.chunk_count == 0


@pytest.mark.django_db
def test_a_damaged_file_fails_at_once_with_a_sentence_and_no_retry(
    personas, local_clients, tmp_path
):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text on a page."] * 3)
    damaged = makedocs.truncated(pdf, tmp_path / "b.pdf")
    document = upload(personas.tenant_a, "b.pdf", damaged.read_bytes())
    outcome = attempt(document)
    assert isinstance(outcome.error, PermanentError) and outcome.retry_in is None
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == FailureKind.CORRUPT
    assert "damaged" in document.failure_message or "truncated" in document.failure_message
    assert [e["stage"] for e in document.attempt_log] == [Stage.EXTRACTING]


@pytest.mark.django_db
def test_a_transient_failure_asks_for_a_retry_after_the_backoff(personas, remote_clients):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(503)
    outcome = attempt(document, retries=1)
    assert outcome.retry_in == 4.0 and isinstance(outcome.error, TransientError)
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
    assert document.failure_kind == FailureKind.UNAVAILABLE
    assert document.attempt_log[-1]["stage"] == Stage.EMBEDDING


@pytest.mark.django_db
def test_the_last_transient_failure_fails_the_document_and_is_raised(personas, remote_clients):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(503)
    outcome = attempt(document, retries=3, max_retries=3)
    assert outcome.retry_in is None and isinstance(outcome.error, TransientError)
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == FailureKind.UNAVAILABLE


@pytest.mark.django_db
def test_a_rate_limit_longer_than_the_backoff_parks_the_document_with_a_resume_message(
    personas, remote_clients, isolated_queue
):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(429, retry_delay="90s")
    outcome = attempt(document)
    assert outcome == processing.Outcome()
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.WAITING)
    assert document.failure_kind == FailureKind.RATE_LIMITED
    assert 80 < (document.resume_at - document.queued_at).total_seconds() <= 91
    assert document.last_task_id != "t1"
    assert document.last_task_id in broker.live_task_ids(timeout=0.5)


@pytest.mark.django_db
def test_a_per_minute_429_is_waited_out_in_the_stage_and_never_reaches_the_attempt_log(
    personas, remote_clients
):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(429, retry_delay="1s")
    outcome = attempt(document, retries=0)
    assert outcome.summary is not None and outcome.error is None
    document.refresh_from_db()
    assert document.status == Status.COMPLETED and document.attempt_log == []
    assert [r.status for r in gemini.embed_requests] == [429, 200]


@pytest.mark.django_db
def test_a_rate_limit_that_persists_is_retried_after_the_servers_delay(personas, remote_clients):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(429, retry_delay="3s", times=4)  # the stage's three waits are not enough
    outcome = attempt(document, retries=0)
    assert outcome.retry_in == 3.0  # the server's delay, longer than the 2 s backoff
    document.refresh_from_db()
    assert document.stage == Stage.QUEUED and document.failure_kind == FailureKind.RATE_LIMITED
    assert len(document.attempt_log) == 1


@pytest.mark.django_db
def test_an_unforeseen_exception_fails_the_document_as_internal_without_retry(
    personas, local_clients, settings, tmp_path
):
    # A scanned page with no Tesseract on the worker: an installation fault, not the file's.
    settings.TESSERACT_CMD = str(tmp_path / "no-tesseract")
    scan = makedocs.image_pdf(tmp_path / "scan.pdf", ["A scanned page of text."])
    document = upload(personas.tenant_a, "scan.pdf", scan.read_bytes())
    outcome = attempt(document)
    assert outcome.retry_in is None
    assert type(outcome.error) is ApplicationError and outcome.cause is not None
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == FailureKind.INTERNAL
    assert "not installed" in document.failure_message


@pytest.mark.django_db(transaction=True)
def test_a_document_cancelled_while_indexing_stops_and_its_vectors_go(
    personas, remote_clients, isolated_queue
):
    _, pinecone = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    # Vectors an earlier run wrote, and this run's upserts slowed so the cancel lands mid-way.
    get_vector_store().upsert(
        document.tenant.vector_namespace,
        [VectorRecord(f"{document.pk}#99", [1.0] + [0.0] * 767, {})],
    )
    pinecone.set_delay(1.0)
    running = in_thread(attempt, document)
    wait_for_stage(document, Stage.INDEXING)
    services.documents_cancel(queryset=Document.objects.filter(pk=document.pk), by="a test")
    assert running.result(timeout=60) == processing.Outcome()
    pinecone.set_delay(0)
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == FailureKind.CANCELLED
    assert vector_ids(document) == []


class HeartbeatWatchingPinecone(PineconeDouble):
    """The Pinecone double, noting the watched document's heartbeat as each upsert request
    arrives: what a sweep looking at the database at that moment would see."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.document_id = None
        self.heartbeats_at_upsert = []

    def route(self, rec, raw):
        if rec.path == "/vectors/upsert" and self.document_id is not None:
            try:
                self.heartbeats_at_upsert.append(
                    Document.objects.values_list("heartbeat_at", flat=True).get(pk=self.document_id)
                )
            finally:
                connection.close()  # the server's request thread
        return super().route(rec, raw)


@pytest.mark.django_db(transaction=True)
def test_the_claim_is_refreshed_after_every_upsert_request_of_a_long_indexing(
    personas, settings, gemini_double, fast_pinecone_retries
):
    # Small chunks, so one document's vectors take several of Pinecone's 2 MB requests.
    settings.CHUNK_TOKENS = {**settings.CHUNK_TOKENS, "gemini": 64}
    settings.CHUNK_OVERLAP = {**settings.CHUNK_OVERLAP, "gemini": 0}
    text = " ".join(
        f"Night {n}: the keeper lit the lamp and the ships passed the rocks." for n in range(4000)
    )
    with HeartbeatWatchingPinecone() as pinecone:
        use_doubles(settings, gemini_double.url, pinecone.url)
        document = upload(personas.tenant_a, "long.txt", text.encode())
        pinecone.document_id = document.pk
        assert attempt(document).error is None
    document.refresh_from_db()
    assert document.status == Status.COMPLETED
    seen = pinecone.heartbeats_at_upsert
    assert len(seen) >= 3, "the document's vectors fit in fewer requests than this test needs"
    assert len(pinecone.ids(document.tenant.vector_namespace)) == document.chunk_count
    # Every request found a heartbeat newer than the one the request before it found.
    assert None not in seen and seen == sorted(set(seen))


@pytest.mark.django_db(transaction=True)
def test_a_run_taken_over_by_another_worker_stops_and_leaves_the_new_runs_vectors(
    personas, remote_clients
):
    from documents import lifecycle

    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.set_delay(1.0)
    running = in_thread(attempt, document, task_id="slow")
    wait_for_stage(document, Stage.EMBEDDING)
    # The slow run is taken for dead: its heartbeat is old, another delivery claims.
    stale = lifecycle.stale_before(timezone.now()) - timedelta(seconds=1)
    Document.objects.filter(pk=document.pk).update(heartbeat_at=stale)
    taken = lifecycle.claim(str(document.pk), task_id="fresh", retries=0)
    assert taken is not None
    get_vector_store().upsert(
        document.tenant.vector_namespace,
        [VectorRecord(f"{document.pk}#0", [1.0] + [0.0] * 767, {})],
    )
    assert running.result(timeout=60) == processing.Outcome()
    gemini.set_delay(0)
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.claimed_by == taken.owner
    assert document.attempt_log[-1]["kind"] == FailureKind.WORKER_LOST
    assert vector_ids(document) == [f"{document.pk}#0"]


# --- the Celery task around it ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_task_retries_through_celery_until_the_service_answers(personas, remote_clients):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.fail_next(503, times=2)
    # apply() runs the task here; Celery re-runs it eagerly on retry, ignoring the countdown.
    result = process_task.apply(args=[str(document.pk)], task_id=document.last_task_id)
    assert result.successful(), result.traceback
    document.refresh_from_db()
    assert document.status == Status.COMPLETED and document.attempts == 3
    assert [e["kind"] for e in document.attempt_log] == [FailureKind.UNAVAILABLE] * 2


@pytest.mark.django_db
def test_the_task_raises_a_permanent_failure_so_the_result_records_it(
    personas, local_clients, tmp_path
):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text."] * 3)
    damaged = makedocs.truncated(pdf, tmp_path / "b.pdf")
    document = upload(personas.tenant_a, "b.pdf", damaged.read_bytes())
    result = process_task.apply(args=[str(document.pk)], task_id=document.last_task_id)
    assert result.failed() and isinstance(result.result, PermanentError)


@pytest.mark.parametrize(
    ("status", "kind", "kept"),
    [
        (Status.COMPLETED, "", True),
        (Status.PROCESSING, "", True),
        (Status.FAILED, FailureKind.CANCELLED, False),
        (Status.FAILED, FailureKind.CORRUPT, True),
    ],
)
@pytest.mark.django_db
def test_a_run_that_lost_its_claim_removes_vectors_only_if_the_document_was_cancelled(
    personas, local_clients, status, kind, kept
):
    document = make_document(personas.tenant_a, status=status, failure_kind=kind)
    store = get_vector_store()
    namespace = personas.tenant_a.vector_namespace
    store.upsert(namespace, [VectorRecord(f"{document.pk}#0", [1.0] + [0.0] * 383, {})])
    processing.remove_partial_vectors(str(document.pk), Written(namespace, high=1))
    assert (store.list_ids(namespace, f"{document.pk}#") == [f"{document.pk}#0"]) is kept
    document.refresh_from_db()
    assert document.vector_high == 1  # what the run wrote is on the ledger either way
    assert (document.vector_state == VectorState.PURGED) is not kept


@pytest.mark.django_db
def test_a_run_whose_document_was_deleted_leaves_a_tombstone_for_what_it_wrote(
    personas, local_clients, isolated_queue
):
    document = make_document(personas.tenant_a, status=Status.COMPLETED)
    namespace = personas.tenant_a.vector_namespace
    Document.objects.filter(pk=document.pk).delete()  # deleted while the run was writing
    processing.remove_partial_vectors(str(document.pk), Written(namespace, high=3, lsn=9))
    tombstone = DeletedDocument.objects.get(document_id=document.pk)
    assert (tombstone.vector_namespace, tombstone.vector_high, tombstone.vector_lsn) == (
        namespace,
        3,
        9,
    )


# --- issue 11: what a retry redoes, quotas, and the embedding cache ---------------------------


def embed_texts(gemini) -> int:
    return sum(len(r.body["requests"]) for r in gemini.embed_requests)


@pytest.mark.django_db(transaction=True)
def test_a_vector_store_failure_retries_only_the_indexing(personas, remote_clients):
    gemini, pinecone = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.set_delay(1.0)  # embedding is under way long enough to plan Pinecone's failure
    running = in_thread(attempt, document, task_id="first")
    deadline = time.monotonic() + 60
    while not gemini.embed_requests:  # the dimension check is behind us; the upsert is not
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pinecone.fail_next(503, times=4)  # the upsert and the SDK's three retries
    outcome = running.result(timeout=60)
    gemini.set_delay(0)
    assert outcome.retry_in is not None and outcome.error.kind == FailureKind.UNAVAILABLE
    document.refresh_from_db()
    assert document.attempt_log[-1]["stage"] == Stage.INDEXING
    assert document.resume_checkpoint.startswith("indexing:")
    sent = embed_texts(gemini)

    assert attempt(document, task_id="first", retries=1).summary is not None
    document.refresh_from_db()
    assert document.status == Status.COMPLETED
    assert embed_texts(gemini) == sent  # no embedding request: every vector from the cache
    assert "downloading" not in document.stage_timings and "resumed" in document.stage_timings
    assert document.chunks_from_cache == document.chunk_count
    assert sorted(pinecone.ids(document.tenant.vector_namespace)) == sorted(
        document.chunks.values_list("vector_id", flat=True)
    )
    assert document.resume_checkpoint == ""


@pytest.mark.django_db
def test_a_document_that_failed_at_indexing_resumes_there_when_retried_later(
    personas, remote_clients, isolated_queue
):
    gemini, pinecone = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    pinecone.state.max_namespaces = 1
    pinecone.seed("another-tenant", [("x#0", [1.0] * 768, {})])  # the plan's limit is reached
    assert isinstance(attempt(document).error, PermanentError)
    sent = embed_texts(gemini)
    pinecone.state.max_namespaces = None  # staff moved to a larger plan
    assert services.documents_retry_failed(queryset=Document.objects.filter(pk=document.pk)).done
    assert attempt(document, task_id="retried").summary is not None
    document.refresh_from_db()
    assert document.status == Status.COMPLETED and "resumed" in document.stage_timings
    assert embed_texts(gemini) == sent


@pytest.mark.django_db
def test_a_retry_whose_chunks_changed_since_the_checkpoint_starts_from_the_beginning(
    personas, remote_clients
):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    attempt(document)
    document.refresh_from_db()
    # a checkpoint that does not describe the stored chunks (another chunk size, an edit)
    lifecycle.queue_again(Document.objects.filter(pk=document.pk), checkpoint="indexing:stale")
    attempt(document, task_id="t2")
    document.refresh_from_db()
    assert document.status == Status.COMPLETED and "downloading" in document.stage_timings


@pytest.mark.django_db
def test_reprocessing_unchanged_text_sends_no_embedding_request(
    personas, remote_clients, isolated_queue
):
    gemini, _ = remote_clients
    documents = [
        upload(personas.tenant_a, f"story-{i}.txt", (STORY + f" Part {i}.").encode())
        for i in range(3)
    ]
    for document in documents:
        attempt(document)
    sent = embed_texts(gemini)
    result = services.documents_reprocess(
        queryset=Document.objects.filter(tenant=personas.tenant_a)
    )
    for document in documents:
        document.refresh_from_db()
        assert document.resume_checkpoint == ""  # a reprocess starts from the beginning
        attempt(document, task_id=f"re-{document.pk}")
        document.refresh_from_db()
        assert document.status == Status.COMPLETED
        assert document.chunks_from_cache == document.chunk_count > 0
        assert "downloading" in document.stage_timings
    assert result.done == 3 and embed_texts(gemini) == sent


@pytest.mark.django_db
def test_identical_chunks_in_another_document_of_the_tenant_cost_no_request(
    personas, remote_clients
):
    gemini, _ = remote_clients
    attempt(upload(personas.tenant_a, "story.txt", STORY.encode()))
    sent = embed_texts(gemini)
    again = upload(personas.tenant_a, "story.txt", STORY.encode())  # same text, same title
    attempt(again)
    again.refresh_from_db()
    assert again.status == Status.COMPLETED and embed_texts(gemini) == sent
    elsewhere = upload(personas.tenant_b, "story.txt", STORY.encode())
    attempt(elsewhere)  # another tenant's cache is its own
    assert embed_texts(gemini) > sent


@pytest.mark.django_db
def test_a_per_day_quota_parks_the_document_until_the_reset(
    personas, remote_clients, settings, isolated_queue
):
    _, pinecone = remote_clients
    with GeminiDouble(requests_per_day=1) as gemini:
        settings.GEMINI_BASE_URL = gemini.url
        attempt(upload(personas.tenant_a, "first.txt", b"The first and only text today."))
        document = upload(personas.tenant_a, "story.txt", STORY.encode())
        outcome = attempt(document)
    assert outcome == processing.Outcome()  # parked, not retried, not failed
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.WAITING)
    assert document.failure_kind == FailureKind.RATE_LIMITED
    assert "daily quota (requests per day)" in document.failure_message
    assert "midnight Pacific time" in document.failure_message
    wait = (document.resume_at - timezone.now()).total_seconds()
    assert abs(wait - seconds_until_daily_reset()) < 30
    # the stalled sweep resumes it once the reset has passed, not before
    parked = Document.objects.filter(pk=document.pk)
    assert not parked.filter(lifecycle.stalled(timezone.now())).exists()
    later = document.resume_at + timedelta(minutes=1)
    assert parked.filter(lifecycle.stalled(later)).exists()


@pytest.mark.django_db
def test_pinecones_namespace_limit_fails_the_document_with_the_limit_named(
    personas, remote_clients
):
    _, pinecone = remote_clients
    pinecone.state.max_namespaces = 1
    pinecone.seed("another-tenant", [("x#0", [1.0] * 768, {})])
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    outcome = attempt(document)
    assert isinstance(outcome.error, PermanentError)
    document.refresh_from_db()
    assert document.status == Status.FAILED
    assert document.failure_kind == FailureKind.QUOTA_EXCEEDED
    assert "limit of 1 namespaces" in document.failure_message
    assert "API key" not in document.failure_message
    assert document.attempt_log[-1]["stage"] == Stage.INDEXING


# --- lost workers and a failing database ------------------------------------------------------


@pytest.mark.django_db
def test_a_resend_past_the_lost_worker_cap_fails_the_document_and_the_task_raises_it(
    personas, local_clients, settings
):
    from documents import lifecycle

    settings.PIPELINE_MAX_WORKER_LOSSES = 0
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    # The first delivery claimed it and its worker was killed; Celery re-sends (retries + 1).
    lifecycle.claim(str(document.pk), task_id=document.last_task_id, retries=0)
    result = process_task.apply(args=[str(document.pk)], task_id=document.last_task_id, retries=1)
    assert result.failed() and isinstance(result.result, RepeatedWorkerLoss)
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "repeatedly stopped the worker" in document.failure_message
    assert document.chunk_count == 0


def hold_row_lock(
    document,
    seconds: float,
    held: threading.Event | None = None,
    release: threading.Event | None = None,
) -> None:
    """Another connection holds the document's row, as a slow transaction elsewhere would:
    for ``seconds``, or until ``release`` is set; ``held`` is set once the lock is taken."""
    with transaction.atomic():
        Document.objects.select_for_update().get(pk=document.pk)
        if held is not None:
            held.set()
        if release is None:
            time.sleep(seconds)
        else:
            release.wait(timeout=seconds)


def lock_timeout(milliseconds: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {milliseconds}")


@pytest.mark.django_db(transaction=True)
def test_a_database_error_mid_run_is_retried_with_its_cause_in_the_attempt_log(
    personas, remote_clients, postgres_only
):
    gemini, _ = remote_clients
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    gemini.set_delay(1.5)

    def run():
        lock_timeout(300)  # this thread's connection gives up on a lock after 0.3 s
        return attempt(document)

    running = in_thread(run)
    wait_for_stage(document, Stage.EMBEDDING)
    # The stage's next write meets the lock and fails; the outcome is written once it is gone.
    holder = in_thread(hold_row_lock, document, 3.0)
    outcome = running.result(timeout=120)
    holder.result(timeout=30)
    gemini.set_delay(0)
    assert outcome.retry_in == 2.0 and isinstance(outcome.error, TransientError)
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
    assert document.claimed_by == "" and document.failure_kind == FailureKind.UNAVAILABLE
    last = document.attempt_log[-1]
    assert last["kind"] == FailureKind.UNAVAILABLE
    assert "The database failed during processing" in last["message"]
    assert "lock timeout" in last["message"]


@pytest.mark.django_db(transaction=True)
def test_a_claim_the_database_could_not_write_asks_for_a_retry_and_writes_nothing(
    personas, local_clients, postgres_only
):
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    held, release = threading.Event(), threading.Event()
    holder = in_thread(hold_row_lock, document, 60.0, held, release)
    # Held until the attempt is over, however slow a loaded machine is to get there.
    assert held.wait(timeout=30)
    lock_timeout(300)
    try:
        outcome = attempt(document)
    finally:
        lock_timeout(0)
        release.set()
    holder.result(timeout=30)
    assert outcome.retry_in == 2.0 and isinstance(outcome.error, TransientError)
    assert "lock timeout" in outcome.error.message
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
    assert document.attempts == 0 and document.attempt_log == []


@pytest.mark.django_db(transaction=True)
def test_a_document_past_its_wall_time_fails_at_the_next_stage_for_good(
    personas, local_clients, settings
):
    # The runner's own check, for when Celery's soft time limit is not seen in time.
    settings.PIPELINE_MAX_DOCUMENT_SECONDS = 1e-6
    document = upload(personas.tenant_a, "story.txt", STORY.encode())
    outcome = attempt(document)
    assert outcome.retry_in is None and outcome.error.kind == FailureKind.TIME_LIMIT
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.TIME_LIMIT)
    assert "longer than the limit of 0 seconds per document" in document.failure_message
    assert "while starting the downloading stage" in document.failure_message
    assert document.attempts == 1
