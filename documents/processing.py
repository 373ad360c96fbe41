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
from dataclasses import dataclass, field
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from documents import dispatch, estimates, indexing, lifecycle, storage, vector_state
from documents.clients import extract_options, get_embedder, get_vector_store
from documents.errors import (
    ApplicationError,
    FailureKind,
    PermanentError,
    RepeatedWorkerLoss,
    TransientError,
)
from documents.lifecycle import Claim, ClaimLost
from documents.models import Document, Stage, Status
from documents.pipeline.budgets import document_time_limit
from documents.pipeline.chunk import split_text
from documents.pipeline.extract import extract_text
from documents.pipeline.fingerprint import text_fingerprint
from documents.pipeline.preflight import FULL
from documents.pipeline.quality import quality_record
from documents.pipeline.ratelimit import while_waiting
from documents.pipeline.types import Page
from documents.pipeline.vectors import check_dimension

logger = logging.getLogger(__name__)

# Progress writes are throttled: a 600-page PDF must not cost 600 UPDATEs per second.
_PROGRESS_INTERVAL_SECONDS = 1.0

# Waits before writing an attempt's outcome again when the database itself failed: long
# enough for a lock to pass or a connection to come back, short beside the claim timeout.
_OUTCOME_WRITE_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)

_DATABASE_ERRORS = (OperationalError, InterfaceError)


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


class NotClaimed(Exception):
    """The claim itself could not be written (the database failed): this attempt never held
    the document, so it must not write the document's outcome either."""


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """2 s, 4 s, 8 s ... for attempt 0, 1, 2; a longer delay asked for by the server wins."""
    backoff = settings.PIPELINE_RETRY_BASE_SECONDS * (2**retries)
    return max(backoff, retry_after or 0.0)


def longest_backoff() -> float:
    return retry_countdown(settings.PIPELINE_MAX_RETRIES - 1, None)


def process_document(document_id, *, task_id: str, retries: int, max_retries: int) -> Outcome:
    """Claim the document and run its stages; every way that can end is decided here."""
    run = Run()
    try:
        return Outcome(summary=run_stages(document_id, task_id=task_id, retries=retries, run=run))
    except ClaimLost:
        # Cancelled, deleted or taken over while running: see after_lost_claim.
        remove_partial_vectors(document_id, run.written)
        return Outcome()
    except RepeatedWorkerLoss as exc:
        # The claim step found one lost worker too many and failed the document for good.
        return Outcome(error=exc)
    except NotClaimed as exc:
        error = unexpected_error(exc.__cause__)
        if retries < max_retries:
            return Outcome(
                retry_in=retry_countdown(retries, None),
                error=TransientError(error.message, error.kind),
                cause=exc.__cause__,
            )
        # The message ends here; the stalled sweep finds the queued document without one.
        return Outcome(error=ApplicationError(error.message, error.kind), cause=exc.__cause__)
    except TransientError as exc:
        return _after_transient(document_id, exc, retries=retries, max_retries=max_retries)
    except PermanentError as exc:
        write_outcome(lifecycle.fail, document_id, exc)
        return Outcome(error=exc)
    except SoftTimeLimitExceeded:
        # PIPELINE_MAX_DOCUMENT_SECONDS, the task's soft time limit: permanent, since the
        # same file would take as long again. The worker process lives on.
        error = time_limit_error(document_id, run)
        write_outcome(lifecycle.fail, document_id, error)
        return Outcome(error=error)
    except Exception as exc:
        error = unexpected_error(exc)
        if error.kind in FailureKind.TRANSIENT and retries < max_retries:
            if write_outcome(lifecycle.requeue_after_failure, document_id, error):
                return Outcome(
                    retry_in=retry_countdown(retries, None),
                    error=TransientError(error.message, error.kind),
                    cause=exc,
                )
            return Outcome()
        write_outcome(lifecycle.fail, document_id, error)
        # Our own single-string error, so the JSON result backend can rebuild it.
        return Outcome(error=ApplicationError(error.message, error.kind), cause=exc)


def time_limit_error(document_id, run: Run):
    """The sentence for a document stopped by its soft time limit, with the stage it was in.
    The limit may have interrupted a query: the stage is then left out, and write_outcome
    replaces the connection."""
    try:
        stage = Document.objects.filter(pk=document_id).values_list("stage", flat=True).first()
    except _DATABASE_ERRORS:
        _drop_broken_connection()
        stage = ""
    stage = stage or ""
    return document_time_limit(
        settings.PIPELINE_MAX_DOCUMENT_SECONDS,
        time.monotonic() - run.started,
        stage=_DOING.get(stage, stage),
    )


_DOING = {Stage.OCR: "reading pages with OCR", Stage.QUEUED: "", Stage.DONE: ""}


def write_outcome(write, document_id, error: ApplicationError, **kwargs) -> bool:
    """Record an attempt's outcome, trying again when the database is what failed (a lock
    held past its timeout, a dropped connection): the failure must reach the document, or it
    would stay ``processing`` under a dead claim until the stalled sweep. After the last try
    the database error propagates."""
    for delay in (*_OUTCOME_WRITE_RETRY_SECONDS, None):
        try:
            return write(document_id, error, **kwargs)
        except _DATABASE_ERRORS as exc:
            if delay is None:
                raise
            logger.warning("writing the outcome of document %s failed (%s)", document_id, exc)
            _drop_broken_connection()
            time.sleep(delay)
    raise AssertionError("unreachable")


def _drop_broken_connection() -> None:
    # A connection the error left unusable is closed so the next query opens a new one;
    # inside a transaction (a test's) it is left to its owner.
    if not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def _after_transient(document_id, exc: TransientError, *, retries: int, max_retries: int):
    if exc.retry_after and exc.retry_after > longest_backoff():
        # A quota that frees in minutes: park the document instead of spending retries.
        park(document_id, exc)
        return Outcome()
    if retries < max_retries:
        if write_outcome(lifecycle.requeue_after_failure, document_id, exc):
            return Outcome(retry_in=retry_countdown(retries, exc.retry_after), error=exc)
        return Outcome()  # cancelled meanwhile
    # The final attempt: the document fails, and raising it sends one Sentry event.
    write_outcome(lifecycle.fail, document_id, exc)
    return Outcome(error=exc)


def park(document_id, exc: TransientError) -> None:
    """Wait for a rate limit to lift: the document shows ``waiting`` with the time it resumes,
    and a delayed message resumes it. Delays past PIPELINE_PARK_MAX_COUNTDOWN_SECONDS (which
    stays under the broker's visibility timeout) are left to the stalled sweep, which resumes
    parked documents whose time has come."""
    resume_at = timezone.now() + timedelta(seconds=exc.retry_after)
    if not write_outcome(lifecycle.requeue_after_failure, document_id, exc, resume_at=resume_at):
        return
    if exc.retry_after <= settings.PIPELINE_PARK_MAX_COUNTDOWN_SECONDS:
        dispatch.requeue(document_id, countdown=exc.retry_after)


def unexpected_error(exc: BaseException) -> ApplicationError:
    """Turn an exception we did not foresee into a staff-readable failure. Database and
    broker errors are transient, and their sentence keeps the cause (``database is locked``
    and ``connection refused`` call for different fixes)."""
    if isinstance(exc, _DATABASE_ERRORS):
        return ApplicationError(
            f"The database failed during processing ({_cause(exc)}); it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    if isinstance(exc, BrokerError | RedisConnectionError | RedisTimeoutError):
        return ApplicationError(
            f"Redis could not be reached during processing ({_cause(exc)}); it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    return ApplicationError(
        f"An unexpected error stopped processing ({type(exc).__name__}: {exc}). "
        "It has been reported to the developers.",
        FailureKind.INTERNAL,
    )


def _cause(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def remove_partial_vectors(document_id, written: vector_state.Written | None = None) -> None:
    """After a lost claim, drop what this run wrote -- but only when the document was
    cancelled (or deleted: its tombstone then covers this run's ids). A claim can also be
    lost because a slow run was taken for dead and another worker took the document over;
    that worker's vectors share the same ids and must stay."""
    vector_state.after_lost_claim(document_id, written)


@dataclass
class Run:
    """What an attempt has done so far, for the code that handles how it ended."""

    written: vector_state.Written | None = None
    started: float = field(default_factory=time.monotonic)


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
    except SoftTimeLimitExceeded:
        raise  # the document's wall time, not a fault of the estimate
    except Exception:  # noqa: BLE001 - an estimate must never be why a document fails
        logger.exception("the preflight of document %s failed; processing goes on", document.pk)
        return
    if facts.complete:
        record = estimates.preflight_record(facts)
        held.write(preflight={**(document.preflight or {}), **record})


def run_stages(document_id, *, task_id: str, retries: int, run: Run | None = None) -> dict | None:
    """Run every stage for one document. Returns a summary dict, or None when the document
    was not ours to process (already claimed, cancelled, or no longer processing)."""
    run = run or Run()
    try:
        held = lifecycle.claim(document_id, task_id=task_id, retries=retries)
    except _DATABASE_ERRORS as exc:
        raise NotClaimed(str(document_id)) from exc
    if held is None:
        logger.info("document %s not claimable; another delivery holds it", document_id)
        return None
    document = held.document
    runner = StageRunner(held)
    embedder, store = get_embedder(), get_vector_store()

    # A retry after the chunks and their vectors were stored starts at embedding (served by
    # the cache) and indexing: see documents/indexing.py.
    chunks = indexing.resume_point(document, embedder)
    if chunks is not None:
        runner.timings["resumed"] = {"started": timezone.now().isoformat(), "seconds": 0.0}
        held.write(
            chunks_total=len(chunks),
            chunk_count=len(chunks),
            pages_done=document.pages_total or 0,
            stage_timings=runner.timings,
        )
        pages = None
    else:
        chunks, pages = _read_and_chunk(held, runner, document, embedder)

    with runner.stage(Stage.EMBEDDING), while_waiting(runner.progress):
        # while_waiting: a batch waiting for room in the shared quota keeps the claim alive
        check_dimension(store, embedder.dimension)
        embedded = indexing.embed(
            document,
            chunks,
            embedder,
            on_batch=lambda done: runner.progress(chunks_done=done),
        )
        held.checkpoint(indexing.fingerprint(chunks, embedder))

    with runner.stage(Stage.INDEXING):
        run.written = vector_state.Written(namespace=document.namespace)
        indexing.write_vectors(held, store, document, chunks, embedded.vectors, run.written)

    held.complete(
        chunks_done=len(chunks),
        embedding_model=embedder.model_name,
        embedding_dimension=embedder.dimension,
        vector_count=len(chunks),
        chunks_from_cache=embedded.from_cache,
        # a run resumed at embedding read no pages: the first run's actuals stand
        **(
            {}
            if pages is None
            else {
                "actuals": estimates.actuals(
                    pages=pages,
                    chunks=chunks,
                    ocr_pages=sum(1 for p in pages if p.ocr),
                    timings=runner.timings,
                )
            }
        ),
    )
    return {"document_id": str(document.pk), "status": Status.COMPLETED, "chunks": len(chunks)}


def _read_and_chunk(held: Claim, runner: StageRunner, document, embedder) -> tuple[list, list]:
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
            # On any way out (an error, a cancellation) stop its Tesseract processes and
            # remove its temporary files now, not whenever the iterator is collected.
            cleanup.callback(extraction.close)
            held.write(pages_total=extraction.page_count)
            # Only the text is kept (a few MB for a 600-page book); rendered pages and
            # PDF objects are released page by page inside extract_text.
            pages = list(runner.tracked(extraction.pages, extraction.page_count))
        # The same text in another file of the tenant shows on the document page, and how
        # far the text can be trusted on the document page, the list and the API.
        quality = quality_record(pages)
        held.write(
            text_fingerprint=text_fingerprint(p.text for p in pages),
            quality=quality,
            low_quality=bool(quality["flagged"]),
        )

    with runner.stage(Stage.CHUNKING):
        chunks = split_text(
            pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        )
        flagged = frozenset(f["page"] for f in quality["flagged"])
        indexing.save_chunks(held, document, chunks, flagged_pages=flagged)
        held.write(chunks_total=len(chunks), chunk_count=len(chunks))
    return chunks, pages
