"""Processing one document: claim it, run the pipeline's stages, and decide what a failure
means (retry, park, fail).

This is the Django-facing side of the pipeline: the stages in ``documents/pipeline/`` are
pure functions; this module feeds them the stored file and the configured clients (through
``stages.py`` and ``indexing.py``), and turns every outcome into a lifecycle change. A run
whose document is small also takes on further small queued documents and embeds their chunks
together in full batches (docs/decisions/0007-batches-across-documents.md); each of them
keeps its own claim, progress and outcome. The Celery task is a thin wrapper around
``process_document``, so every branch here runs in a test process as well as in a worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from documents import dispatch, estimates, indexing, lifecycle, vector_state
from documents.clients import get_embedder, get_vector_store
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
from documents.pipeline.embed import Embedded
from documents.pipeline.ratelimit import while_waiting
from documents.pipeline.vectors import check_dimension
from documents.stages import StageRunner, read_and_chunk

logger = logging.getLogger(__name__)

# While one member of a batch is read or indexed, the others' claims get a heartbeat this
# often: far inside CLAIM_TIMEOUT_SECONDS (300 by default), cheap beside a document's reading.
_KEEP_ALIVE_SECONDS = 10.0

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
    """Claim the document and run its stages (with the batch-mates it takes on, see
    ``run_stages``); every way that can end is decided here."""
    run = Run()
    try:
        return Outcome(summary=run_stages(document_id, task_id=task_id, retries=retries, run=run))
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
    except Exception as exc:
        return settle(document_id, exc, run=run, retries=retries, max_retries=max_retries)


def settle(document_id, exc: Exception, *, run: Run, retries: int, max_retries: int) -> Outcome:
    """What an attempt that raised ``exc`` means for its document, written to the document."""
    if isinstance(exc, ClaimLost):
        # Cancelled, deleted or taken over while running: see after_lost_claim.
        remove_partial_vectors(document_id, run.written)
        return Outcome()
    if isinstance(exc, RepeatedWorkerLoss):
        # The claim step found one lost worker too many and failed the document for good.
        return Outcome(error=exc)
    if isinstance(exc, TransientError):
        return _after_transient(document_id, exc, retries=retries, max_retries=max_retries)
    if isinstance(exc, PermanentError):
        write_outcome(lifecycle.fail, document_id, exc)
        return Outcome(error=exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        # PIPELINE_MAX_DOCUMENT_SECONDS, the task's soft time limit: permanent, since the
        # same file would take as long again. The worker process lives on.
        error = time_limit_error(document_id, run)
        write_outcome(lifecycle.fail, document_id, error)
        return Outcome(error=error)
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


# --- a run: one document, and the batch-mates it takes on ------------------------------------


@dataclass
class Member:
    """One claimed document of a run. ``error``: what took it out of the batch (a mate's
    outcome is then settled at once; the lead's is raised at the end of the run);
    ``completed``: done, its claim released."""

    held: Claim
    run: Run
    lead: bool = False
    chunks: list = field(default_factory=list)
    pages: list | None = None  # None after a resume at embedding: no pages were read
    embedded: Embedded | None = None
    error: Exception | None = None
    completed: bool = False

    def __post_init__(self):
        self.runner = StageRunner(
            self.held, time_limit=settings.PIPELINE_MAX_DOCUMENT_SECONDS, started=self.run.started
        )

    @property
    def document(self):
        return self.held.document


def run_stages(document_id, *, task_id: str, retries: int, run: Run | None = None) -> dict | None:
    """Run every stage for one document, and for the small queued documents it takes on as
    batch-mates (``gather``), whose chunks are embedded with its own in full batches.
    Returns a summary dict, or None when the document was not ours to process (already
    claimed, cancelled, or no longer processing). Raises what ended the document's own
    attempt; each mate's outcome is its own, settled here (``settle_mate``)."""
    run = run or Run()
    try:
        held = lifecycle.claim(document_id, task_id=task_id, retries=retries)
    except _DATABASE_ERRORS as exc:
        raise NotClaimed(str(document_id)) from exc
    if held is None:
        logger.info("document %s not claimable; another delivery holds it", document_id)
        return None
    embedder, store = get_embedder(), get_vector_store()
    lead = Member(held=held, run=run, lead=True)
    prepare(lead, embedder)  # what ends it here is the lead's alone: nothing else is claimed
    batch = Batch([lead])
    try:
        if retries == 0 and batching_applies(embedder, lead):
            gather(batch, embedder, task_id=task_id, retries=retries)
        batch.embed(embedder, store)
        for member in batch.going:
            batch.keep_alive()  # the members still waiting for their turn
            batch.each(lambda m: finish(m, store, embedder), only=[member])
    except SoftTimeLimitExceeded:
        if len(batch.members) == 1:
            raise  # the lead's own time: it fails as time_limit (settle)
        # PIPELINE_MAX_DOCUMENT_SECONDS ran out for the batch, not for one document: each
        # member not yet done runs again alone, where its own time is measured.
        timed_out = TransientError(
            "This document was processed together with other small documents and their "
            "shared time limit ran out; it is processed again on its own.",
            FailureKind.BATCH_TIMED_OUT,
        )
        for member in batch.going:
            if not member.lead:
                batch.drop(member, timed_out)
        raise timed_out from None
    if lead.error is not None:
        raise lead.error
    return {"document_id": str(document_id), "status": Status.COMPLETED, "chunks": len(lead.chunks)}


def prepare(member: Member, embedder) -> None:
    """The member's chunks: stored ones when a retry may start at embedding (served by the
    cache, see documents/indexing.py), else read and chunked now."""
    document, held = member.document, member.held
    chunks = indexing.resume_point(document, embedder)
    if chunks is not None:
        member.runner.timings["resumed"] = {"started": timezone.now().isoformat(), "seconds": 0.0}
        held.write(
            chunks_total=len(chunks),
            chunk_count=len(chunks),
            pages_done=document.pages_total or 0,
            stage_timings=member.runner.timings,
        )
        member.chunks = chunks
        return
    member.chunks, member.pages = read_and_chunk(held, member.runner, document, embedder)


def finish(member: Member, store, embedder) -> None:
    """Index the member's vectors and complete it."""
    document, held = member.document, member.held
    with member.runner.stage(Stage.INDEXING):
        member.run.written = vector_state.Written(namespace=document.namespace)
        indexing.write_vectors(
            held, store, document, member.chunks, member.embedded.vectors, member.run.written
        )
    chunks, pages = member.chunks, member.pages
    held.complete(
        chunks_done=len(chunks),
        embedding_model=embedder.model_name,
        embedding_dimension=embedder.dimension,
        vector_count=len(chunks),
        chunks_from_cache=member.embedded.from_cache,
        # a run resumed at embedding read no pages: the first run's actuals stand
        **(
            {}
            if pages is None
            else {
                "actuals": estimates.actuals(
                    pages=pages,
                    chunks=chunks,
                    ocr_pages=sum(1 for p in pages if p.ocr),
                    timings=member.runner.timings,
                )
            }
        ),
    )
    member.completed = True  # its claim is released: no more heartbeats


# --- batches across documents (docs/decisions/0007-batches-across-documents.md) --------------


def batching_applies(embedder, lead: Member) -> bool:
    """Only an embedder that sends no title can mix documents in a request (Gemini takes one
    title per request, and a document's title is part of its vectors)."""
    return (
        settings.PIPELINE_BATCH_CHUNKS > 0
        and not getattr(embedder, "sends_title", False)
        and len(lead.chunks) < settings.PIPELINE_BATCH_CHUNKS
    )


def gather(batch: Batch, embedder, *, task_id: str, retries: int) -> None:
    """Claim queued documents (small ones on their first attempt, oldest first) and read and
    chunk each, until the batch holds PIPELINE_BATCH_CHUNKS chunks or none is left. Each is
    claimed by the lifecycle's conditional UPDATE under this task's claim owner, so its own
    message, when a worker takes it, finds a live claim and does nothing."""
    tried = {batch.members[0].document.pk}
    while sum(len(m.chunks) for m in batch.going) < settings.PIPELINE_BATCH_CHUNKS:
        try:
            candidate = (
                Document.objects.filter(
                    lifecycle.joinable(max_bytes=settings.PIPELINE_BATCH_MAX_DOCUMENT_BYTES)
                )
                .exclude(pk__in=tried)
                .order_by("queued_at", "pk")
                .values_list("pk", flat=True)
                .first()
            )
            held = (
                None
                if candidate is None
                else lifecycle.claim(candidate, task_id=task_id, retries=retries)
            )
        except _DATABASE_ERRORS as exc:
            logger.warning("no more batch-mates: the database failed (%s)", exc)
            return
        if candidate is None:
            return
        tried.add(candidate)
        if held is None:
            continue  # another worker took it first
        mate = Member(held=held, run=Run())
        batch.members.append(mate)
        batch.each(lambda member: prepare(member, embedder), only=[mate])
        batch.keep_alive()


class Batch:
    """The documents a run holds; a member leaves it at the first step that fails for it."""

    def __init__(self, members: list[Member]):
        self.members = members
        self._touched = time.monotonic()

    @property
    def going(self) -> list[Member]:
        return [m for m in self.members if m.error is None and not m.completed]

    def drop(self, member: Member, exc: Exception) -> None:
        member.error = exc
        if not member.lead:
            settle_mate(member, exc)

    def each(self, step, *, only: list[Member] | None = None) -> None:
        for member in self.going if only is None else only:
            if member.error is not None or member.completed:
                continue  # left the batch meanwhile
            try:
                step(member)
            except SoftTimeLimitExceeded:
                raise  # the task's time, not this member's: see run_stages
            except Exception as exc:  # noqa: BLE001 - the member's own outcome
                self.drop(member, exc)

    def keep_alive(self) -> None:
        """A heartbeat for every member now and then, while another one is being read or
        indexed: each member's own writes only keep its own claim alive. A cancelled one
        leaves the batch here."""
        if time.monotonic() - self._touched >= _KEEP_ALIVE_SECONDS:
            self._touched = time.monotonic()
            self.each(lambda member: member.held.write())

    def embed(self, embedder, store) -> None:
        """One embedding for every member's chunks, in full batches across the documents
        (``indexing.embed_together``). Its failure is each member's own outcome; a member
        cancelled meanwhile leaves the batch after it."""
        self.each(lambda member: member.runner.enter(Stage.EMBEDDING))
        members = self.going
        if not members:
            return
        started = time.monotonic()
        lost: dict[int, ClaimLost] = {}

        def progress(done: list[int] | None = None) -> None:
            # also the heartbeat of every member while a batch waits for quota
            for i, member in enumerate(members):
                if i not in lost:
                    try:
                        member.runner.progress(**({} if done is None else {"chunks_done": done[i]}))
                    except ClaimLost as exc:
                        lost[i] = exc

        embedded, failure = None, None
        try:
            with while_waiting(progress):
                check_dimension(store, embedder.dimension)
                embedded = indexing.embed_together(
                    [(m.document, m.chunks) for m in members], embedder, on_batch=progress
                )
        except SoftTimeLimitExceeded:
            raise  # the task's time, not the embedding's fault: see run_stages
        except Exception as exc:  # noqa: BLE001 - every member's own outcome, below
            failure = exc
        for i, member in enumerate(members):
            if i in lost or embedded is None:
                self.drop(member, lost.get(i) or failure)
            else:
                member.embedded = embedded[i]
        seconds = time.monotonic() - started
        total = sum(len(m.chunks) for m in members) or 1
        shared = {"documents": len(members), "chunks": total, "seconds": round(seconds, 3)}

        def done(member: Member) -> None:
            member.held.checkpoint(indexing.fingerprint(member.chunks, embedder))
            member.runner.leave(
                Stage.EMBEDDING, seconds=seconds * len(member.chunks) / total, batch=shared
            )

        self.each(done)


def settle_mate(member: Member, exc: Exception) -> None:
    """A batch-mate's outcome, acted on here, since no task of its own is running it. Its
    attempt in the batch was its first (``lifecycle.joinable``), so a retry goes out as a
    message that counts one retry already, and runs alone."""
    document_id = member.document.pk
    try:
        outcome = settle(
            document_id, exc, run=member.run, retries=0, max_retries=settings.PIPELINE_MAX_RETRIES
        )
        if outcome.retry_in is not None:
            dispatch.requeue(document_id, countdown=outcome.retry_in, retries=1)
    except Exception:  # the stalled sweep finds a document left without an outcome
        logger.exception("the outcome of batch-mate %s could not be written", document_id)
        return
    final = outcome.error is not None and outcome.retry_in is None
    if final and not isinstance(outcome.error, PermanentError):
        # what raising it from a task would have sent to Sentry
        logger.error("document %s failed: %s", document_id, outcome.error, exc_info=exc)
