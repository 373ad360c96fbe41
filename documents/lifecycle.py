"""The one owner of a document's life: every write to its status, stage, claim, failure and
attempt log happens here.

Each change is one conditional UPDATE whose condition is the rule it enforces, so two
processes racing for the same row can never both win: a worker claims a document only while
it is processing and nobody else holds a live claim; a worker writes only while it still holds
its claim; a person cancels only what is processing; the stalled sweep releases a claim only
if nobody touched it since the sweep looked. The runner (``processing.py``), the services, the
sweeps (``recovery.py``) and the commands call these functions;
``tests/documents/test_lifecycle_ownership.py`` fails if any other module writes these fields.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from documents.errors import ApplicationError, FailureKind, RepeatedWorkerLoss
from documents.models import Document, Stage, Status

# The fields only this module writes.
LIFECYCLE_FIELDS = frozenset(
    {
        "status",
        "stage",
        "claimed_by",
        "heartbeat_at",
        "failure_kind",
        "failure_message",
        "attempts",
        "attempt_log",
        "resume_at",
        "queued_at",
        "started_at",
        "finished_at",
        "last_task_id",
        "scheduled_retries",
        "worker_losses",
        "resume_checkpoint",
    }
)

# A claim's holder reports progress through Claim.write: the stage and the heartbeat, never
# the fields that decide who holds the document or how its run ended.
CLAIM_WRITE_REFUSES = LIFECYCLE_FIELDS - {"stage", "heartbeat_at"}

# What a released claim looks like; every path that lets go of a document writes exactly this.
RELEASED = {"claimed_by": "", "heartbeat_at": None}

# A parked document whose resume time passed this long ago lost its delayed message.
_RESUME_GRACE = timedelta(seconds=30)


def _update(queryset: QuerySet[Document], **fields) -> int:
    # A queryset UPDATE skips auto_now: updated_at must still say when the row last changed.
    return queryset.update(updated_at=timezone.now(), **fields)


class ClaimLost(Exception):
    """Another worker took the document over, or a person cancelled it: stop quietly."""


# --- the rules, each stated once ------------------------------------------------------------


def stale_before(now: datetime) -> datetime:
    """A heartbeat older than this belongs to a worker that died (CLAIM_TIMEOUT_SECONDS)."""
    return now - timedelta(seconds=settings.CLAIM_TIMEOUT_SECONDS)


def dead_claim(now: datetime) -> Q:
    return ~Q(claimed_by="") & Q(heartbeat_at__lt=stale_before(now))


def queued_too_long(now: datetime) -> Q:
    """Queued, not parked, with no claim for STALLED_QUEUED_SECONDS: its message may be lost."""
    cutoff = now - timedelta(seconds=settings.STALLED_QUEUED_SECONDS)
    return Q(claimed_by="", resume_at__isnull=True, queued_at__lt=cutoff)


def resume_overdue(now: datetime) -> Q:
    return Q(claimed_by="", resume_at__lt=now - _RESUME_GRACE)


def stalled(now: datetime) -> Q:
    # A held document waits for a person on purpose: it has no message to lose.
    return (Q(status=Status.PROCESSING) & ~Q(stage=Stage.HELD)) & (
        dead_claim(now) | queued_too_long(now) | resume_overdue(now)
    )


def transient_failure() -> Q:
    """Failed for a reason that may pass. A document that lost more workers than allowed is
    failed for good: the scheduled retry must not start the loop again."""
    return Q(status=Status.FAILED, failure_kind__in=FailureKind.TRANSIENT) & ~Q(
        failure_kind=FailureKind.WORKER_LOST,
        worker_losses__gt=settings.PIPELINE_MAX_WORKER_LOSSES,
    )


def joinable(*, max_bytes: int) -> Q:
    """A queued document another document's run may take into its batch: on its first
    attempt (a retry runs alone, with its own message's retry count), nobody's claim, not
    held or parked, nothing to resume, and small enough to read quickly while the others'
    claims wait (PIPELINE_BATCH_MAX_DOCUMENT_BYTES)."""
    return Q(
        status=Status.PROCESSING,
        stage=Stage.QUEUED,
        claimed_by="",
        resume_at__isnull=True,
        attempts=0,
        resume_checkpoint="",
        size_bytes__lte=max_bytes,
    )


def too_many_losses(losses: int) -> bool:
    return losses > settings.PIPELINE_MAX_WORKER_LOSSES


def repeated_loss_message(losses: int) -> str:
    return (
        f"Processing this document repeatedly stopped the worker ({losses} times), so it "
        "will not be tried again. The file probably needs more memory or time than a worker "
        "may use; check the file, or ask an administrator to raise the limit and reprocess it."
    )


def claim_owner(task_id: str, retries: int) -> str:
    # The retry count is part of the owner: a second delivery of the *same* message (same
    # count) must wait for the live claim, but a re-send after the worker process died
    # (task_retry_on_worker_lost raises the count) may take over at once.
    return f"{task_id}:{retries}@{socket.gethostname()}:{os.getpid()}"


def claimable_by(task_id: str, retries: int, now: datetime) -> Q:
    """Free, stale, or held by an earlier attempt of this same task."""
    return (
        Q(claimed_by="")
        | Q(heartbeat_at__lt=stale_before(now))
        | (
            Q(claimed_by__startswith=f"{task_id}:")
            & ~Q(claimed_by__startswith=f"{task_id}:{retries}@")
        )
    )


def attempt_entry(*, stage: str, kind: str, message: str, now: datetime | None = None) -> dict:
    """One line of ``Document.attempt_log``."""
    return {
        "at": (now or timezone.now()).isoformat(),
        "stage": stage,
        "kind": kind,
        "message": message,
    }


# --- the start ------------------------------------------------------------------------------


def create(*, held: bool = False, **fields) -> Document:
    """A new document, ``processing`` and ``queued``, with the task id of its first message;
    or ``held`` (over a tenant's limit), which no worker claims until ``release``."""
    return Document.objects.create(
        status=Status.PROCESSING,
        stage=Stage.HELD if held else Stage.QUEUED,
        queued_at=timezone.now(),
        last_task_id=str(uuid.uuid4()),
        **fields,
    )


# --- a worker's claim -------------------------------------------------------------------------


class Claim:
    """A claim a worker holds. Every write is conditioned on it and refreshes the heartbeat,
    so a cancelled or taken-over document stops at the next write instead of being
    overwritten by a stale worker."""

    def __init__(self, document: Document):
        self.document = document
        self.owner = document.claimed_by

    def write(self, **fields) -> None:
        """Progress under the claim (and the heartbeat it implies). The stage is progress;
        every other status or claim field changes only through this module's named moves."""
        moves = set(fields) & CLAIM_WRITE_REFUSES
        if moves:
            raise ValueError(f"Claim.write cannot set {sorted(moves)}: use lifecycle's moves.")
        self._write(**fields)

    def _write(self, **fields) -> None:
        fields.setdefault("heartbeat_at", timezone.now())
        updated = _update(
            Document.objects.filter(pk=self.document.pk, claimed_by=self.owner), **fields
        )
        if not updated:
            raise ClaimLost(str(self.document.pk))

    def lock(self) -> None:
        """Inside a transaction: lock the row and make sure it is still ours."""
        held = (
            Document.objects.select_for_update()
            .filter(pk=self.document.pk, claimed_by=self.owner)
            .exists()
        )
        if not held:
            raise ClaimLost(str(self.document.pk))

    def checkpoint(self, value: str) -> None:
        """Record where a later attempt may resume ("" clears it): see
        ``documents/indexing.py``, which writes it once the chunks and their vectors are
        stored, and clears it before the chunks are rewritten."""
        self._write(resume_checkpoint=value)

    def complete(self, **results) -> None:
        self._write(
            status=Status.COMPLETED,
            stage=Stage.DONE,
            finished_at=timezone.now(),
            failure_kind="",
            failure_message="",
            resume_checkpoint="",
            **results,
            **RELEASED,
        )


def claim(document_id, *, task_id: str, retries: int, now=None) -> Claim | None:
    """Take the document with a compare-and-swap UPDATE: it succeeds only if the claim we saw
    is still there and is claimable. Taking over a claim means the previous attempt's worker
    died (or went silent past the claim timeout): that loss is recorded and counted, and past
    PIPELINE_MAX_WORKER_LOSSES the document fails for good instead (RepeatedWorkerLoss is
    raised). Returns None when the document is not ours to process."""
    now = now or timezone.now()
    current = (
        Document.objects.filter(pk=document_id, status=Status.PROCESSING)
        .exclude(stage=Stage.HELD)
        .filter(claimable_by(task_id, retries, now))
        .values("claimed_by", "heartbeat_at", "stage", "attempt_log", "worker_losses")
        .first()
    )
    if current is None:
        return None
    unchanged = Document.objects.filter(
        pk=document_id,
        status=Status.PROCESSING,
        claimed_by=current["claimed_by"],
        heartbeat_at=current["heartbeat_at"],
        worker_losses=current["worker_losses"],
    )
    attempt_log = current["attempt_log"]
    losses = current["worker_losses"]
    if current["claimed_by"]:
        losses += 1
        attempt_log = [
            *attempt_log,
            attempt_entry(
                stage=current["stage"],
                kind=FailureKind.WORKER_LOST,
                message="The worker processing this document stopped before finishing; "
                "another worker took it over.",
                now=now,
            ),
        ]
        if too_many_losses(losses):
            error = RepeatedWorkerLoss(repeated_loss_message(losses))
            if _fail_for_good(unchanged, error, attempt_log=attempt_log, losses=losses, now=now):
                raise error
            return None  # another delivery won the race
    updated = _update(
        unchanged.exclude(stage=Stage.HELD),
        claimed_by=claim_owner(task_id, retries),
        heartbeat_at=now,
        last_task_id=task_id,
        attempts=F("attempts") + 1,
        attempt_log=attempt_log,
        started_at=now,
        resume_at=None,
        worker_losses=losses,
        stage=Stage.DOWNLOADING,
        pages_done=0,
        chunks_done=0,
        stage_timings={},
    )
    if not updated:
        return None  # another delivery won the race
    return Claim(Document.objects.select_related("tenant").get(pk=document_id))


# --- the end of an attempt --------------------------------------------------------------------


def fail(document_id, error: ApplicationError) -> bool:
    """The document is ``failed`` with the error's kind and sentence; the attempt is logged."""
    return _end_attempt(document_id, error, retry=False)


def requeue_after_failure(document_id, error: ApplicationError, *, resume_at=None) -> bool:
    """The attempt failed but will be retried: back to ``queued``, or ``waiting`` until
    ``resume_at`` when a rate limit parks the document."""
    return _end_attempt(document_id, error, retry=True, resume_at=resume_at)


def _end_attempt(document_id, error: ApplicationError, *, retry: bool, resume_at=None) -> bool:
    """Returns False when the document had already left ``processing`` (cancelled); then
    nothing is written."""
    now = timezone.now()
    with transaction.atomic():
        document = (
            Document.objects.select_for_update()
            .filter(pk=document_id, status=Status.PROCESSING)
            .only("stage", "attempt_log")
            .first()
        )
        if document is None:
            return False
        fields = {
            "attempt_log": [
                *document.attempt_log,
                attempt_entry(
                    stage=document.stage, kind=error.kind, message=error.message, now=now
                ),
            ],
            "failure_kind": error.kind,
            "failure_message": error.message,
            "resume_at": resume_at,
            **RELEASED,
        }
        if retry:
            fields.update(stage=Stage.WAITING if resume_at else Stage.QUEUED, queued_at=now)
        else:
            fields.update(status=Status.FAILED, finished_at=now)
        _update(Document.objects.filter(pk=document_id), **fields)
    return True


def _fail_for_good(
    unchanged: QuerySet[Document], error: ApplicationError, *, attempt_log, losses, now
) -> bool:
    return bool(
        _update(
            unchanged,
            status=Status.FAILED,
            failure_kind=error.kind,
            failure_message=error.message,
            finished_at=now,
            resume_at=None,
            attempt_log=attempt_log,
            worker_losses=losses,
            **RELEASED,
        )
    )


def fail_after_worker_lost(document_id, *, task_id: str, now=None) -> ApplicationError | None:
    """Celery re-sent a task whose worker died until its retries ran out, and gave up: the
    document fails (it must never stay ``processing`` with nobody coming back for it). Only a
    document this task still holds, or left queued with no claim, is touched. Returns the
    error written, or None when there was nothing to do."""
    now = now or timezone.now()
    current = (
        Document.objects.filter(pk=document_id, status=Status.PROCESSING)
        .filter(Q(claimed_by__startswith=f"{task_id}:") | Q(claimed_by="", last_task_id=task_id))
        .values("claimed_by", "heartbeat_at", "stage", "attempt_log", "worker_losses")
        .first()
    )
    if current is None:
        return None
    losses = current["worker_losses"] + 1
    if too_many_losses(losses):
        error = RepeatedWorkerLoss(repeated_loss_message(losses))
    else:
        error = ApplicationError(
            "The worker processing this document stopped before finishing, and no retries "
            "were left; it will be retried later.",
            FailureKind.WORKER_LOST,
        )
    attempt_log = [
        *current["attempt_log"],
        attempt_entry(stage=current["stage"], kind=error.kind, message=error.message, now=now),
    ]
    unchanged = Document.objects.filter(
        pk=document_id,
        status=Status.PROCESSING,
        claimed_by=current["claimed_by"],
        heartbeat_at=current["heartbeat_at"],
    )
    if _fail_for_good(unchanged, error, attempt_log=attempt_log, losses=losses, now=now):
        return error
    return None


def fail_after_time_limit(document_id, error: ApplicationError, *, task_id: str) -> bool:
    """The task's hard time limit killed its pool process (the soft limit did not reach the
    code running): the document fails with ``error`` (a ``time_limit``), if this task still
    holds it or left it queued with no claim. True when it was written."""
    now = timezone.now()
    current = (
        Document.objects.filter(pk=document_id, status=Status.PROCESSING)
        .filter(Q(claimed_by__startswith=f"{task_id}:") | Q(claimed_by="", last_task_id=task_id))
        .values("claimed_by", "heartbeat_at", "stage", "attempt_log", "worker_losses")
        .first()
    )
    if current is None:
        return False
    unchanged = Document.objects.filter(
        pk=document_id,
        status=Status.PROCESSING,
        claimed_by=current["claimed_by"],
        heartbeat_at=current["heartbeat_at"],
    )
    attempt_log = [
        *current["attempt_log"],
        attempt_entry(stage=current["stage"], kind=error.kind, message=error.message, now=now),
    ]
    return _fail_for_good(
        unchanged, error, attempt_log=attempt_log, losses=current["worker_losses"], now=now
    )


# --- people and schedules ---------------------------------------------------------------------


def queue_again(eligible: QuerySet[Document], *, checkpoint: str | None = "") -> list:
    """Put documents back to ``queued``, in one UPDATE; returns their ids. Rows another
    transaction holds are skipped rather than waited for.

    ``checkpoint``: "" starts from the beginning (a reprocess); None keeps the checkpoint
    an earlier attempt left (a retry resumes at indexing when the chunks and their vectors
    are stored); any other value is written (a re-index of a completed document). The count
    of lost workers starts again: a person (or the scheduled retry, which never picks a
    document failed for losing too many) decided to try once more."""
    kept = {} if checkpoint is None else {"resume_checkpoint": checkpoint}
    with transaction.atomic():
        ids = list(eligible.select_for_update(skip_locked=True).values_list("pk", flat=True))
        _update(
            Document.objects.filter(pk__in=ids),
            **kept,
            status=Status.PROCESSING,
            stage=Stage.QUEUED,
            failure_kind="",
            failure_message="",
            pages_done=0,
            chunks_done=0,
            queued_at=timezone.now(),
            finished_at=None,
            resume_at=None,
            worker_losses=0,
            **RELEASED,
        )
    return ids


def release(queryset: QuerySet[Document]) -> list:
    """Let held documents go: back to ``queued``, in one UPDATE; returns their ids (the
    caller queues their messages). Documents that are not held are left alone."""
    with transaction.atomic():
        ids = list(
            queryset.filter(status=Status.PROCESSING, stage=Stage.HELD)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        _update(
            Document.objects.filter(pk__in=ids, stage=Stage.HELD),
            stage=Stage.QUEUED,
            queued_at=timezone.now(),
            **RELEASED,
        )
    return ids


def count_scheduled_retry(ids) -> None:
    """The scheduled retry queued these documents once more (its attempts are capped)."""
    _update(
        Document.objects.filter(pk__in=ids, status=Status.PROCESSING),
        scheduled_retries=F("scheduled_retries") + 1,
    )


def cancel(queryset: QuerySet[Document], *, by: str = "") -> list:
    """Stop documents that are processing; returns their ids. A running worker notices at its
    next write (its claim is gone); queued messages find nothing to claim."""
    with transaction.atomic():
        ids = list(
            queryset.filter(status=Status.PROCESSING)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        _update(
            Document.objects.filter(pk__in=ids),
            status=Status.FAILED,
            failure_kind=FailureKind.CANCELLED,
            failure_message=f"Cancelled by {by}." if by else "Cancelled.",
            finished_at=timezone.now(),
            **RELEASED,
        )
    return ids


def assign_task(document_id, task_id: str) -> None:
    """Record the task id of the message just queued for a processing document, so the
    stalled sweep can tell whether that message is still on its way."""
    _update(Document.objects.filter(pk=document_id), last_task_id=task_id)


def release_stalled(document: Document, *, now: datetime) -> bool:
    """Clear a stalled document's claim and put it back to ``queued``, if nobody touched it
    since it was read; True when it should get a new message. A dead claim is recorded and
    counted as a lost worker, and past PIPELINE_MAX_WORKER_LOSSES the document fails for
    good instead of going round again (then False: nothing to send)."""
    log = list(document.attempt_log)
    losses = document.worker_losses
    unchanged = Document.objects.filter(
        pk=document.pk,
        status=Status.PROCESSING,
        claimed_by=document.claimed_by,
        heartbeat_at=document.heartbeat_at,
        worker_losses=losses,
    )
    if document.claimed_by:
        losses += 1
        log.append(
            attempt_entry(
                stage=document.stage,
                kind=FailureKind.WORKER_LOST,
                message="The worker processing this document stopped sending heartbeats; "
                "it was queued again."
                if not too_many_losses(losses)
                else "The worker processing this document stopped sending heartbeats.",
                now=now,
            )
        )
        if too_many_losses(losses):
            error = RepeatedWorkerLoss(repeated_loss_message(losses))
            _fail_for_good(unchanged, error, attempt_log=log, losses=losses, now=now)
            return False
    return bool(
        _update(
            unchanged,
            worker_losses=losses,
            stage=Stage.QUEUED,
            queued_at=now,
            resume_at=None,
            attempt_log=log,
            **RELEASED,
        )
    )
