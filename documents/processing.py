"""Processing one document: claim it, run the pipeline's stages, and decide what a failure
means (retry, park, fail).

This is the Django-facing side of the pipeline: the stages in ``documents/pipeline/`` are
pure functions; this module feeds them the stored file and the configured clients, records
stage, progress and timings through the document's claim, writes the chunks, and turns every
outcome into a lifecycle change. The Celery task is a thin wrapper around
``process_document``, so every branch here runs in a test process as well as in a worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from documents import dispatch, estimates, lifecycle, storage
from documents.clients import extract_options, get_embedder, get_vector_store
from documents.errors import ApplicationError, FailureKind, PermanentError, TransientError
from documents.lifecycle import Claim, ClaimLost
from documents.models import Chunk, Document, Stage, Status
from documents.pipeline.chunk import split_text
from documents.pipeline.embed import embed_chunks
from documents.pipeline.extract import extract_text
from documents.pipeline.fingerprint import text_fingerprint
from documents.pipeline.preflight import FULL
from documents.pipeline.types import Page
from documents.pipeline.vectors import (
    check_dimension,
    delete_document_vectors,
    upsert_chunks,
    vector_id,
)

logger = logging.getLogger(__name__)

# Progress writes are throttled: a 600-page PDF must not cost 600 UPDATEs per second.
_PROGRESS_INTERVAL_SECONDS = 1.0


# --- what the task should do next -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt, for the Celery task to act on.

    ``retry_in``: ask Celery to run the task again after this many seconds, with ``error``.
    ``error`` without ``retry_in``: the document failed for good; the task raises it (from
    ``cause``) so the result backend records the failure and Sentry hears of it once.
    Neither: nothing more to do (completed, parked, cancelled, or not ours)."""

    summary: dict | None = None
    retry_in: float | None = None
    error: ApplicationError | None = None
    cause: BaseException | None = None


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """2 s, 4 s, 8 s ... for attempt 0, 1, 2; a longer delay asked for by the server wins."""
    backoff = settings.PIPELINE_RETRY_BASE_SECONDS * (2**retries)
    return max(backoff, retry_after or 0.0)


def longest_backoff() -> float:
    return retry_countdown(settings.PIPELINE_MAX_RETRIES - 1, None)


def process_document(document_id, *, task_id: str, retries: int, max_retries: int) -> Outcome:
    """Claim the document and run its stages; every way that can end is decided here."""
    try:
        return Outcome(summary=run_stages(document_id, task_id=task_id, retries=retries))
    except ClaimLost:
        # Cancelled (or taken over) while running: drop what this run may have written.
        remove_partial_vectors(document_id)
        return Outcome()
    except TransientError as exc:
        return _after_transient(document_id, exc, retries=retries, max_retries=max_retries)
    except PermanentError as exc:
        lifecycle.fail(document_id, exc)
        return Outcome(error=exc)
    except Exception as exc:
        error = unexpected_error(exc)
        if error.kind in FailureKind.TRANSIENT and retries < max_retries:
            if lifecycle.requeue_after_failure(document_id, error):
                return Outcome(
                    retry_in=retry_countdown(retries, None),
                    error=TransientError(error.message, error.kind),
                    cause=exc,
                )
            return Outcome()
        lifecycle.fail(document_id, error)
        # Our own single-string error, so the JSON result backend can rebuild it.
        return Outcome(error=ApplicationError(error.message, error.kind), cause=exc)


def _after_transient(document_id, exc: TransientError, *, retries: int, max_retries: int):
    if exc.retry_after and exc.retry_after > longest_backoff():
        # A quota that frees in minutes: park the document instead of spending retries.
        park(document_id, exc)
        return Outcome()
    if retries < max_retries:
        if lifecycle.requeue_after_failure(document_id, exc):
            return Outcome(retry_in=retry_countdown(retries, exc.retry_after), error=exc)
        return Outcome()  # cancelled meanwhile
    # The final attempt: the document fails, and raising it sends one Sentry event.
    lifecycle.fail(document_id, exc)
    return Outcome(error=exc)


def park(document_id, exc: TransientError) -> None:
    """Wait for a rate limit to lift: the document shows ``waiting`` with the time it resumes,
    and a delayed message resumes it. Delays past PIPELINE_PARK_MAX_COUNTDOWN_SECONDS (which
    stays under the broker's visibility timeout) are left to the stalled sweep, which resumes
    parked documents whose time has come."""
    resume_at = timezone.now() + timedelta(seconds=exc.retry_after)
    if not lifecycle.requeue_after_failure(document_id, exc, resume_at=resume_at):
        return
    if exc.retry_after <= settings.PIPELINE_PARK_MAX_COUNTDOWN_SECONDS:
        dispatch.requeue(document_id, countdown=exc.retry_after)


def unexpected_error(exc: BaseException) -> ApplicationError:
    """Turn an exception we did not foresee into a staff-readable failure."""
    if isinstance(exc, OperationalError | InterfaceError):
        return ApplicationError(
            "The database connection failed during processing; it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    if isinstance(exc, BrokerError | RedisConnectionError | RedisTimeoutError):
        return ApplicationError(
            "Redis could not be reached during processing; it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    return ApplicationError(
        f"An unexpected error stopped processing ({type(exc).__name__}: {exc}). "
        "It has been reported to the developers.",
        FailureKind.INTERNAL,
    )


def remove_partial_vectors(document_id) -> None:
    """After a lost claim, drop what this run wrote -- but only when the document was stopped
    (cancelled). A claim can also be lost because a slow run was taken for dead and another
    worker took the document over; that worker's vectors share the same ids and must stay."""
    document = Document.objects.select_related("tenant").filter(pk=document_id).first()
    if document is not None and document.status == Status.FAILED:
        delete_document_vectors(
            get_vector_store(), namespace=document.namespace, document_id=document.pk
        )


# --- the stages -------------------------------------------------------------------------------


class StageRunner:
    """Stage, progress and timings of one claimed document, written through its claim (so
    each write is also a heartbeat)."""

    def __init__(self, held: Claim):
        self.claim = held
        self.timings: dict = {}
        self._last_progress = 0.0

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        started = time.monotonic()
        self.timings[stage] = {"started": timezone.now().isoformat()}
        self.claim.write(stage=stage, stage_timings=self.timings)
        yield
        self.timings[stage]["seconds"] = round(time.monotonic() - started, 3)
        self.claim.write(stage_timings=self.timings)

    def progress(self, *, force: bool = False, **fields) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= _PROGRESS_INTERVAL_SECONDS:
            self._last_progress = now
            self.claim.write(**fields)

    def switch_to_ocr(self) -> None:
        if Stage.OCR not in self.timings:
            self.timings[Stage.OCR] = {"started": timezone.now().isoformat()}
            self.claim.write(stage=Stage.OCR, stage_timings=self.timings)

    def tracked(self, pages: Iterator[Page], total: int) -> Iterator[Page]:
        for done, page in enumerate(pages, start=1):
            if page.ocr:
                self.switch_to_ocr()
            self.progress(pages_done=done, force=done == total)
            yield page


def estimate_now(held: Claim, path) -> None:
    """The ``estimating`` stage: the preflight of every page, for a document whose upload
    only read its structure. A file the preflight cannot read keeps the estimate it had: the
    extraction that follows says what is wrong with it."""
    document = held.document
    try:
        facts = estimates.inspect(
            path, content_type=document.content_type, size_bytes=document.size_bytes, depth=FULL
        )
    except Exception:  # noqa: BLE001 - an estimate must never be why a document fails
        logger.exception("the preflight of document %s failed; processing goes on", document.pk)
        return
    if facts.complete:
        record = estimates.preflight_record(facts)
        held.write(preflight={**(document.preflight or {}), **record})


def run_stages(document_id, *, task_id: str, retries: int) -> dict | None:
    """Run every stage for one document. Returns a summary dict, or None when the document
    was not ours to process (already claimed, cancelled, or no longer processing)."""
    held = lifecycle.claim(document_id, task_id=task_id, retries=retries)
    if held is None:
        logger.info("document %s not claimable; another delivery holds it", document_id)
        return None
    document = held.document
    runner = StageRunner(held)
    embedder, store = get_embedder(), get_vector_store()

    with ExitStack() as cleanup:
        with runner.stage(Stage.DOWNLOADING):
            path = cleanup.enter_context(storage.local_copy(document.storage_key))
        if not document.estimate.get("complete"):
            with runner.stage(Stage.ESTIMATING):
                estimate_now(held, path)
        with runner.stage(Stage.EXTRACTING):
            extraction = extract_text(
                path, content_type=document.content_type, options=extract_options()
            )
            held.write(pages_total=extraction.page_count)
            # Only the text is kept (a few MB for a 600-page book); rendered pages and
            # PDF objects are released page by page inside extract_text.
            pages = list(runner.tracked(extraction.pages, extraction.page_count))
        # The same text in another file of the tenant shows on the document page.
        held.write(text_fingerprint=text_fingerprint(p.text for p in pages))

    with runner.stage(Stage.CHUNKING):
        chunks = split_text(
            pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        )
        with transaction.atomic():
            # A run taken for dead (and replaced) must not rewrite the new run's chunks.
            held.lock()
            Chunk.objects.filter(document=document).delete()
            Chunk.objects.bulk_create(
                Chunk(
                    document=document,
                    index=c.index,
                    text=c.text,
                    token_count=c.token_count,
                    page_start=c.page_start,
                    page_end=c.page_end,
                    char_start=c.char_start,
                    char_end=c.char_end,
                    vector_id=vector_id(document.pk, c.index),
                )
                for c in chunks
            )
        held.write(chunks_total=len(chunks), chunk_count=len(chunks))

    with runner.stage(Stage.EMBEDDING):
        check_dimension(store, embedder.dimension)
        vectors = embed_chunks(
            embedder,
            [c.text for c in chunks],
            title=document.title,
            on_batch=lambda done: runner.progress(chunks_done=done),
            token_counts=[c.token_count for c in chunks],
        )

    with runner.stage(Stage.INDEXING):
        upsert_chunks(
            store,
            namespace=document.namespace,
            document_id=document.pk,
            metadata={
                "tenant": document.tenant.slug,
                "document_id": str(document.pk),
                "title": document.title,
                "filename": document.original_filename,
            },
            chunks=chunks,
            vectors=vectors,
        )

    held.complete(
        chunks_done=len(chunks),
        embedding_model=embedder.model_name,
        embedding_dimension=embedder.dimension,
        vector_count=len(chunks),
        actuals=estimates.actuals(
            pages=pages,
            chunks=chunks,
            ocr_pages=sum(1 for p in pages if p.ocr),
            timings=runner.timings,
        ),
    )
    return {"document_id": str(document.pk), "status": Status.COMPLETED, "chunks": len(chunks)}
