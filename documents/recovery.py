"""The scheduled services that turn the database's truth back into work (DESIGN invariant 1):
retry transient failures, re-queue stalled documents, clean up what deletes left behind.

Beat runs them through the periodic tasks created in migration 0002; the management commands
``retry_failed`` and ``requeue_stalled`` call the same functions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice.celery import app
from documents import (
    audit,
    broker,
    dispatch,
    embedding_cache,
    lifecycle,
    reconcile,
    scratch,
    services,
    vector_state,
)
from documents.audit import Source
from documents.models import Document, Status, Tenant

logger = logging.getLogger(__name__)

_BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    examined: int
    ids: tuple = ()


def retry_spacing(scheduled_retries: int) -> timedelta:
    """Spacing before scheduled retry n+1: base, 2x, 4x, ... (5, 10, 20, 40 min by default)."""
    return timedelta(seconds=settings.RETRY_FAILED_BASE_SECONDS * (2**scheduled_retries))


def failed_documents_retry(*, now=None, source=Source.SCHEDULE) -> services.BulkResult:
    """Queue again the failed documents whose failure was transient, each once its spacing
    has passed, up to RETRY_FAILED_MAX_ATTEMPTS times. Permanent failures are never retried."""
    now = now or timezone.now()
    candidates = Document.objects.filter(
        lifecycle.transient_failure(),
        scheduled_retries__lt=settings.RETRY_FAILED_MAX_ATTEMPTS,
    ).values_list("pk", "finished_at", "scheduled_retries")[:_BATCH]
    due = [
        pk
        for pk, finished_at, retries in candidates
        if finished_at is None or finished_at + retry_spacing(retries) <= now
    ]
    with transaction.atomic():
        result = services.documents_retry_failed(
            queryset=Document.objects.filter(pk__in=due, status=Status.FAILED), source=source
        )
        lifecycle.count_scheduled_retry(due)
    return result


def stalled_documents(*, now=None) -> list[Document]:
    """Documents that look stalled from the database alone: a claim whose heartbeat is old,
    a document queued for long, or a parked one whose resume time has passed."""
    now = now or timezone.now()
    return list(
        Document.objects.filter(lifecycle.stalled(now)).only(
            "pk",
            "claimed_by",
            "heartbeat_at",
            "last_task_id",
            "stage",
            "attempt_log",
            "worker_losses",
        )[:_BATCH]
    )


def stalled_documents_requeue(*, now=None, source=Source.SCHEDULE) -> SweepResult:
    """Send a new message for each stalled document that has no live task. A document whose
    message still waits in the broker, or is held by a worker, is only waiting for a free
    worker and is left alone; a dead claim is re-queued whatever the broker says."""
    now = now or timezone.now()
    candidates = stalled_documents(now=now)
    if not candidates:
        return SweepResult(requeued=0, examined=0)
    live = broker.live_task_ids()
    requeued = []
    for document in candidates:
        dead_claim = bool(document.claimed_by)
        if not dead_claim and document.last_task_id in live:
            continue
        if lifecycle.release_stalled(document, now=now):
            dispatch.requeue(document.pk)
            requeued.append(document.pk)
    # Recorded only when it did something: the sweep runs every minute.
    audit.record_documents(
        action=audit.REQUEUE,
        source=source,
        ids=requeued,
        details={"examined": len(candidates)},
    )
    return SweepResult(requeued=len(requeued), examined=len(candidates), ids=tuple(requeued))


def temporary_files_cleanup(*, older_than: timedelta = timedelta(hours=6)) -> int:
    """Remove pipeline temporary copies a killed worker left behind: the folders of dead
    processes (workers also do this when they start), and loose files from before
    per-process folders that are older than ``older_than``."""
    folder = Path(settings.PIPELINE_TMP_DIR)
    if not folder.is_dir():
        return 0
    removed = scratch.remove_leftovers().folders
    cutoff = time.time() - older_than.total_seconds()
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def cleanup() -> dict:
    """Expired task results (Celery's backend cleanup, honouring result_expires), temporary
    files, the stored files and vectors of deleted documents and tenants, purges still
    pending, and the embedding cache beyond its bounds."""
    app.backend.cleanup()
    cleaned, failed = services.deleted_documents_cleanup()
    return {
        "temporary_files": temporary_files_cleanup(),
        "deleted_documents_cleaned": cleaned,
        "deleted_documents_failed": failed,
        "pending_purges_verified": vector_state.pending_purges_resume(),
        "namespaces_removed": vector_state.retired_namespaces_cleanup(),
        "embedding_cache_removed": embedding_cache.cleanup(),
    }


def vectors_reconcile() -> int:
    """The weekly reconciliation: one task per tenant, repairing when
    RECONCILE_REPAIR_SCHEDULED is set (else it only reports)."""
    return reconcile.tenants_reconcile_later(
        tenants=Tenant.objects.all(),
        repair_drift=settings.RECONCILE_REPAIR_SCHEDULED,
        source=Source.SCHEDULE,
    )
