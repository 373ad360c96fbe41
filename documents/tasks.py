"""Thin Celery tasks: take an id, call the pipeline or a service. Retry policy lives here."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from documents import processing as run
from documents import recovery, services
from documents.errors import (
    ApplicationError,
    FailureKind,
    PermanentError,
    TransientError,
)

logger = logging.getLogger(__name__)


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """2 s, 4 s, 8 s ... for attempt 0, 1, 2; a longer delay asked for by the server wins."""
    backoff = settings.PIPELINE_RETRY_BASE_SECONDS * (2**retries)
    return max(backoff, retry_after or 0.0)


def longest_backoff() -> float:
    return retry_countdown(settings.PIPELINE_MAX_RETRIES - 1, None)


def park(document_id: str, exc: TransientError) -> None:
    """Wait for a rate limit to lift: the document shows ``waiting`` with the time it resumes,
    and a delayed message resumes it. Delays past the broker's visibility timeout are left to
    the stalled-document sweep, which resumes parked documents whose time has come."""
    resume_at = timezone.now() + timedelta(seconds=exc.retry_after)
    if not run.record_failure(document_id, exc, will_retry=True, resume_at=resume_at):
        return
    if exc.retry_after <= settings.PIPELINE_PARK_MAX_COUNTDOWN_SECONDS:
        services.document_queue(document_id=document_id, countdown=exc.retry_after)


@shared_task(
    bind=True,
    name="documents.process_document",
    max_retries=settings.PIPELINE_MAX_RETRIES,
    acks_late=True,
    # Permanent failures are expected outcomes (a corrupt upload), not bugs: the document
    # records them, and Sentry's Celery integration skips exceptions listed in ``throws``.
    throws=(PermanentError,),
)
def process_document(self, document_id: str):
    try:
        return run.process(document_id, task_id=self.request.id, retries=self.request.retries)
    except run.ClaimLost:
        # Cancelled (or taken over) while running: drop what this run may have written.
        run.remove_partial_vectors(document_id)
        return None
    except TransientError as exc:
        if exc.retry_after and exc.retry_after > longest_backoff():
            # A quota that frees in minutes: park the document instead of spending retries.
            park(document_id, exc)
            return None
        if self.request.retries < self.max_retries:
            countdown = retry_countdown(self.request.retries, exc.retry_after)
            if run.record_failure(document_id, exc, will_retry=True):
                raise self.retry(exc=exc, countdown=countdown) from exc
            return None
        # The final attempt: the document fails, and re-raising sends one Sentry event.
        run.record_failure(document_id, exc, will_retry=False)
        raise
    except PermanentError as exc:
        run.record_failure(document_id, exc, will_retry=False)
        raise
    except Exception as exc:
        error = run.unexpected_error(exc)
        transient = error.kind in FailureKind.TRANSIENT
        if transient and self.request.retries < self.max_retries:
            run.record_failure(document_id, error, will_retry=True)
            raise self.retry(
                exc=TransientError(error.message, error.kind),
                countdown=retry_countdown(self.request.retries, None),
            ) from exc
        run.record_failure(document_id, error, will_retry=False)
        # Re-raised as our own single-string error so the JSON result backend can rebuild it.
        raise ApplicationError(error.message, error.kind) from exc


@shared_task(name="documents.test_celery")
def test_celery(word: str = "pong") -> str:
    """A task with no side effects, to check that a worker answers end to end."""
    return word


@shared_task(
    bind=True,
    name="documents.purge_document_vectors",
    autoretry_for=(TransientError,),
    retry_backoff=2,
    retry_jitter=False,
    max_retries=5,
    acks_late=True,
)
def purge_document_vectors(self, document_id: str) -> int:
    return services.document_purge_vectors_now(document_id=document_id)


@shared_task(name="documents.cleanup_deleted_documents", acks_late=True)
def cleanup_deleted_documents(document_ids: list[str] | None = None) -> dict:
    cleaned, failed = services.deleted_documents_cleanup(document_ids=document_ids)
    return {"cleaned": cleaned, "failed": failed}


@shared_task(name="documents.retry_failed_documents")
def retry_failed_documents() -> dict:
    result = recovery.failed_documents_retry()
    return {"queued": result.done}


@shared_task(name="documents.requeue_stalled_documents")
def requeue_stalled_documents() -> dict:
    result = recovery.stalled_documents_requeue()
    return {"requeued": result.requeued, "examined": result.examined}


@shared_task(name="documents.cleanup")
def cleanup() -> dict:
    return recovery.cleanup()
