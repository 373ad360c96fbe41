"""The management commands: each prints a summary table; ingest --wait follows to the end."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document, Status
from tests.factories import make_document


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingest_uploads_a_folder_recursively_and_waits_for_the_outcome(
    personas, celery_worker, tmp_path
):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Apples grow on trees. " * 40)
    (tmp_path / "sub" / "b.md").write_text("# Pears\n\nPears are sweet. " * 40)
    (tmp_path / "sub" / "c.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.txt").write_bytes(b"")
    out = run("ingest", str(tmp_path), "--tenant", "acme", "--wait", "--timeout", "180")
    assert "2 queued, 2 refused" in out
    assert "c.bin" in out and "empty.txt" in out and "is empty" in out
    assert "2 completed" in out
    documents = Document.objects.filter(tenant=personas.tenant_a)
    assert sorted(d.original_filename for d in documents) == ["a.txt", "b.md"]
    assert all(d.status == Status.COMPLETED for d in documents)


@pytest.mark.django_db
def test_ingest_refuses_an_unknown_tenant_and_a_missing_path(personas, tmp_path):
    with pytest.raises(CommandError, match="No tenant"):
        run("ingest", str(tmp_path), "--tenant", "nope")
    with pytest.raises(CommandError, match="neither a file nor a folder"):
        run("ingest", str(tmp_path / "missing"), "--tenant", "acme")


@pytest.mark.django_db
def test_reprocess_queues_finished_documents_and_skips_processing_ones(personas, isolated_queue):
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    make_document(personas.tenant_a)  # processing
    make_document(personas.tenant_b, status=Status.COMPLETED)
    out = run("reprocess", "--tenant", "acme")
    assert "| queued for reprocessing     | 1" in out
    assert "| skipped: already processing | 1" in out
    done.refresh_from_db()
    assert done.status == Status.PROCESSING and done.stage == "queued"


@pytest.mark.django_db
def test_retry_failed_all_takes_permanent_failures_too(personas, isolated_queue):
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    assert "| queued for a retry | 0" in run("retry_failed")  # the schedule's rule: not permanent
    assert "| queued for a retry | 1" in run("retry_failed", "--all")
    failed.refresh_from_db()
    assert failed.status == Status.PROCESSING


@pytest.mark.django_db
def test_requeue_stalled_reports_what_it_examined(personas, isolated_queue):
    out = run("requeue_stalled")
    assert "| examined     | 0" in out and "| queued again | 0" in out


@pytest.mark.django_db
def test_purge_removes_and_verifies_and_skips_processing_documents(personas, settings, tmp_path):
    from documents.clients import get_vector_store
    from documents.pipeline.stores.lancedb_store import LanceDBStore
    from documents.pipeline.types import VectorRecord

    settings.LANCEDB_URI = str(tmp_path / "lancedb")
    done = make_document(personas.tenant_a, status=Status.COMPLETED, vector_count=2)
    store = get_vector_store()
    assert isinstance(store, LanceDBStore)
    vector = [1.0] + [0.0] * 383
    store.upsert(
        personas.tenant_a.vector_namespace,
        [VectorRecord(f"{done.pk}#{i}", vector, {}) for i in range(2)],
    )
    make_document(personas.tenant_a)  # processing: skipped
    out = run("purge", "--tenant", "acme")
    assert "1 purged, 1 skipped" in out
    assert store.list_ids(personas.tenant_a.vector_namespace, f"{done.pk}#") == []
    done.refresh_from_db()
    assert done.vector_count == 0


@pytest.mark.django_db
def test_purge_waits_until_a_lagging_index_shows_the_delete(personas, lagging, settings):
    from tests.documents.runs import long_story, processed

    _, pinecone = lagging
    document = processed(personas.tenant_a, "doc.txt", long_story(1))
    out = run("purge", "--tenant", "acme", "--wait", "0")  # right after the write
    assert "0 purged" in out and "1 still pending" in out and "purge pending" in out
    document.refresh_from_db()
    assert document.vector_state == "purge_pending" and document.vector_count > 0
    out = run("purge", str(document.pk))
    assert "1 purged" in out and "| purged" in out
    assert pinecone.ids(document.namespace) == []
    assert pinecone.visible_ids(document.namespace, "query") == []
    document.refresh_from_db()
    assert document.vector_count == 0


@pytest.mark.django_db
def test_reconcile_reports_drift_per_tenant_and_repairs_it(
    personas, lagging, settings, isolated_queue
):
    import time

    from documents.clients import get_vector_store
    from documents.pipeline.types import VectorRecord
    from tests.documents.runs import long_story, processed, settle

    _, pinecone = lagging
    settings.RECONCILE_GRACE_SECONDS = 1
    document = processed(personas.tenant_a, "doc.txt", long_story(1))
    get_vector_store().upsert(
        document.namespace, [VectorRecord("imported-elsewhere", [1.0] + [0.0] * 767, {})]
    )
    settle(pinecone, document.namespace, "list")
    time.sleep(1.1)
    out = run("reconcile", "--tenant", "acme")
    assert "| acme" in out and "Drift found" in out
    assert "imported-elsewhere" in pinecone.ids(document.namespace)
    out = run("reconcile", "--tenant", "acme", "--repair")
    assert "Drift repaired" in out
    assert "imported-elsewhere" not in pinecone.ids(document.namespace)
    assert "| globex" in run("reconcile") and "Index matches the database" in run("reconcile")


@pytest.mark.django_db
def test_stats_prints_documents_per_tenant_and_status(personas, isolated_queue):
    make_document(personas.tenant_a, status=Status.COMPLETED)
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="encrypted")
    out = run("stats")
    assert "| Acme" in out and "| Encrypted" in out and "queue length: 0" in out
