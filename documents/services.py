"""Every change of state that an upload, a person or a schedule asks for.

The API, the admin, the management commands and beat all call these functions, which queue
the one ``process_document`` task after commit (DESIGN invariants 2 and 9). The status and
claim fields themselves are written by ``lifecycle`` alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from documents import audit, dispatch, embedding_cache, lifecycle, storage, vector_state
from documents.errors import FailureKind, TransientError

# Uploads (duplicates, the preflight estimate, the tenant's limits) live in intake.py; they
# are services like the rest, and callers find them here.
from documents.intake import Upload, document_create, document_upload, documents_upload
from documents.models import DeletedDocument, Document, Membership, Status, Tenant
from documents.selectors import tenant_of_caller

__all__ = ["Upload", "document_create", "document_upload", "documents_upload"]

logger = logging.getLogger(__name__)


def tenant_for_upload(*, user, tenant_slug: str | None) -> Tenant:
    """The tenant an upload goes to: the user's only tenant, or the one named, if a member."""
    return tenant_of_caller(
        user=user,
        tenant_slug=tenant_slug,
        cannot="you cannot upload documents",
        parameter="'tenant' field",
    )


@dataclass(frozen=True)
class BulkResult:
    done: int
    skipped: int
    ids: tuple = ()


def documents_reprocess(*, queryset: QuerySet[Document], actor=None, source=None) -> BulkResult:
    """Queue documents again from the start; those already processing are skipped."""
    return _requeue(
        queryset.exclude(status=Status.PROCESSING),
        total=queryset.count(),
        action=audit.REPROCESS,
        actor=actor,
        source=source,
    )


def documents_retry_failed(*, queryset: QuerySet[Document], actor=None, source=None) -> BulkResult:
    """Queue failed documents again; documents in any other state are skipped. A document
    whose chunks and vectors were stored before it failed resumes at indexing."""
    return _requeue(
        queryset.filter(status=Status.FAILED),
        total=queryset.count(),
        action=audit.RETRY,
        actor=actor,
        source=source,
        from_start=False,
    )


def _requeue(
    eligible: QuerySet[Document], *, total: int, action, actor, source, from_start: bool = True
) -> BulkResult:
    with transaction.atomic():
        ids = lifecycle.queue_again(eligible, checkpoint="" if from_start else None)
        # Each message gets its own task id, which the worker records on the row at its claim.
        dispatch.process_after_commit([(pk, dispatch.new_task_id()) for pk in ids])
        _record_bulk(action, ids, total=total, actor=actor, source=source)
    return BulkResult(done=len(ids), skipped=total - len(ids), ids=tuple(ids))


def _record_bulk(action, ids, *, total: int, actor, source, **details) -> None:
    """One audit entry per tenant for a bulk action: the ids it acted on, how many it
    skipped of those selected."""
    audit.record_documents(
        action=action,
        source=source,
        by=actor,
        ids=ids,
        details={"selected": total, "skipped": total - len(ids), **details},
    )


def documents_cancel(
    *, queryset: QuerySet[Document], by: str = "", actor=None, source=None
) -> BulkResult:
    """Stop documents that are processing. Vectors an earlier run left are purged too, so a
    cancelled document is not searchable."""
    total = queryset.count()
    with transaction.atomic():
        ids = lifecycle.cancel(queryset, by=by)
        vector_state.purge_after_commit(ids)
        _record_bulk(audit.CANCEL, ids, total=total, actor=actor, source=source)
    return BulkResult(done=len(ids), skipped=total - len(ids), ids=tuple(ids))


def documents_release(*, queryset: QuerySet[Document], actor=None, source=None) -> BulkResult:
    """Let held documents go (an admin decided the estimate is acceptable): they are queued
    for processing. Documents that are not held are skipped."""
    total = queryset.count()
    with transaction.atomic():
        ids = lifecycle.release(queryset)
        dispatch.process_after_commit([(pk, dispatch.new_task_id()) for pk in ids])
        _record_bulk(audit.RELEASE, ids, total=total, actor=actor, source=source)
    return BulkResult(done=len(ids), skipped=total - len(ids), ids=tuple(ids))


def documents_purge_vectors(*, queryset: QuerySet[Document], actor=None, source=None) -> BulkResult:
    """Remove the vectors of documents that are not processing (a running document would
    write them again); the chunks and the file stay, so a reprocess restores them. The
    documents show "purge pending" until the index's reads show the delete."""
    total = queryset.count()
    with transaction.atomic():
        ids = list(queryset.exclude(status=Status.PROCESSING).values_list("pk", flat=True))
        vector_state.purge_after_commit(ids)
        _record_bulk(audit.PURGE, ids, total=total, actor=actor, source=source)
    return BulkResult(done=len(ids), skipped=total - len(ids), ids=tuple(ids))


def document_update(*, document: Document, title: str, actor=None, source=None) -> Document:
    """Change what staff may change on a document (its title); the change is recorded."""
    old = document.title
    if title == old:
        return document
    document.title = title[:300]
    with transaction.atomic():
        document.save(update_fields=["title", "updated_at"])
        audit.record(
            action=audit.EDIT,
            source=source,
            by=actor,
            tenant=document.tenant,
            object_ids=[document.pk],
            details={"title": [old, document.title]},
        )
    return document


def document_purge_vectors_now(*, document_id) -> int:
    """Delete a document's vectors by the ids the database recorded, and wait (bounded) until
    the index's reads show it; returns how many ids the delete was sent for. Called by the
    purge task (network calls, never in a transaction), which retries while it is not shown."""
    outcomes = vector_state.purge_now([document_id])
    if outcomes and not outcomes[0].verified and not outcomes[0].skipped:
        # Pinecone's reads lag its writes: the task looks again after its backoff.
        raise TransientError(
            "The vectors were deleted, but the index does not show it yet (its reads lag "
            "writes); the purge is pending and will be checked again.",
            FailureKind.UNAVAILABLE,
        )
    return outcomes[0].ids if outcomes else 0


def documents_purge_vectors_and_wait(
    *,
    queryset: QuerySet[Document],
    wait: float | None = None,
    on_progress=None,
    actor=None,
    source=None,
) -> tuple[list[vector_state.PurgeOutcome], int]:
    """The purge of ``documents_purge_vectors`` done here and now, for the command line:
    delete, then wait (bounded) until the index shows each delete. Returns the outcomes and
    how many documents were skipped because they are processing."""
    total = queryset.count()
    ids = list(queryset.exclude(status=Status.PROCESSING).values_list("pk", flat=True))
    outcomes = vector_state.purge_now(ids, wait=wait, on_progress=on_progress)
    _record_bulk(audit.PURGE, ids, total=total, actor=actor, source=source, verified=True)
    return outcomes, total - len(ids)


def documents_delete(*, queryset: QuerySet[Document], actor=None, source=None) -> int:
    """Delete documents (their chunks cascade). What lives outside the database -- the stored
    file and the vectors -- is recorded in the same transaction and removed after commit."""
    with transaction.atomic():
        rows = list(
            queryset.select_related("tenant").values_list(
                "pk", "tenant__vector_namespace", "storage_key", "vector_high", "vector_lsn"
            )
        )
        ids = [row[0] for row in rows]
        # Read before the rows go: the audit entries are per tenant.
        tenant_of = _tenants_by_document(ids)
        # The ids to delete come from the high-water mark, not from a listing that may not
        # show the newest vectors yet.
        DeletedDocument.objects.bulk_create(
            [
                DeletedDocument(
                    document_id=pk,
                    vector_namespace=ns,
                    storage_key=key,
                    vector_high=high,
                    vector_lsn=lsn,
                )
                for pk, ns, key, high, lsn in rows
            ],
            ignore_conflicts=True,
        )
        Document.objects.filter(pk__in=ids).delete()
        dispatch.cleanup_deleted_after_commit(ids)
        audit.record_documents(
            action=audit.DELETE, source=source, by=actor, ids=ids, tenant_of=tenant_of
        )
    return len(rows)


def _tenants_by_document(ids) -> dict:
    pairs = list(Document.objects.filter(pk__in=ids).values_list("pk", "tenant_id"))
    tenants = Tenant.objects.in_bulk({t for _, t in pairs})
    return {str(pk): tenants.get(tenant_id) for pk, tenant_id in pairs}


def deleted_documents_cleanup(*, document_ids=None, limit: int = 500) -> tuple[int, int]:
    """Remove the files and vectors of deleted documents; returns (cleaned, still pending).
    A tombstone goes only once its file is gone and the index's reads show its delete; the
    others are recorded and left for the next run of the scheduled cleanup."""
    rows = DeletedDocument.objects.order_by("deleted_at")
    if document_ids is not None:
        rows = rows.filter(document_id__in=document_ids)
    files_gone = []
    pending = 0
    for row in rows[:limit]:
        try:
            storage.delete_file(row.storage_key)
        except Exception as exc:  # noqa: BLE001 - recorded and retried by the schedule
            pending += 1
            _tombstone_note(row, f"The stored file could not be removed: {exc}")
            continue
        files_gone.append(row)
    try:
        verified = vector_state.tombstones_clear(files_gone)
    except Exception as exc:  # noqa: BLE001 - the vector store is down: the next run retries
        for row in files_gone:
            _tombstone_note(row, f"The vectors could not be deleted: {exc}")
        return 0, pending + len(files_gone)
    cleaned = 0
    for row in files_gone:
        if row.pk in verified:
            row.delete()
            cleaned += 1
        else:
            pending += 1
            _tombstone_note(
                row, "The vectors were deleted; the index does not show it yet (reads lag writes)."
            )
    return cleaned, pending


def _tombstone_note(row: DeletedDocument, message: str) -> None:
    DeletedDocument.objects.filter(pk=row.pk).update(
        cleanup_attempts=row.cleanup_attempts + 1, last_error=message[:1000]
    )
    logger.warning("cleanup of deleted document %s: %s", row.document_id, message)


def tenants_delete(*, queryset: QuerySet[Tenant], actor=None, source=None) -> int:
    """Delete tenants with their documents. Each document's file and vectors are recorded and
    removed after commit like any document delete, then the tenant row goes. The audit
    entries stay, with the tenant's name."""
    with transaction.atomic():
        tenants = list(queryset)
        for tenant in tenants:
            audit.record(
                action=audit.TENANT_DELETE,
                source=source,
                by=actor,
                tenant=tenant,
                object_ids=[tenant.pk],
                details={"slug": tenant.slug, "documents": tenant.documents.count()},
            )
        documents_delete(
            queryset=Document.objects.filter(tenant__in=tenants), actor=actor, source=source
        )
        namespaces = [t.vector_namespace for t in tenants]
        # the namespace itself goes once its documents' deletes show (the plan counts it)
        vector_state.namespaces_retire(namespaces)
        embedding_cache.scopes_forget(namespaces)
        Membership.objects.filter(tenant__in=tenants).delete()
        Tenant.objects.filter(pk__in=[t.pk for t in tenants]).delete()
    return len(tenants)


# The tenant fields whose changes the audit trail records.
_TENANT_AUDITED = (
    "name",
    "slug",
    "max_pages_per_document",
    "max_cost_per_document",
    "over_limit_action",
)


def tenant_save(*, tenant: Tenant, actor=None, source=None) -> Tenant:
    """Create or change a tenant (the admin's form has filled it in); what changed is
    recorded."""
    before = (
        Tenant.objects.filter(pk=tenant.pk).values(*_TENANT_AUDITED).first() if tenant.pk else None
    )
    with transaction.atomic():
        tenant.save()
        if before is None:
            action, details = audit.TENANT_CREATE, {"slug": tenant.slug}
        else:
            action = audit.TENANT_EDIT
            details = {
                field: [_plain(before[field]), _plain(getattr(tenant, field))]
                for field in _TENANT_AUDITED
                if before[field] != getattr(tenant, field)
            }
        audit.record(
            action=action,
            source=source,
            by=actor,
            tenant=tenant,
            object_ids=[tenant.pk],
            details=details,
        )
    return tenant


def membership_save(*, membership: Membership, actor=None, source=None) -> Membership:
    """Add someone to a tenant or change their role; recorded on the tenant."""
    before = (
        Membership.objects.filter(pk=membership.pk).values("role").first()
        if membership.pk
        else None
    )
    with transaction.atomic():
        membership.save()
        audit.record(
            action=audit.MEMBERSHIP_ADD if before is None else audit.MEMBERSHIP_EDIT,
            source=source,
            by=actor,
            tenant=membership.tenant,
            object_ids=[membership.tenant_id],
            details={
                "user": membership.user.get_username(),
                "role": membership.role if before is None else [before["role"], membership.role],
            },
        )
    return membership


def memberships_delete(*, queryset: QuerySet[Membership], actor=None, source=None) -> int:
    with transaction.atomic():
        rows = list(queryset.select_related("tenant", "user"))
        for membership in rows:
            audit.record(
                action=audit.MEMBERSHIP_REMOVE,
                source=source,
                by=actor,
                tenant=membership.tenant,
                object_ids=[membership.tenant_id],
                details={"user": membership.user.get_username(), "role": membership.role},
            )
        Membership.objects.filter(pk__in=[m.pk for m in rows]).delete()
    return len(rows)


def _plain(value):
    # Decimals (the cost limit) are not JSON: the audit entry keeps their text.
    return str(value) if value is not None and not isinstance(value, int | str) else value
