"""Every change of state that an upload, a person or a schedule asks for.

The API, the admin, the management commands and beat all call these functions, which queue
the one ``process_document`` task after commit (DESIGN invariants 2 and 9). The status and
claim fields themselves are written by ``lifecycle`` alone.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from documents import dispatch, embedding_cache, lifecycle, storage, vector_state
from documents.errors import FailureKind, InvalidUpload, NotAMember, TransientError
from documents.models import DeletedDocument, Document, Membership, Status, Tenant
from documents.selectors import tenants_for_user
from documents.uploads import sha256_of, validate_upload

logger = logging.getLogger(__name__)


def tenant_for_upload(*, user, tenant_slug: str | None) -> Tenant:
    """The tenant an upload goes to: the user's only tenant, or the one named, if a member."""
    tenants = tenants_for_user(user)
    if tenant_slug:
        tenant = tenants.filter(slug=tenant_slug).first()
        if tenant is None:
            raise NotAMember(f"You are not a member of a tenant called {tenant_slug!r}.")
        return tenant
    mine = (
        list(tenants[:2])
        if not user.is_superuser
        else list(Tenant.objects.filter(memberships__user=user)[:2])
    )
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise NotAMember("You are not a member of any tenant, so you cannot upload documents.")
    raise InvalidUpload("You belong to several tenants: say which one with the 'tenant' field.")


def document_create(
    *, tenant: Tenant, uploaded_file, uploaded_by=None, title: str = ""
) -> Document:
    """Store the file, create the document and queue its processing after commit."""
    content_type = validate_upload(uploaded_file)
    original_name = (uploaded_file.name or "upload").rsplit("/", 1)[-1][:255]
    document_id = uuid.uuid4()
    sha256 = sha256_of(uploaded_file)
    # The file goes to storage before the row exists and outside any transaction: a network
    # call must never hold a transaction open. If the row cannot be written, the file is removed.
    key = storage.store_file(
        storage.document_key(
            tenant_slug=tenant.slug, document_id=document_id, filename=original_name
        ),
        uploaded_file,
    )
    try:
        with transaction.atomic():
            document = lifecycle.create(
                id=document_id,
                tenant=tenant,
                uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
                title=(title or original_name)[:300],
                original_filename=original_name,
                content_type=content_type,
                size_bytes=uploaded_file.size,
                sha256=sha256,
                storage_key=key,
            )
            dispatch.process_after_commit([(document.pk, document.last_task_id)])
    except Exception:
        storage.delete_file(key)
        raise
    return document


@dataclass(frozen=True)
class BulkResult:
    done: int
    skipped: int
    ids: tuple = ()


def documents_reprocess(*, queryset: QuerySet[Document]) -> BulkResult:
    """Queue documents again from the start; those already processing are skipped."""
    return _requeue(queryset.exclude(status=Status.PROCESSING), total=queryset.count())


def documents_retry_failed(*, queryset: QuerySet[Document]) -> BulkResult:
    """Queue failed documents again; documents in any other state are skipped. A document
    whose chunks and vectors were stored before it failed resumes at indexing."""
    return _requeue(queryset.filter(status=Status.FAILED), total=queryset.count(), from_start=False)


def _requeue(eligible: QuerySet[Document], *, total: int, from_start: bool = True) -> BulkResult:
    with transaction.atomic():
        ids = lifecycle.queue_again(eligible, checkpoint="" if from_start else None)
        # Each message gets its own task id, which the worker records on the row at its claim.
        dispatch.process_after_commit([(pk, dispatch.new_task_id()) for pk in ids])
    return BulkResult(done=len(ids), skipped=total - len(ids), ids=tuple(ids))


def documents_cancel(*, queryset: QuerySet[Document], by: str = "") -> BulkResult:
    """Stop documents that are processing. Vectors an earlier run left are purged too, so a
    cancelled document is not searchable."""
    total = queryset.count()
    with transaction.atomic():
        ids = lifecycle.cancel(queryset, by=by)
        vector_state.purge_after_commit(ids)
    return BulkResult(done=len(ids), skipped=total - len(ids))


def documents_purge_vectors(*, queryset: QuerySet[Document]) -> BulkResult:
    """Remove the vectors of documents that are not processing (a running document would
    write them again); the chunks and the file stay, so a reprocess restores them. The
    documents show "purge pending" until the index's reads show the delete."""
    total = queryset.count()
    with transaction.atomic():
        ids = list(queryset.exclude(status=Status.PROCESSING).values_list("pk", flat=True))
        vector_state.purge_after_commit(ids)
    return BulkResult(done=len(ids), skipped=total - len(ids))


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
    *, queryset: QuerySet[Document], wait: float | None = None, on_progress=None
) -> tuple[list[vector_state.PurgeOutcome], int]:
    """The purge of ``documents_purge_vectors`` done here and now, for the command line:
    delete, then wait (bounded) until the index shows each delete. Returns the outcomes and
    how many documents were skipped because they are processing."""
    total = queryset.count()
    ids = list(queryset.exclude(status=Status.PROCESSING).values_list("pk", flat=True))
    outcomes = vector_state.purge_now(ids, wait=wait, on_progress=on_progress)
    return outcomes, total - len(ids)


def documents_delete(*, queryset: QuerySet[Document]) -> int:
    """Delete documents (their chunks cascade). What lives outside the database -- the stored
    file and the vectors -- is recorded in the same transaction and removed after commit."""
    with transaction.atomic():
        rows = list(
            queryset.select_related("tenant").values_list(
                "pk", "tenant__vector_namespace", "storage_key", "vector_high", "vector_lsn"
            )
        )
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
        Document.objects.filter(pk__in=[row[0] for row in rows]).delete()
        dispatch.cleanup_deleted_after_commit([row[0] for row in rows])
    return len(rows)


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


def tenants_delete(*, queryset: QuerySet[Tenant]) -> int:
    """Delete tenants with their documents. Each document's file and vectors are recorded and
    removed after commit like any document delete, then the tenant row goes."""
    with transaction.atomic():
        tenants = list(queryset)
        documents_delete(queryset=Document.objects.filter(tenant__in=tenants))
        namespaces = [t.vector_namespace for t in tenants]
        # the namespace itself goes once its documents' deletes show (the plan counts it)
        vector_state.namespaces_retire(namespaces)
        embedding_cache.scopes_forget(namespaces)
        Membership.objects.filter(tenant__in=tenants).delete()
        Tenant.objects.filter(pk__in=[t.pk for t in tenants]).delete()
    return len(tenants)
