"""Deletes that cannot be missed (documents/vector_state.py), run against the Pinecone double
with reads that lag writes by 1.5-2.5 s (seeded), as the real service's do: cancel,
reprocess, purge, delete and tenant delete shortly after the vectors were written."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from documents import embedding_cache, recovery, services, vector_state
from documents.errors import TransientError
from documents.models import (
    DeletedDocument,
    Document,
    EmbeddingCacheEntry,
    RetiredNamespace,
    Stage,
    Status,
    Tenant,
    VectorState,
)
from tests.documents.runs import STORY, attempt, long_story, processed, settle, upload

pytestmark = pytest.mark.django_db


def ids_of(document) -> list[str]:
    return sorted(document.chunks.values_list("vector_id", flat=True))


def test_a_purge_right_after_writing_deletes_every_vector_and_says_pending_until_shown(
    personas, lagging
):
    _, pinecone = lagging
    document = processed(personas.tenant_a, "story.txt", long_story(1))
    namespace = document.namespace
    assert document.vector_high == document.chunk_count > 1 and document.vector_lsn
    # No wait: the delete is sent, the reads do not show it yet.
    [outcome] = vector_state.purge_now([document.pk], wait=0)
    assert not outcome.verified and outcome.ids == document.chunk_count
    document.refresh_from_db()
    assert document.vector_state == VectorState.PURGE_PENDING
    assert document.vector_count == document.chunk_count  # never 0 before it is shown
    assert pinecone.ids(namespace) == []  # the index has the delete

    [outcome] = vector_state.purge_now([document.pk])  # waits until the reads show it
    assert outcome.verified
    document.refresh_from_db()
    assert (document.vector_state, document.vector_count) == (VectorState.PURGED, 0)
    assert pinecone.visible_ids(namespace, "query") == []


def test_the_purge_task_retries_while_the_delete_does_not_show(personas, lagging, settings):
    document = processed(personas.tenant_a, "story.txt", STORY)
    settings.VECTOR_PURGE_WAIT_SECONDS = 1  # shorter than the lag: cannot be shown yet
    settings.VECTOR_PURGE_POLL_SECONDS = 0.5
    # LSN known, the search side not caught up: the purge task asks to be retried
    with pytest.raises(TransientError, match="purge is pending"):
        services.document_purge_vectors_now(document_id=document.pk)
    document.refresh_from_db()
    assert document.vector_state == VectorState.PURGE_PENDING and document.vector_count > 0


def test_the_cleanup_finishes_purges_left_pending(personas, lagging, settings):
    _, pinecone = lagging
    document = processed(personas.tenant_a, "story.txt", STORY)
    vector_state.purge_now([document.pk], wait=0)
    Document.objects.filter(pk=document.pk).update(
        vector_state_at=document.vector_state_at.replace(year=2020)
    )
    assert vector_state.pending_purges_resume() == 1
    document.refresh_from_db()
    assert document.vector_state == VectorState.PURGED
    assert pinecone.visible_ids(document.namespace, "query") == []


def test_a_reprocess_with_fewer_chunks_right_after_writing_leaves_no_stale_vector(
    personas, lagging, isolated_queue
):
    _, pinecone = lagging
    document = processed(personas.tenant_a, "story.txt", long_story(2, paragraphs=10))
    before = document.chunk_count
    # the same document, shorter: as if the file had been replaced before a reprocess
    Document.objects.filter(pk=document.pk).update(storage_key=upload_shorter(personas))
    services.documents_reprocess(queryset=Document.objects.filter(pk=document.pk))
    assert attempt(document, task_id="again").summary is not None
    document.refresh_from_db()
    assert 0 < document.chunk_count < before and document.vector_high == before
    assert pinecone.ids(document.namespace) == ids_of(document)
    assert settle(pinecone, document.namespace, "list") == ids_of(document)


def upload_shorter(personas) -> str:
    shorter = upload(personas.tenant_b, "short.txt", long_story(2, paragraphs=3).encode())
    return shorter.storage_key


@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_indexing_under_lag_stops_between_batches_and_removes_what_it_wrote(
    personas, lagging, isolated_queue, settings
):
    from tests.documents.test_processing import in_thread, wait_for_stage

    _, pinecone = lagging
    # ~500 small chunks: three upsert requests of at most ~213 768-d vectors
    settings.CHUNK_TOKENS = {**settings.CHUNK_TOKENS, "gemini": 64}
    settings.CHUNK_OVERLAP = {**settings.CHUNK_OVERLAP, "gemini": 8}
    document = upload(personas.tenant_a, "story.txt", long_story(3, paragraphs=40).encode())
    running = in_thread(attempt, document)
    wait_for_stage(document, Stage.EMBEDDING)
    pinecone.set_delay(1.0)  # each upsert request slow: the cancel lands between two
    wait_for_stage(document, Stage.INDEXING)
    services.documents_cancel(queryset=Document.objects.filter(pk=document.pk), by="a test")
    running.result(timeout=120)
    pinecone.set_delay(0)
    document.refresh_from_db()
    assert document.chunk_count > 2 * 213 and document.failure_kind == "cancelled"
    upserts = pinecone.upsert_requests()
    assert 1 <= len(upserts) < 3  # it stopped at the heartbeat after a batch
    assert pinecone.ids(document.namespace) == []
    assert document.vector_state == VectorState.PURGED


def test_a_delete_right_after_writing_keeps_its_tombstone_until_the_delete_shows(
    personas, lagging, isolated_queue, settings
):
    _, pinecone = lagging
    document = processed(personas.tenant_a, "story.txt", long_story(4))
    namespace = document.namespace
    services.documents_delete(queryset=Document.objects.filter(pk=document.pk))
    tombstone = DeletedDocument.objects.get(document_id=document.pk)
    assert tombstone.vector_high == document.chunk_count and tombstone.vector_lsn

    settings.VECTOR_PURGE_WAIT_SECONDS = 0  # look once: the reads lag the delete
    assert services.deleted_documents_cleanup() == (0, 1)
    assert pinecone.ids(namespace) == []
    assert "does not show it yet" in DeletedDocument.objects.get(pk=tombstone.pk).last_error

    settings.VECTOR_PURGE_WAIT_SECONDS = 20
    assert services.deleted_documents_cleanup() == (1, 0)
    assert not DeletedDocument.objects.exists()
    assert pinecone.visible_ids(namespace, "query") == []


def test_a_tenant_delete_removes_its_vectors_its_cached_vectors_and_then_its_namespace(
    personas, lagging, isolated_queue
):
    _, pinecone = lagging
    tenant = personas.tenant_a
    processed(tenant, "one.txt", long_story(5))
    processed(tenant, "two.txt", long_story(6))
    neighbour = processed(personas.tenant_b, "three.txt", long_story(7))
    assert EmbeddingCacheEntry.objects.filter(scope=tenant.vector_namespace).exists()

    services.tenants_delete(queryset=Tenant.objects.filter(pk=tenant.pk))
    assert not EmbeddingCacheEntry.objects.filter(scope=tenant.vector_namespace).exists()
    assert RetiredNamespace.objects.filter(namespace=tenant.vector_namespace).exists()
    result = recovery.cleanup()
    assert result["deleted_documents_cleaned"] == 2 and result["namespaces_removed"] == 1
    assert tenant.vector_namespace not in pinecone.state.namespace_names()
    assert pinecone.ids(neighbour.namespace) == ids_of(neighbour)
    assert embedding_cache.scopes_forget([tenant.vector_namespace]) == 0


# --- who writes the vector fields ---------------------------------------------------------

_VECTOR_FIELDS = {"vector_state", "vector_high", "vector_lsn", "vector_state_at"}
APP = Path(__file__).resolve().parents[2] / "documents"


@pytest.mark.parametrize(
    "path",
    sorted(
        p for p in APP.rglob("*.py") if p.name != "vector_state.py" and "migrations" not in p.parts
    ),
    ids=lambda p: str(p.relative_to(APP)),
)
def test_only_vector_state_writes_what_the_database_knows_of_the_vectors(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"update", "create", "write", "bulk_update", "save"}:
                found += [k.arg for k in node.keywords if k.arg in _VECTOR_FIELDS]
        elif isinstance(node, ast.Assign):
            found += [
                t.attr
                for t in node.targets
                if isinstance(t, ast.Attribute) and t.attr in _VECTOR_FIELDS
            ]
    assert found == [], f"{path.name} writes {found}"


def test_a_processing_document_is_not_purged_under_its_run(personas, lagging):
    document = processed(personas.tenant_a, "story.txt", STORY)
    Document.objects.filter(pk=document.pk).update(status=Status.PROCESSING)
    [outcome] = vector_state.purge_now([document.pk])
    assert outcome.skipped == "processing" and not outcome.verified
