"""The rules about one row (documents/models.py)."""

from __future__ import annotations

import pytest

from documents.models import Chunk, Status, Tenant
from tests.factories import make_document

pytestmark = pytest.mark.django_db


def test_a_tenant_gets_a_slug_and_a_namespace_that_a_rename_never_changes():
    tenant = Tenant.objects.create(name="Acme Trading Co")
    assert tenant.slug == "acme-trading-co"
    assert tenant.vector_namespace.startswith("tenant-")
    namespace = tenant.vector_namespace
    tenant.name = "Acme Holdings"
    tenant.slug = "acme-holdings"
    tenant.save()
    tenant.refresh_from_db()
    assert tenant.vector_namespace == namespace


def test_two_tenants_never_share_a_namespace():
    a = Tenant.objects.create(name="Same")
    b = Tenant.objects.create(name="Same", slug="same-2")
    assert a.vector_namespace != b.vector_namespace


@pytest.mark.parametrize(
    ("fields", "percent"),
    [
        ({}, 0),
        ({"pages_total": 4, "pages_done": 2}, 25),
        ({"pages_total": 4, "pages_done": 4, "chunks_total": 10, "chunks_done": 0}, 50),
        ({"pages_total": 4, "pages_done": 4, "chunks_total": 10, "chunks_done": 10}, 100),
        ({"status": Status.COMPLETED}, 100),
    ],
)
def test_progress_is_reading_then_embedding(personas, fields, percent):
    assert make_document(personas.tenant_a, **fields).progress_percent == percent


def test_a_documents_vectors_are_found_by_its_id_prefix(personas):
    document = make_document(personas.tenant_a)
    assert document.vector_id_prefix == f"{document.pk}#"
    assert document.namespace == personas.tenant_a.vector_namespace


@pytest.mark.parametrize(("start", "end", "label"), [(3, 3, "p. 3"), (3, 5, "pp. 3–5")])
def test_a_chunk_names_its_page_span(start, end, label):
    assert Chunk(page_start=start, page_end=end).page_span == label
