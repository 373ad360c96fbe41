"""What the database knows of each document's vectors, and the deletes that rely on it.

Pinecone's reads lag its writes, so an index listing cannot say which vectors a document has:
made shortly after a write, it misses it. The database therefore records, before any vector
is written, the high-water mark of the chunk indexes written for a document
(``Document.vector_high``, never lowered) and afterwards the log sequence number (LSN) the
store reported (``vector_lsn``). Cancel, purge, delete and tenant delete remove the ids below
the mark -- plus whatever a listing shows, never a listing alone -- and a purge counts only
once the index's reads show the delete: until then the document's ``vector_state`` is
``purge_pending`` and its vector count is left as it was; a deleted document's tombstone
stays until its delete is shown.

This module is the only writer of ``vector_state``, ``vector_high``, ``vector_lsn`` and
``vector_state_at``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from documents import dispatch
from documents.clients import get_vector_store
from documents.errors import FailureKind
from documents.lifecycle import Claim
from documents.models import DeletedDocument, Document, RetiredNamespace, Status, VectorState
from documents.pipeline.vectors import (
    DeletionWatch,
    delete_document_vectors,
    wait_until_all_deleted,
)

logger = logging.getLogger(__name__)


@dataclass
class Written:
    """What one run wrote, kept in memory so a run that loses its claim can still say."""

    namespace: str
    high: int = 0
    lsn: int | None = None

    def add(self, *, high: int = 0, lsn: int | None = None) -> None:
        self.high = max(self.high, high)
        if lsn is not None:
            self.lsn = lsn if self.lsn is None else max(self.lsn, lsn)


@dataclass(frozen=True)
class PurgeOutcome:
    document_id: str
    ids: int  # ids the delete was sent for
    verified: bool  # the index's reads show it
    skipped: str = ""  # why nothing was done


# --- the ledger, written by the run that writes vectors ---------------------------------------


def reserve(held: Claim, count: int) -> int:
    """Before the vectors of chunk indexes 0 .. count-1 are written: raise the high-water mark
    (through the claim, so a run that lost it writes nothing) and return the previous one,
    whose ids above ``count`` the run deletes."""
    previous = (
        Document.objects.filter(pk=held.document.pk).values_list("vector_high", flat=True).first()
    ) or 0
    held.write(
        vector_high=Greatest(F("vector_high"), Value(count)),
        vector_state=VectorState.WRITTEN,
        vector_state_at=timezone.now(),
    )
    return previous


def record_lsn(document_id, lsn: int | None) -> None:
    """Keep the highest LSN a write of the document's vectors was committed at. Not through
    the claim: it is a fact about the index, true even if the claim was lost meanwhile."""
    if lsn is not None:
        Document.objects.filter(pk=document_id).update(
            vector_lsn=Greatest(Coalesce(F("vector_lsn"), Value(0)), Value(lsn))
        )


def _raise_ledger(document_id, written: Written) -> None:
    fields = {"vector_high": Greatest(F("vector_high"), Value(written.high))}
    if written.lsn is not None:
        fields["vector_lsn"] = Greatest(Coalesce(F("vector_lsn"), Value(0)), Value(written.lsn))
    Document.objects.filter(pk=document_id).update(**fields)


# --- purges -----------------------------------------------------------------------------------


def purge_after_commit(document_ids) -> None:
    """Mark the documents ``purge_pending`` and queue their purge once committed."""
    ids = list(document_ids)
    if not ids:
        return
    Document.objects.filter(pk__in=ids).update(
        vector_state=VectorState.PURGE_PENDING, vector_state_at=timezone.now()
    )
    dispatch.purge_after_commit(ids)


def purge_now(document_ids, *, wait: float | None = None, on_progress=None) -> list[PurgeOutcome]:
    """Delete the vectors of documents that are not processing, then wait -- at most
    ``wait`` seconds (VECTOR_PURGE_WAIT_SECONDS) -- until the index's reads show every
    delete. A shown delete makes the document ``purged`` with 0 vectors; the others stay
    ``purge_pending``. Network calls, never inside a transaction."""
    wait = settings.VECTOR_PURGE_WAIT_SECONDS if wait is None else wait
    documents = list(Document.objects.select_related("tenant").filter(pk__in=list(document_ids)))
    outcomes: dict[str, PurgeOutcome] = {}
    busy = [d for d in documents if d.status == Status.PROCESSING]
    for document in busy:
        # its run writes the vectors again; a purge now would race it
        outcomes[str(document.pk)] = PurgeOutcome(str(document.pk), 0, False, "processing")
    documents = [d for d in documents if d.status != Status.PROCESSING]
    Document.objects.filter(pk__in=[d.pk for d in documents]).exclude(
        vector_state=VectorState.PURGE_PENDING
    ).update(vector_state=VectorState.PURGE_PENDING, vector_state_at=timezone.now())
    store = get_vector_store()
    watches = []
    for document in documents:
        ids = delete_document_vectors(
            store, namespace=document.namespace, document_id=document.pk, high=document.vector_high
        )
        watches.append(_watch(store, document.namespace, ids, document.vector_lsn))
    wait_until_all_deleted(
        watches,
        timeout=wait,
        interval=settings.VECTOR_PURGE_POLL_SECONDS,
        on_progress=on_progress,
    )
    for document, watch in zip(documents, watches, strict=True):
        verified = watch.done and _mark_purged(document)
        outcomes[str(document.pk)] = PurgeOutcome(str(document.pk), len(watch.ids), verified)
    return [outcomes[str(pk)] for pk in document_ids if str(pk) in outcomes]


def _watch(store, namespace: str, ids, lsn: int | None) -> DeletionWatch:
    return DeletionWatch(
        store, namespace, ids, written_lsn=lsn, settle=settings.VECTOR_PURGE_SETTLE_SECONDS
    )


def _mark_purged(document: Document) -> bool:
    """``purged`` with 0 vectors -- unless a run started writing again since we looked (it
    raised the mark or set the state), whose vectors this purge did not cover."""
    return bool(
        Document.objects.filter(
            pk=document.pk,
            vector_state=VectorState.PURGE_PENDING,
            vector_high=document.vector_high,
        )
        .exclude(status=Status.PROCESSING)
        .update(vector_state=VectorState.PURGED, vector_count=0, vector_state_at=timezone.now())
    )


def pending_purges_resume(*, now=None, limit: int = 200) -> int:
    """Purge again the documents still ``purge_pending`` well after their purge was asked for
    (its task gave up, or its message was lost). Returns how many were verified."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.VECTOR_PURGE_WAIT_SECONDS)
    ids = list(
        Document.objects.filter(vector_state=VectorState.PURGE_PENDING, vector_state_at__lt=cutoff)
        .exclude(status=Status.PROCESSING)
        .values_list("pk", flat=True)[:limit]
    )
    return sum(o.verified for o in purge_now(ids)) if ids else 0


# --- a run that lost its claim ----------------------------------------------------------------


def after_lost_claim(document_id, written: Written | None) -> None:
    """A run stopped because its claim is gone. If the document was cancelled, its vectors
    go -- including what this run wrote after the cancel's purge looked. If it was deleted,
    its tombstone learns what this run wrote (and is made again if it was already cleared).
    If another worker took it over, its vectors are that run's and stay."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        if written is not None and written.high:
            tombstone_raise(document_id, written)
        return
    if written is not None:
        _raise_ledger(document.pk, written)
    if document.status == Status.FAILED and document.failure_kind == FailureKind.CANCELLED:
        purge_now([document.pk])


def tombstone_raise(document_id, written: Written) -> None:
    """A deleted document's run wrote vectors after the delete: make sure a tombstone
    covers them, and clean it up after commit."""
    with transaction.atomic():
        row, created = DeletedDocument.objects.get_or_create(
            document_id=document_id,
            defaults={
                "vector_namespace": written.namespace,
                "vector_high": written.high,
                "vector_lsn": written.lsn,
            },
        )
        if not created:
            DeletedDocument.objects.filter(pk=row.pk).update(
                vector_high=Greatest(Coalesce(F("vector_high"), Value(0)), Value(written.high)),
                vector_lsn=Greatest(Coalesce(F("vector_lsn"), Value(0)), Value(written.lsn or 0)),
            )
        dispatch.cleanup_deleted_after_commit([document_id])


# --- deleted documents and tenants ------------------------------------------------------------


def tombstones_clear(rows: list[DeletedDocument], *, wait: float | None = None) -> set:
    """Delete the vectors of deleted documents and wait (bounded) until the index shows it.
    Returns the tombstone ids whose delete is shown: only those may be dropped."""
    wait = settings.VECTOR_PURGE_WAIT_SECONDS if wait is None else wait
    store = get_vector_store()
    watches = []
    for row in rows:
        # A tombstone from before the high-water mark was kept (vector_high None) can only
        # rely on the listing.
        ids = delete_document_vectors(
            store,
            namespace=row.vector_namespace,
            document_id=row.document_id,
            high=row.vector_high or 0,
        )
        watches.append(_watch(store, row.vector_namespace, ids, row.vector_lsn))
    wait_until_all_deleted(watches, timeout=wait, interval=settings.VECTOR_PURGE_POLL_SECONDS)
    return {row.pk for row, watch in zip(rows, watches, strict=True) if watch.done}


def namespaces_retire(namespaces) -> None:
    """A deleted tenant's namespace, to be removed once its documents' tombstones are gone
    (inside the tenant delete's transaction)."""
    RetiredNamespace.objects.bulk_create(
        [RetiredNamespace(namespace=ns) for ns in namespaces], ignore_conflicts=True
    )


def retired_namespaces_cleanup() -> int:
    """Remove the namespaces of deleted tenants whose vectors are all verified gone; returns
    how many were removed. An emptied Pinecone namespace still counts against the plan's
    namespace limit, so it is deleted as a whole."""
    removed = 0
    for row in RetiredNamespace.objects.order_by("retired_at")[:100]:
        if DeletedDocument.objects.filter(vector_namespace=row.namespace).exists():
            continue  # its documents' deletes are not all shown yet
        if Document.objects.filter(tenant__vector_namespace=row.namespace).exists():
            continue  # never happens: a namespace is never reused; safety first
        try:
            get_vector_store().delete_namespace(row.namespace)
        except Exception as exc:  # noqa: BLE001 - recorded, retried by the next cleanup
            RetiredNamespace.objects.filter(pk=row.pk).update(
                cleanup_attempts=F("cleanup_attempts") + 1, last_error=str(exc)[:1000]
            )
            logger.warning("removing namespace %s failed: %s", row.namespace, exc)
            continue
        row.delete()
        removed += 1
    return removed
