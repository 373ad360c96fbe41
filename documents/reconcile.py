"""Reconciliation: compare each tenant's vector namespace with its chunks in the database (the
source of truth), report the drift, and repair it on request.

Drift is anything the index holds that no live chunk explains, or a live chunk the index
lacks:

- orphans of deleted documents (ids ``<uuid>#<n>`` of no document row),
- stale orphans (a document's chunk index it no longer has, or a purged document's ids),
- foreign orphans (ids this project never makes),
- wrong-namespace vectors (a document of another tenant),
- missing vectors (a completed document's chunk whose id the index does not list).

Pinecone's reads lag its writes, so the listing is taken first and the database read after
it, and documents whose vectors changed within ``RECONCILE_GRACE_SECONDS`` (or that are
processing) are left out: their newest writes and deletes may not be listed yet. Repair
deletes the orphans (after checking again that their documents did not start a new run
meanwhile) and re-indexes the documents with missing vectors: they are queued with a
checkpoint, so the run starts at embedding -- served by the embedding cache -- and indexing.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from documents import audit, dispatch, indexing, lifecycle
from documents.clients import get_embedder, get_vector_store
from documents.models import Chunk, Document, Reconciliation, Status, Tenant, VectorState

logger = logging.getLogger(__name__)

_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})#(\d+)$")
_SAMPLES = 5
_LOOKUP_BATCH = 2000


@dataclass
class Drift:
    listed: int = 0
    expected: int = 0
    orphans_deleted: list[str] = field(default_factory=list)
    orphans_stale: list[str] = field(default_factory=list)
    orphans_foreign: list[str] = field(default_factory=list)
    wrong_namespace: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # document id -> ids
    # documents whose orphans are deletable, with what they looked like when compared
    seen: dict[str, tuple] = field(default_factory=dict)

    @property
    def orphans(self) -> list[str]:
        return self.orphans_deleted + self.orphans_stale + self.orphans_foreign

    @property
    def any(self) -> bool:
        return bool(self.orphans or self.wrong_namespace or self.missing)


def _fingerprint_row(row: dict) -> tuple:
    return (row["status"], row["vector_state"], row["vector_high"], row["updated_at"])


def compare(tenant: Tenant, listed: list[str], *, now=None) -> Drift:
    """The drift between ``listed`` (every id in the tenant's namespace, listed *before* this
    call reads the database) and the tenant's chunks."""
    now = now or timezone.now()
    settled_before = now - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    drift = Drift(listed=len(listed))
    by_document: dict[str, list[str]] = defaultdict(list)
    for vid in listed:
        match = _ID.match(vid)
        if match is None:
            drift.orphans_foreign.append(vid)
        else:
            by_document[match.group(1)].append(vid)

    rows = {}
    keys = list(by_document)
    for start in range(0, len(keys), _LOOKUP_BATCH):
        for row in Document.objects.filter(pk__in=keys[start : start + _LOOKUP_BATCH]).values(
            "pk",
            "tenant_id",
            "status",
            "vector_state",
            "vector_state_at",
            "vector_high",
            "finished_at",
            "updated_at",
        ):
            rows[str(row["pk"])] = row

    def settled(row: dict) -> bool:
        if row["status"] == Status.PROCESSING:
            return False
        latest = max(
            (t for t in (row["vector_state_at"], row["finished_at"]) if t is not None),
            default=None,
        )
        return latest is None or latest < settled_before

    # The live ids: chunks of completed documents whose vectors are written.
    live_documents = Document.objects.filter(
        tenant=tenant, status=Status.COMPLETED, vector_state=VectorState.WRITTEN
    )
    expected_by_document: dict[str, set[str]] = defaultdict(set)
    for document_id, vid in (
        Chunk.objects.filter(document__in=live_documents)
        .values_list("document_id", "vector_id")
        .iterator(chunk_size=5000)
    ):
        expected_by_document[str(document_id)].add(vid)
    # Chunks of failed documents are tolerated (a retry rewrites them), not expected.
    tolerated: dict[str, set[str]] = defaultdict(set)
    for document_id, vid in (
        Chunk.objects.filter(
            document__tenant=tenant,
            document__status=Status.FAILED,
            document__vector_state=VectorState.WRITTEN,
        )
        .values_list("document_id", "vector_id")
        .iterator(chunk_size=5000)
    ):
        tolerated[str(document_id)].add(vid)

    for document_id, ids in by_document.items():
        row = rows.get(document_id)
        if row is None:
            drift.orphans_deleted.extend(ids)
            continue
        if row["tenant_id"] != tenant.pk:
            drift.wrong_namespace.extend(ids)
            drift.seen[document_id] = _fingerprint_row(row)
            continue
        if not settled(row):
            continue
        keep = expected_by_document.get(document_id, set()) | tolerated.get(document_id, set())
        stale = [vid for vid in ids if vid not in keep]
        if stale:
            drift.orphans_stale.extend(stale)
            drift.seen[document_id] = _fingerprint_row(row)

    listed_set = set(listed)
    live_rows = {
        str(r["pk"]): r
        for r in live_documents.values(
            "pk", "status", "vector_state", "vector_state_at", "finished_at", "updated_at"
        )
    }
    for document_id, ids in expected_by_document.items():
        row = live_rows.get(document_id)
        if row is None or not settled(row):
            continue
        drift.expected += len(ids)
        absent = sorted(ids - listed_set, key=_chunk_order)
        if absent:
            drift.missing[document_id] = absent
    return drift


def _chunk_order(vid: str) -> tuple:
    prefix, _, index = vid.rpartition("#")
    return prefix, int(index) if index.isdigit() else -1


def repair(tenant: Tenant, drift: Drift) -> tuple[int, int]:
    """Delete the orphans and wrong-namespace vectors; re-index the documents with missing
    vectors. Returns (ids deleted, documents queued)."""
    deletable = list(drift.orphans_deleted) + list(drift.orphans_foreign)
    # A document that started a run, or changed, since the comparison keeps its ids: they
    # may be the new run's.
    unchanged = set()
    keys = list(drift.seen)
    for start in range(0, len(keys), _LOOKUP_BATCH):
        for row in Document.objects.filter(pk__in=keys[start : start + _LOOKUP_BATCH]).values(
            "pk", "status", "vector_state", "vector_high", "updated_at"
        ):
            if _fingerprint_row(row) == drift.seen[str(row["pk"])]:
                unchanged.add(str(row["pk"]))
    for vid in drift.orphans_stale + drift.wrong_namespace:
        if vid.split("#", 1)[0] in unchanged:
            deletable.append(vid)
    store = get_vector_store()
    if deletable:
        store.delete_ids(tenant.vector_namespace, deletable)
    return len(deletable), _reindex(list(drift.missing))


def _reindex(document_ids: list[str]) -> int:
    """Queue completed documents again at embedding and indexing: their chunks are in the
    database, their vectors (mostly) in the embedding cache."""
    embedder = get_embedder()
    queued = []
    for document_id in document_ids:
        checkpoint = indexing.fingerprint(indexing.stored_chunks(document_id), embedder)
        with transaction.atomic():
            ids = lifecycle.queue_again(
                Document.objects.filter(pk=document_id, status=Status.COMPLETED),
                checkpoint=checkpoint,
            )
            dispatch.process_after_commit([(pk, dispatch.new_task_id()) for pk in ids])
        queued += ids
    return len(queued)


def reconcile_tenant(
    tenant: Tenant, *, repair_drift: bool = False, now=None, source=None, actor=None
) -> Reconciliation:
    """Compare (and with ``repair_drift``, repair) one tenant's namespace; the report is
    saved whatever happens. With a ``source`` (the command line, which runs it here and now)
    the action goes into the audit trail with what it found; the admin and the schedule
    record theirs when they queue it (``tenants_reconcile_later``)."""
    report = Reconciliation.objects.create(tenant=tenant, repair=repair_drift)
    try:
        listed = get_vector_store().list_ids(tenant.vector_namespace, "")
        drift = compare(tenant, listed, now=now)
        deleted = requeued = 0
        if repair_drift and drift.any:
            deleted, requeued = repair(tenant, drift)
        outcome = Reconciliation.Outcome.CLEAN
        if drift.any:
            outcome = (
                Reconciliation.Outcome.REPAIRED if repair_drift else Reconciliation.Outcome.DRIFT
            )
        Reconciliation.objects.filter(pk=report.pk).update(
            ended_at=timezone.now(),
            outcome=outcome,
            listed=drift.listed,
            expected=drift.expected,
            orphans_deleted=len(drift.orphans_deleted),
            orphans_stale=len(drift.orphans_stale),
            orphans_foreign=len(drift.orphans_foreign),
            wrong_namespace=len(drift.wrong_namespace),
            missing=sum(len(ids) for ids in drift.missing.values()),
            documents_missing=len(drift.missing),
            deleted=deleted,
            requeued=requeued,
            samples=_samples(drift),
        )
    except Exception as exc:  # noqa: BLE001 - the report says why; the next run tries again
        logger.exception("reconciliation of %s failed", tenant.slug)
        Reconciliation.objects.filter(pk=report.pk).update(
            ended_at=timezone.now(),
            outcome=Reconciliation.Outcome.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
    report.refresh_from_db()
    if source is not None:
        audit.record(
            action=audit.RECONCILE,
            source=source,
            by=actor,
            tenant=tenant,
            object_ids=[tenant.pk],
            details={
                "repair": repair_drift,
                "outcome": report.outcome,
                "orphans": report.orphans,
                "wrong_namespace": report.wrong_namespace,
                "missing": report.missing,
                "deleted": report.deleted,
                "requeued": report.requeued,
            },
        )
    return report


def _samples(drift: Drift) -> dict:
    return {
        name: ids[:_SAMPLES]
        for name, ids in (
            ("orphans_deleted", drift.orphans_deleted),
            ("orphans_stale", drift.orphans_stale),
            ("orphans_foreign", drift.orphans_foreign),
            ("wrong_namespace", drift.wrong_namespace),
            ("missing", [i for ids in drift.missing.values() for i in ids]),
        )
        if ids
    }


def tenants_reconcile_later(*, tenants, repair_drift: bool, source=None, actor=None) -> int:
    """Queue one reconciliation task per tenant (the admin action, the weekly schedule); the
    audit trail records who asked, for which tenants (the reports hold what was found)."""
    tenants = list(tenants)
    dispatch.reconcile_after_commit([t.pk for t in tenants], repair=repair_drift)
    for tenant in tenants:
        audit.record(
            action=audit.RECONCILE,
            source=source,
            by=actor,
            tenant=tenant,
            object_ids=[tenant.pk],
            details={"repair": repair_drift, "queued": True},
        )
    return len(tenants)
