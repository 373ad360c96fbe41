"""Services (documents/services.py) called directly: what each writes, what it queues after
commit, what it refuses, and that it never acts on rows it should skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from documents import broker, services
from documents.clients import get_vector_store
from documents.errors import InvalidUpload, NotAMember, UnsupportedUpload
from documents.models import DeletedDocument, Document, Stage, Status, Tenant
from documents.pipeline.types import VectorRecord
from tests.factories import MembershipFactory, make_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def lancedb(settings, tmp_path):
    settings.EMBEDDER = "local"
    settings.VECTOR_STORE = "lancedb"
    settings.LANCEDB_URI = str(tmp_path / "lancedb")
    return get_vector_store()


def write_vectors(store, document, count: int) -> None:
    store.upsert(
        document.tenant.vector_namespace,
        [VectorRecord(f"{document.pk}#{i}", [1.0] + [0.0] * 383, {}) for i in range(count)],
    )


# --- uploads ----------------------------------------------------------------------------------


def test_an_upload_is_stored_and_queued_once_after_commit(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        document = services.document_create(
            tenant=personas.tenant_a,
            uploaded_file=SimpleUploadedFile("notes.txt", b"Harbour notes."),
            uploaded_by=personas.staff_a,
        )
    assert len(callbacks) == 1
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
    assert document.content_type == "text/plain" and document.title == "notes.txt"
    assert document.storage_key.startswith(f"tenants/acme/documents/{document.pk}/")
    with default_storage.open(document.storage_key) as stored:
        assert stored.read() == b"Harbour notes."
    assert document.last_task_id in broker.live_task_ids(timeout=0.5)


def stored_files(settings) -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


def test_a_refused_upload_leaves_no_row_and_no_file(personas, settings):
    before = stored_files(settings)
    with pytest.raises(UnsupportedUpload):
        services.document_create(
            tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("x.txt", b"\x00\x01" * 50)
        )
    with pytest.raises(InvalidUpload):
        services.document_create(
            tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("e.txt", b"")
        )
    assert not Document.objects.exists()
    assert stored_files(settings) == before


@pytest.mark.django_db(transaction=True)
def test_the_stored_file_is_removed_when_the_row_cannot_be_written(personas, settings):
    gone = Tenant.objects.create(name="Gone", slug="gone")
    Tenant.objects.filter(pk=gone.pk).delete()  # the object keeps its pk: a dangling key
    with pytest.raises(IntegrityError):
        services.document_create(
            tenant=gone, uploaded_file=SimpleUploadedFile("a.txt", b"orphan text")
        )
    assert not [p for p in stored_files(settings) if "/tenants/gone/" in str(p)]


def test_the_upload_tenant_is_the_only_one_or_the_one_named(personas):
    assert services.tenant_for_upload(user=personas.staff_a, tenant_slug=None) == personas.tenant_a
    MembershipFactory(user=personas.staff_a, tenant=personas.tenant_b)
    with pytest.raises(InvalidUpload, match="several tenants"):
        services.tenant_for_upload(user=personas.staff_a, tenant_slug=None)
    assert services.tenant_for_upload(user=personas.staff_a, tenant_slug="globex") == (
        personas.tenant_b
    )
    with pytest.raises(NotAMember):
        services.tenant_for_upload(user=personas.outsider, tenant_slug=None)
    with pytest.raises(NotAMember):
        services.tenant_for_upload(user=personas.staff_b, tenant_slug="acme")


# --- bulk actions -----------------------------------------------------------------------------


def test_reprocess_requeues_the_idle_skips_the_busy_and_sends_one_message_each(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    busy = make_document(personas.tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.documents_reprocess(queryset=Document.objects.all())
    assert (result.done, result.skipped) == (2, 1)
    assert set(result.ids) == {done.pk, failed.pk}
    assert broker.queue_length(isolated_queue) == 2
    busy.refresh_from_db()
    assert busy.stage == Stage.QUEUED and busy.attempt_log == []


def test_retry_takes_only_failed_documents(personas, isolated_queue):
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="unavailable")
    make_document(personas.tenant_a, status=Status.COMPLETED)
    result = services.documents_retry_failed(queryset=Document.objects.all())
    assert result.ids == (failed.pk,) and result.skipped == 1
    failed.refresh_from_db()
    assert failed.status == Status.PROCESSING and failed.failure_kind == ""


def test_cancel_fails_processing_documents_and_queues_their_purge(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    busy = make_document(personas.tenant_a)
    make_document(personas.tenant_a, status=Status.COMPLETED)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.documents_cancel(queryset=Document.objects.all(), by="ann")
    assert (result.done, result.skipped) == (1, 1)
    busy.refresh_from_db()
    assert busy.failure_message == "Cancelled by ann."
    assert broker.queue_length(isolated_queue) == 1


def test_a_purge_removes_the_vectors_verifies_the_listing_and_zeroes_the_count(personas, lancedb):
    document = make_document(personas.tenant_a, status=Status.COMPLETED, vector_count=3)
    neighbour = make_document(personas.tenant_a, status=Status.COMPLETED, vector_count=1)
    write_vectors(lancedb, document, 3)
    write_vectors(lancedb, neighbour, 1)
    assert services.document_purge_vectors_now(document_id=document.pk) == 3
    document.refresh_from_db()
    assert document.vector_count == 0
    assert lancedb.list_ids(document.tenant.vector_namespace, "") == [f"{neighbour.pk}#0"]


def test_a_delete_leaves_a_tombstone_until_the_file_and_vectors_are_gone(
    personas, lancedb, django_capture_on_commit_callbacks, isolated_queue
):
    document = services.document_create(
        tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("a.txt", b"Some text.")
    )
    write_vectors(lancedb, document, 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.documents_delete(queryset=Document.objects.filter(pk=document.pk)) == 1
    assert not Document.objects.filter(pk=document.pk).exists()
    tombstone = DeletedDocument.objects.get(document_id=document.pk)
    assert tombstone.storage_key == document.storage_key
    assert services.deleted_documents_cleanup() == (1, 0)
    assert not DeletedDocument.objects.exists()
    assert not default_storage.exists(document.storage_key)
    assert lancedb.list_ids(document.tenant.vector_namespace, f"{document.pk}#") == []


def test_a_tenant_delete_takes_its_documents_and_memberships_and_no_other_tenants(
    personas, isolated_queue
):
    mine = make_document(personas.tenant_a, status=Status.COMPLETED)
    theirs = make_document(personas.tenant_b, status=Status.COMPLETED)
    assert services.tenants_delete(queryset=Tenant.objects.filter(pk=personas.tenant_a.pk)) == 1
    assert not Tenant.objects.filter(pk=personas.tenant_a.pk).exists()
    assert DeletedDocument.objects.filter(document_id=mine.pk).exists()
    assert Document.objects.filter(pk=theirs.pk).exists()
    assert personas.tenant_b.memberships.count() == 2
