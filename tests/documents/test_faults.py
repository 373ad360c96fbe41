"""Faults with real processes (PostgreSQL, a Redis of its own, worker and beat processes, the
Gemini and Pinecone doubles). Each run of 50 or more documents must end with every document
``completed``, exactly one vector per chunk, nothing ``processing``, and every failed attempt
recorded -- whatever was killed, emptied or refused on the way."""

from __future__ import annotations

import time

import pytest

from documents.models import DeletedDocument, Document, Status, VectorState
from tests.conftest import _worker_env
from tests.fault_rig import FaultRig, make_text_files

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DOCUMENTS = 50


@pytest.fixture
def rig(personas, tmp_path, django_db_blocker):
    database_env = {"DATABASE_URL": _worker_env()["DATABASE_URL"]}
    rig = FaultRig(database_env=database_env, folder=tmp_path).start()
    yield rig
    rig.stop()


def test_worker_processes_killed_with_sigkill_lose_nothing(rig, personas, tmp_path):
    # Slow answers keep documents in flight long enough to be killed mid-task.
    rig.gemini.set_delay(0.3)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    kills = 0
    for _ in range(5):
        time.sleep(2.0)
        kills += rig.kill_a_worker_child()
    assert kills >= 3
    rig.gemini.set_delay(0)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.assert_nothing_lost(personas.tenant_a, documents)
    assert any(e["kind"] == "worker_lost" for d in documents for e in d.attempt_log)


def test_redis_emptied_and_restarted_mid_run_loses_nothing(rig, personas, tmp_path):
    rig.gemini.set_delay(0.2)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    time.sleep(2.0)
    assert rig.redis.cli("flushall") == "OK"
    rig.redis.stop()
    time.sleep(1.0)
    rig.redis.start()
    rig.gemini.set_delay(0)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.assert_nothing_lost(personas.tenant_a, documents)


def test_gemini_answering_30_percent_429_or_503_loses_nothing(rig, personas, tmp_path):
    rig.gemini.set_fault_rate(0.3, (429, 503), seed=7, retry_delay="1s")
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.gemini.clear_faults()
    rig.assert_nothing_lost(personas.tenant_a, documents)
    kinds = {e["kind"] for d in documents for e in d.attempt_log}
    assert kinds & {"rate_limited", "unavailable"}


def test_pinecone_answering_30_percent_429_or_5xx_loses_nothing(rig, personas, tmp_path):
    rig.pinecone.set_fault_rate(0.3, (429, 500, 503), seed=11)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.pinecone.clear_faults()
    rig.assert_nothing_lost(personas.tenant_a, documents)


def test_deletes_right_after_writing_leave_exactly_the_ledger_in_a_lagging_index(
    rig, personas, tmp_path
):
    """The bug of issue 11 with real workers: deleted, cancelled and reprocessed documents
    whose vectors were written a moment ago (Pinecone's reads do not show them yet)."""
    tenant = personas.tenant_a
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), tenant.slug)
    documents = rig.wait_until_settled(tenant, expected=DOCUMENTS)
    ids = sorted(str(d.pk) for d in documents)
    deleted, cancelled, reprocessed = ids[:10], ids[10:20], ids[20:35]
    # At once, while the reads still lag the last writes: an operator's shell.
    rig.shell(
        "from documents import services\n"
        "from documents.models import Document\n"
        f"services.documents_delete(queryset=Document.objects.filter(pk__in={deleted!r}))\n"
        "services.documents_reprocess(queryset=Document.objects.filter("
        f"pk__in={cancelled + reprocessed!r}))\n"
        "services.documents_cancel(queryset=Document.objects.filter("
        f"pk__in={cancelled!r}), by='the fault test')\n"
    )
    deadline = time.monotonic() + 300
    while (
        Document.objects.filter(tenant=tenant, status=Status.PROCESSING).exists()
        or Document.objects.filter(vector_state=VectorState.PURGE_PENDING).exists()
        or DeletedDocument.objects.exists()
    ):
        assert time.monotonic() < deadline, rig.worker.log()[-3000:]
        time.sleep(0.5)
    left = Document.objects.filter(tenant=tenant)
    assert left.count() == DOCUMENTS - 10
    stopped = left.filter(pk__in=cancelled)
    assert {(d.status, d.failure_kind, d.vector_state) for d in stopped} <= {
        (Status.FAILED, "cancelled", VectorState.PURGED),
        # a cancel that found the document already re-indexed and completed does nothing
        (Status.COMPLETED, "", VectorState.WRITTEN),
    }
    ledger = sorted(
        vid
        for d in left.filter(status=Status.COMPLETED)
        for vid in d.chunks.values_list("vector_id", flat=True)
    )
    assert sorted(rig.pinecone.ids(tenant.vector_namespace)) == ledger
