"""POST /api/ingest/: what it accepts, what it refuses and with which status and reason."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from rest_framework.test import APIClient

from documents.models import Document, Status
from tests.documents.pipeline.makedocs import image_pdf, text_pdf, tiff

pytestmark = pytest.mark.django_db

TEXT = b"Quarterly report.\n\nRevenue grew in every region. Costs fell.\n"


def upload(name: str, content: bytes) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def post(client, name="report.txt", content=TEXT, **fields):
    return client.post(
        "/api/ingest/", {"file": upload(name, content), **fields}, format="multipart"
    )


def test_it_accepts_a_file_stores_it_and_answers_202_without_processing_it(
    personas, api_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(api_for(personas.staff_a), title="Q3")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["message"] == "Processing started"
    assert body["async"] is True
    document = Document.objects.get(pk=body["document_id"])
    assert body["task_id"] == document.last_task_id
    assert body["status_url"].endswith(f"/api/documents/{document.pk}/")
    assert document.tenant == personas.tenant_a
    assert document.title == "Q3"
    assert document.status == Status.PROCESSING and document.stage == "queued"
    assert document.content_type == "text/plain"
    assert document.size_bytes == len(TEXT)
    assert document.storage_key == (f"tenants/acme/documents/{document.pk}/report.txt")
    with default_storage.open(document.storage_key, "rb") as fh:
        assert fh.read() == TEXT
    # The message is sent only after the transaction commits.
    assert len(callbacks) == 1


def test_the_task_is_queued_only_after_commit(
    personas, api_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(api_for(personas.staff_a))
        assert Document.objects.count() == 1
    assert len(callbacks) == 1


def test_no_file_is_a_400_with_a_reason(personas, api_for):
    response = api_for(personas.staff_a).post("/api/ingest/", {"title": "x"}, format="multipart")
    assert response.status_code == 400
    assert "No file" in response.json()["error"]["message"]


def test_an_empty_file_is_a_400(personas, api_for):
    response = post(api_for(personas.staff_a), content=b"")
    assert response.status_code == 400
    assert "empty" in response.json()["error"]["message"]
    assert not Document.objects.exists()


@override_settings(DOCUMENT_MAX_UPLOAD_BYTES=1000)
def test_a_file_over_the_limit_is_a_413(personas, api_for):
    response = post(api_for(personas.staff_a), content=b"word " * 400)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    assert not Document.objects.exists()


@override_settings(DOCUMENT_MAX_UPLOAD_BYTES=1000)
def test_a_body_far_over_the_limit_is_refused_before_it_is_read(personas, api_for):
    response = post(api_for(personas.staff_a), content=b"x" * 200_000)
    assert response.status_code == 413


def test_a_type_is_judged_from_the_bytes_not_the_name(personas, api_for):
    # A ZIP that is not a Word document, named like a PDF.
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.bin", b"\x00\x01\x02")
    response = post(api_for(personas.staff_a), name="report.pdf", content=buffer.getvalue())
    assert response.status_code == 415
    assert "not a PDF" in response.json()["error"]["message"]


def test_binary_bytes_named_txt_are_a_415(personas, api_for):
    response = post(api_for(personas.staff_a), content=bytes(range(256)) * 4)
    assert response.status_code == 415


def test_no_credentials_is_a_401(personas):
    response = post(APIClient())
    assert response.status_code == 401


def test_a_tenant_the_user_is_not_a_member_of_is_a_403(personas, api_for):
    response = post(api_for(personas.staff_a), tenant="globex")
    assert response.status_code == 403
    assert not Document.objects.exists()


def test_an_outsider_with_no_tenant_gets_a_403(personas, api_for):
    assert post(api_for(personas.outsider)).status_code == 403


def test_a_member_of_several_tenants_must_name_one(personas, api_for):
    from tests.factories import MembershipFactory

    MembershipFactory(user=personas.staff_a, tenant=personas.tenant_b)
    client = api_for(personas.staff_a)
    response = post(client)
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]["message"]
    response = post(client, tenant="globex")
    assert response.status_code == 202
    assert Document.objects.get().tenant == personas.tenant_b


def test_session_authentication_works_too(personas):
    client = APIClient()
    client.force_login(personas.staff_b)
    response = post(client)
    assert response.status_code == 202
    assert Document.objects.get().tenant == personas.tenant_b


# --- the estimate, duplicates and limits (issue 13) -------------------------------------------


def test_the_answer_includes_the_estimate(personas, api_for):
    body = post(api_for(personas.staff_a), content=TEXT * 40).json()
    assert body["duplicate"] is False and body["stage"] == "queued"
    guess = body["estimate"]
    assert guess["complete"] and guess["pages"] == 1 and guess["pages_to_ocr"] == 0
    assert guess["tokens"] > 0 and guess["requests"] >= 1 and guess["seconds"] > 0
    assert guess["depth"] == "structure"


def test_the_answer_for_a_pdf_has_its_pages_to_ocr_and_tokens_from_its_structure(
    personas, api_for, tmp_path
):
    text_pages = text_pdf(tmp_path / "t.pdf", [TEXT.decode() * 20] * 2)
    scan = image_pdf(tmp_path / "s.pdf", ["A scanned page", "Another one", "A third"])
    client = api_for(personas.staff_a)
    text_guess = post(client, name="t.pdf", content=text_pages.read_bytes()).json()["estimate"]
    scan_guess = post(client, name="s.pdf", content=scan.read_bytes()).json()["estimate"]
    for guess in (text_guess, scan_guess):
        assert guess["complete"] and guess["depth"] == "structure"
        assert guess["tokens"] > 0 and guess["requests"] >= 1 and guess["seconds"] > 0
    assert (text_guess["pages"], text_guess["pages_to_ocr"]) == (2, 0)
    assert (scan_guess["pages"], scan_guess["pages_to_ocr"]) == (3, 3)


def test_the_same_bytes_again_answer_200_with_the_existing_document(personas, api_for):
    first = post(api_for(personas.staff_a), name="a.txt").json()
    response = post(api_for(personas.owner_a), name="again.txt")
    assert response.status_code == 200
    body = response.json()
    assert body["duplicate"] is True
    assert body["document_id"] == first["document_id"]
    assert body["status_url"] == first["status_url"]
    assert "keep_duplicate=true" in body["message"]
    assert Document.objects.count() == 1


def test_keep_duplicate_true_keeps_a_new_copy(personas, api_for):
    first = post(api_for(personas.staff_a)).json()
    response = post(api_for(personas.staff_a), keep_duplicate="true")
    assert response.status_code == 202
    assert response.json()["document_id"] != first["document_id"]


def test_a_file_known_to_tenant_a_tells_tenant_b_nothing(personas, api_for):
    post(api_for(personas.staff_a))
    fresh_for_b = post(api_for(personas.staff_b), content=TEXT + b"other bytes")
    response = post(api_for(personas.staff_b))
    # Exactly the answer to a file B never sent before: 202, a new document of B's.
    assert response.status_code == 202
    body = response.json()
    assert set(body) == set(fresh_for_b.json())
    assert body["duplicate"] is False and body["message"] == "Processing started"
    assert Document.objects.get(pk=body["document_id"]).tenant == personas.tenant_b
    detail = api_for(personas.staff_b).get(body["status_url"]).json()
    assert detail["near_duplicates"] == []


def test_a_tenant_that_refuses_large_documents_answers_413_naming_limit_and_estimate(
    personas, api_for
):
    tenant = personas.tenant_a
    tenant.max_pages_per_document, tenant.over_limit_action = 1, "refuse"
    tenant.save()

    with tempfile.TemporaryDirectory() as tmp:
        pdf = text_pdf(Path(tmp) / "two.pdf", ["First page text here.", "Second page text."])
        response = post(api_for(personas.staff_a), name="two.pdf", content=pdf.read_bytes())
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "over_limit"
    assert "2 pages" in error["message"] and "at most 1 pages" in error["message"]


def test_a_held_upload_answers_202_with_the_reason(personas, api_for):
    tenant = personas.tenant_a
    tenant.max_pages_per_document = 1
    tenant.save()

    with tempfile.TemporaryDirectory() as tmp:
        image = tiff(Path(tmp) / "scan.tif", ["one", "two"])
        response = post(api_for(personas.staff_a), name="scan.tif", content=image.read_bytes())
    assert response.status_code == 202
    body = response.json()
    assert body["stage"] == "held" and "at most 1 pages" in body["held_reason"]
    assert body["message"].startswith("Held: ")


def test_the_schema_documents_the_duplicate_answer_and_the_estimate(personas, api_for):
    schema = api_for(personas.staff_a).get("/api/schema/", {"format": "json"}).json()
    ingest = schema["paths"]["/api/ingest/"]["post"]
    assert {"200", "202"} <= set(ingest["responses"])
    assert "keep_duplicate" in str(schema["components"]["schemas"]["IngestRequest"])
    assert "estimate" in schema["components"]["schemas"]["Document"]["properties"]
    assert "/api/audit/" in schema["paths"]
