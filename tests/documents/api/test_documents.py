"""GET /api/documents/ and /api/documents/<id>/: scoped to the caller's tenants."""

from __future__ import annotations

import io

import pytest

from documents.models import Document, Status
from tests.documents.pipeline import makedocs
from tests.documents.runs import STORY, attempt
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


def ingest(client, name: str, content: bytes) -> Document:
    handle = io.BytesIO(content)
    handle.name = name
    response = client.post("/api/ingest/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    return Document.objects.get(pk=response.json()["document_id"])


def test_a_completed_document_shows_estimate_against_actual_and_its_tenants_same_text(
    personas, api_for, local_clients, isolated_queue, tmp_path
):
    mine, theirs = api_for(personas.staff_a), api_for(personas.staff_b)
    pdf = makedocs.text_pdf(tmp_path / "story.pdf", [STORY]).read_bytes()
    first = ingest(mine, "story.pdf", pdf)
    # The same words in other bytes: a text file whose case and line breaks differ.
    second = ingest(mine, "story.txt", STORY.upper().replace(". ", ".\n").encode())
    # Tenant B holds the very same file, so the very same text.
    other = ingest(theirs, "story.pdf", pdf)
    for document in (first, second, other):
        assert attempt(document).error is None
        document.refresh_from_db()
    assert first.text_fingerprint == second.text_fingerprint == other.text_fingerprint

    body = mine.get(f"/api/documents/{first.pk}/").json()
    assert body["status"] == "completed" and body["estimate"]["pages"] == 1
    actual = body["actual"]
    assert set(actual) >= {
        "pages",
        "ocr_pages",
        "chars",
        "tokens",
        "chunks",
        "requests",
        "cost_usd",
        "seconds",
    }
    assert (actual["pages"], actual["ocr_pages"]) == (1, 0)
    assert actual["chunks"] == body["chunk_count"] == first.chunks.count() > 0
    assert actual["tokens"] == sum(first.chunks.values_list("token_count", flat=True))
    assert actual["seconds"] > 0
    assert body["near_duplicates"] == [
        {"id": str(second.pk), "title": second.title, "same_file": False}
    ]
    assert mine.get(f"/api/documents/{second.pk}/").json()["near_duplicates"] == [
        {"id": str(first.pk), "title": first.title, "same_file": False}
    ]
    # Tenant B's copy has the same fingerprint; neither tenant ever sees the other's.
    assert theirs.get(f"/api/documents/{other.pk}/").json()["near_duplicates"] == []
    assert mine.get(f"/api/documents/{other.pk}/").status_code == 404
    assert theirs.get(f"/api/documents/{first.pk}/").status_code == 404


def test_a_document_still_processing_has_no_actual_yet(personas, api_for):
    document = make_document(personas.tenant_a)
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["actual"] is None and body["near_duplicates"] == []
