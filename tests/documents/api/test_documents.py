"""GET /api/documents/ and /api/documents/<id>/: scoped to the caller's tenants."""

from __future__ import annotations

import pytest

from documents.models import Status
from tests.factories import make_document

pytestmark = pytest.mark.django_db


def test_the_list_shows_only_the_callers_tenants(personas, api_for):
    mine = make_document(personas.tenant_a, title="Mine")
    make_document(personas.tenant_b, title="Theirs")
    body = api_for(personas.staff_a).get("/api/documents/").json()
    assert [d["id"] for d in body["results"]] == [str(mine.pk)]


def test_the_list_filters_by_status(personas, api_for):
    make_document(personas.tenant_a, title="Running")
    failed = make_document(
        personas.tenant_a,
        title="Broken",
        status=Status.FAILED,
        failure_kind="corrupt",
        failure_message="The PDF is damaged.",
    )
    body = api_for(personas.owner_a).get("/api/documents/?status=failed").json()
    assert [d["id"] for d in body["results"]] == [str(failed.pk)]
    assert body["results"][0]["failure"] == {
        "kind": "corrupt",
        "label": "Corrupt or truncated file",
        "message": "The PDF is damaged.",
        "final": True,
    }


def test_an_unknown_status_filter_is_a_400(personas, api_for):
    response = api_for(personas.owner_a).get("/api/documents/?status=bogus")
    assert response.status_code == 400


def test_the_detail_shows_status_stage_progress_and_chunks(personas, api_for):
    document = make_document(
        personas.tenant_a,
        stage="embedding",
        pages_total=10,
        pages_done=10,
        chunks_total=4,
        chunks_done=2,
        chunk_count=4,
    )
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["status"] == "processing"
    assert body["stage"] == "embedding"
    assert body["progress"]["percent"] == 75
    assert body["chunk_count"] == 4
    assert body["failure"] is None


def test_another_tenants_document_is_a_404(personas, api_for):
    theirs = make_document(personas.tenant_b)
    assert api_for(personas.staff_a).get(f"/api/documents/{theirs.pk}/").status_code == 404


def test_a_superuser_sees_every_tenant(personas, api_for):
    make_document(personas.tenant_a)
    make_document(personas.tenant_b)
    assert api_for(personas.superuser).get("/api/documents/").json()["count"] == 2


def test_the_openapi_schema_and_docs_page_are_served(personas, client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/ingest/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
