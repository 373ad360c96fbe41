"""Reconciliation (documents/reconcile.py): drift made behind the project's back, on the
Pinecone double whose reads lag writes, is found, reported and repaired until the index holds
exactly the ids of the database's chunks."""

from __future__ import annotations

import time
import uuid

import pytest

from documents import reconcile
from documents.clients import get_vector_store
from documents.models import Document, Reconciliation, Status
from documents.pipeline.types import VectorRecord
from tests.documents.runs import attempt, long_story, processed, settle

pytestmark = pytest.mark.django_db


def vector(seed: int) -> list[float]:
    return [1.0 + seed] + [0.0] * 767


def ledger(tenant) -> list[str]:
    return sorted(
        vid
        for d in Document.objects.filter(tenant=tenant, status=Status.COMPLETED)
        for vid in d.chunks.values_list("vector_id", flat=True)
    )


def test_drift_made_behind_our_back_is_reported_then_repaired_to_the_ledger_exactly(
    personas,
    lagging,
    settings,
    isolated_queue,
):
    gemini, pinecone = lagging
    settings.RECONCILE_GRACE_SECONDS = 1
    a, b = personas.tenant_a, personas.tenant_b
    d1, d2, d3 = (processed(a, f"doc{i}.txt", long_story(i)) for i in (1, 2, 3))
    e1 = processed(b, "other.txt", long_story(9))
    ns = a.vector_namespace

    # Behind the project's back, through the same API the project uses:
    store = get_vector_store()
    gone = uuid.uuid4()
    store.upsert(
        ns,
        [VectorRecord(f"{gone}#{i}", vector(i), {}) for i in range(3)]  # a deleted document
        + [VectorRecord(f"{d1.pk}#{d1.chunk_count + 3}", vector(4), {})]  # a stale chunk index
        + [VectorRecord("legacy-import-17", vector(5), {})]  # an id from elsewhere
        + [VectorRecord(f"{e1.pk}#0", vector(6), {})],  # another tenant's document
    )
    store.delete_ids(ns, [f"{d2.pk}#1"] + list(d3.chunks.values_list("vector_id", flat=True)))
    settle(pinecone, ns, "list")
    time.sleep(1.1)  # past the grace period of the documents' own writes

    report = reconcile.reconcile_tenant(a)
    assert report.outcome == Reconciliation.Outcome.DRIFT
    assert (report.orphans_deleted, report.orphans_stale, report.orphans_foreign) == (3, 1, 1)
    assert report.wrong_namespace == 1
    assert (report.missing, report.documents_missing) == (1 + d3.chunk_count, 2)
    assert report.samples["orphans_foreign"] == ["legacy-import-17"]
    assert len(pinecone.ids(ns)) == len(ledger(a)) - report.missing + 6  # reported, untouched

    sent = gemini.texts_embedded
    report = reconcile.reconcile_tenant(a, repair_drift=True)
    assert report.outcome == Reconciliation.Outcome.REPAIRED
    assert (report.deleted, report.requeued) == (6, 2)
    for document in (d2, d3):
        document.refresh_from_db()
        assert document.status == Status.PROCESSING  # queued again, at indexing
        assert attempt(document, task_id=f"reindex-{document.pk}").summary is not None
        document.refresh_from_db()
        assert "resumed" in document.stage_timings and "downloading" not in document.stage_timings
    assert gemini.texts_embedded == sent  # the re-index came from the embedding cache

    assert pinecone.ids(ns) == ledger(a)  # the index equals the ledger, exactly
    assert settle(pinecone, ns, "list") == ledger(a)
    assert pinecone.ids(b.vector_namespace) == ledger(b)
    time.sleep(1.1)
    assert reconcile.reconcile_tenant(a).outcome == Reconciliation.Outcome.CLEAN


def test_documents_whose_writes_may_not_show_yet_are_not_called_missing(
    personas,
    lagging,
    settings,
):
    settings.RECONCILE_GRACE_SECONDS = 900
    processed(personas.tenant_a, "fresh.txt", long_story(1))  # listed before the lag passes
    report = reconcile.reconcile_tenant(personas.tenant_a)
    assert report.outcome == Reconciliation.Outcome.CLEAN and report.missing == 0
    assert report.expected == 0  # left out, not counted


def test_a_repair_leaves_the_ids_of_a_document_that_started_a_run_since_the_comparison(
    personas,
    lagging,
    settings,
):
    _, pinecone = lagging
    settings.RECONCILE_GRACE_SECONDS = 1
    document = processed(personas.tenant_a, "doc.txt", long_story(1))
    stale = f"{document.pk}#{document.chunk_count}"
    get_vector_store().upsert(document.namespace, [VectorRecord(stale, vector(1), {})])
    settle(pinecone, document.namespace, "list")
    time.sleep(1.1)
    drift = reconcile.compare(
        personas.tenant_a, get_vector_store().list_ids(document.namespace, "")
    )
    assert drift.orphans_stale == [stale]
    # a reprocess starts now: its run may be writing that very id
    Document.objects.filter(pk=document.pk).update(status=Status.PROCESSING)
    assert reconcile.repair(personas.tenant_a, drift) == (0, 0)
    assert stale in pinecone.ids(document.namespace)


def test_a_reconciliation_that_cannot_reach_the_index_says_why(
    personas,
    lagging,
    fast_pinecone_retries,
):
    _, pinecone = lagging
    pinecone.fail_next(503, times=4)
    report = reconcile.reconcile_tenant(personas.tenant_a)
    assert report.outcome == Reconciliation.Outcome.FAILED
    assert "Pinecone is unavailable" in report.error and report.ended_at is not None
