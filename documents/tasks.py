"""Thin Celery tasks: take an id, call the pipeline or a service. Retry policy lives here."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from documents.pipeline import run
from documents.pipeline.errors import (
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
