"""Thin Celery tasks: take an id, call the runner or a service. Retry policy lives here; what
each outcome means for the document is decided by ``processing`` and ``lifecycle``.

Every task has an explicit ``name=`` (the names are in ``dispatch.py``, which sends them), so
renaming a module never orphans queued messages.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from documents import dispatch, processing, reconcile, recovery, services
from documents import worker as _worker  # noqa: F401 - connects the worker's signal receivers
from documents.errors import PermanentError, TransientError
from documents.models import Tenant


@shared_task(
    bind=True,
    name=dispatch.PROCESS_DOCUMENT,
    max_retries=settings.PIPELINE_MAX_RETRIES,
    # The delay before Celery re-sends a task whose worker died (task_retry_on_worker_lost);
    # its default is 180 s. The lost-worker cap, not this delay, stops a poison document.
    default_retry_delay=settings.PIPELINE_RETRY_BASE_SECONDS,
    acks_late=True,
    # The wall time a document may take: past the soft limit SoftTimeLimitExceeded is raised
    # in the task and the document fails as time_limit (processing.py); past the hard limit,
    # for a task stuck where the exception cannot reach it (C code), the pool process is
    # killed and the document fails the same way (worker.py).
    soft_time_limit=settings.PIPELINE_MAX_DOCUMENT_SECONDS,
    time_limit=settings.PIPELINE_MAX_DOCUMENT_SECONDS + settings.PIPELINE_TIME_LIMIT_GRACE_SECONDS,
    # Permanent failures are expected outcomes (a corrupt upload), not bugs: the document
    # records them, and Sentry's Celery integration skips exceptions listed in ``throws``.
    throws=(PermanentError,),
)
def process_document(self, document_id: str):
    outcome = processing.process_document(
        document_id,
        task_id=self.request.id,
        retries=self.request.retries,
        max_retries=self.max_retries,
    )
    if outcome.retry_in is not None:
        raise self.retry(exc=outcome.error, countdown=outcome.retry_in)
    if outcome.error is not None and outcome.cause is not None:
        raise outcome.error from outcome.cause
    if outcome.error is not None:
        raise outcome.error
    return outcome.summary


@shared_task(name=dispatch.FAN_OUT, acks_late=True)
def fan_out(name: str, calls: list) -> int:
    """Publish a bulk action's per-document messages (see dispatch._after_commit)."""
    dispatch.send_many(name, calls)
    return len(calls)


@shared_task(name="documents.test_celery")
def test_celery(word: str = "pong") -> str:
    """A task with no side effects, to check that a worker answers end to end."""
    return word


@shared_task(
    bind=True,
    name=dispatch.PURGE_DOCUMENT_VECTORS,
    autoretry_for=(TransientError,),
    retry_backoff=2,
    retry_jitter=False,
    max_retries=5,
    acks_late=True,
)
def purge_document_vectors(self, document_id: str) -> int:
    return services.document_purge_vectors_now(document_id=document_id)


@shared_task(name=dispatch.CLEANUP_DELETED_DOCUMENTS, acks_late=True)
def cleanup_deleted_documents(document_ids: list[str] | None = None) -> dict:
    cleaned, failed = services.deleted_documents_cleanup(document_ids=document_ids)
    return {"cleaned": cleaned, "failed": failed}


@shared_task(name=dispatch.RECONCILE_TENANT, acks_late=True)
def reconcile_tenant(tenant_id: int, repair: bool = False) -> dict:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return {"tenant": tenant_id, "outcome": "no such tenant"}
    report = reconcile.reconcile_tenant(tenant, repair_drift=repair)
    return {
        "tenant": tenant.slug,
        "outcome": report.outcome,
        "orphans": report.orphans,
        "missing": report.missing,
        "wrong_namespace": report.wrong_namespace,
    }


@shared_task(name="documents.reconcile_vectors")
def reconcile_vectors() -> dict:
    return {"queued": recovery.vectors_reconcile()}


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
