"""The admin's upload page: several files at once, the API's validation and messages, and a
tenant choice that the server enforces."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from documents.models import Document, Status
from tests.documents.pipeline import makedocs

pytestmark = pytest.mark.django_db

UPLOAD = reverse("admin:documents_document_upload")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def text_file(name, text=None):
    # The name is part of the text: files with the same bytes are duplicates of each other.
    text = text or f"Hello from the admin upload of {name}. " * 20
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def test_the_page_renders_a_multiple_file_input_and_preselects_the_only_tenant(client, personas):
    client.force_login(personas.staff_a)
    response = client.get(UPLOAD)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'type="file"' in body and "multiple" in body
    assert f'<option value="{personas.tenant_a.pk}" selected>Acme</option>' in body
    assert "Globex" not in body
    assert response.context["site_header"]  # rendered with admin_site.each_context


def test_a_superuser_chooses_among_every_tenant(client, personas):
    client.force_login(personas.superuser)
    body = client.get(UPLOAD).content.decode()
    assert "Acme" in body and "Globex" in body


def test_several_files_become_documents_and_refused_ones_get_the_apis_message(
    client, personas, tmp_path, django_capture_on_commit_callbacks
):
    pdf = makedocs.text_pdf(tmp_path / "small.pdf", ["A page about apples."])
    files = [
        text_file("notes.txt"),
        SimpleUploadedFile("small.pdf", pdf.read_bytes(), content_type="application/pdf"),
        SimpleUploadedFile("empty.txt", b"", content_type="text/plain"),
        SimpleUploadedFile(
            "blob.bin", bytes(range(256)) * 8, content_type="application/octet-stream"
        ),
    ]
    client.force_login(personas.staff_a)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            UPLOAD, {"tenant": personas.tenant_a.pk, "files": files, "title": ""}, follow=True
        )
    assert response.redirect_chain[-1][0] == reverse("admin:documents_document_changelist")
    messages = [str(m) for m in response.context["messages"]]
    assert "The file 'empty.txt' is empty." in messages
    assert any(m.startswith("The file 'blob.bin' is not a PDF") for m in messages)
    assert any(
        m.startswith("2 documents uploaded to Acme and queued for processing.") for m in messages
    )
    docs = Document.objects.filter(tenant=personas.tenant_a).order_by("original_filename")
    assert [d.original_filename for d in docs] == ["notes.txt", "small.pdf"]
    assert [d.content_type for d in docs] == ["text/plain", "application/pdf"]
    assert all(d.status == Status.PROCESSING and d.uploaded_by == personas.staff_a for d in docs)
    assert len(callbacks) == 2  # each queued after commit, by document_create


def test_a_title_is_applied_to_each_file(client, personas):
    client.force_login(personas.staff_a)
    client.post(
        UPLOAD, {"tenant": personas.tenant_a.pk, "files": [text_file("a.txt")], "title": "Q3"}
    )
    client.post(
        UPLOAD,
        {
            "tenant": personas.tenant_a.pk,
            "files": [text_file("b.txt"), text_file("c.txt")],
            "title": "Q4",
        },
    )
    assert sorted(Document.objects.values_list("title", flat=True)) == [
        "Q3",
        "Q4 — b.txt",
        "Q4 — c.txt",
    ]


def test_a_file_over_the_limit_is_refused_with_the_apis_message(client, personas, settings):
    settings.DOCUMENT_MAX_UPLOAD_BYTES = 100
    client.force_login(personas.staff_a)
    response = client.post(
        UPLOAD, {"tenant": personas.tenant_a.pk, "files": [text_file("big.txt")]}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("'big.txt' is" in m and "the limit is 100" in m for m in messages)
    assert response.redirect_chain[-1][0] == UPLOAD
    assert not Document.objects.exists()


def test_a_crafted_post_into_another_tenant_is_refused(client, personas):
    client.force_login(personas.staff_b)
    response = client.post(UPLOAD, {"tenant": personas.tenant_a.pk, "files": [text_file("x.txt")]})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Document.objects.exists()


def test_an_outsider_has_no_tenant_to_upload_into(client, personas):
    personas.outsider.is_staff = True
    personas.outsider.save()
    client.force_login(personas.outsider)
    response = client.post(UPLOAD, {"tenant": personas.tenant_a.pk, "files": [text_file("x.txt")]})
    assert "Select a valid choice" in response.content.decode()
    assert not Document.objects.exists()


def test_no_file_is_a_form_error(client, personas):
    client.force_login(personas.staff_a)
    response = client.post(UPLOAD, {"tenant": personas.tenant_a.pk})
    assert "Choose at least one file." in response.content.decode()


def test_the_upload_page_needs_a_staff_login(client, personas):
    response = client.get(UPLOAD)
    assert response.status_code == 302 and "/login/" in response["Location"]
