"""Text quality in the admin: the "low quality" filter and column of the document list, the
flagged pages on the document page, the chunk list's marks; another tenant's staff see none
of it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from documents.models import Chunk, Status
from tests.factories import make_chunks, make_document

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:documents_document_changelist")

FLAGGED = {
    "pages": 3,
    "ocr_pages": 2,
    "ocr_share": 0.6667,
    "mean_confidence": 62.4,
    "garbled_layers": 1,
    "flagged": [
        {
            "page": 3,
            "reason": "low OCR confidence (41 of 100)",
            "ocr_confidence": 41.2,
            "garbage_score": None,
        }
    ],
}
CLEAN = {
    "pages": 1,
    "ocr_pages": 0,
    "ocr_share": 0.0,
    "mean_confidence": None,
    "garbled_layers": 0,
    "flagged": [],
}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def documents(personas):
    poor = make_document(
        personas.tenant_a,
        n=1,
        title="Acme poor scan",
        status=Status.COMPLETED,
        quality=FLAGGED,
        low_quality=True,
    )
    clean = make_document(
        personas.tenant_a, n=2, title="Acme clean memo", status=Status.COMPLETED, quality=CLEAN
    )
    theirs = make_document(
        personas.tenant_b,
        n=3,
        title="Globex poor scan",
        status=Status.COMPLETED,
        quality=FLAGGED,
        low_quality=True,
    )
    return poor, clean, theirs


def listed(client, user, **params) -> str:
    client.force_login(user)
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_low_quality_filter_lists_flagged_documents_of_the_users_tenants_only(
    client, personas, documents
):
    body = listed(client, personas.staff_a, low_quality="yes")
    assert "Acme poor scan" in body
    assert "Acme clean memo" not in body and "Globex poor scan" not in body
    assert "1 page flagged" in body
    body = listed(client, personas.staff_a, low_quality="no")
    assert "Acme clean memo" in body and "Acme poor scan" not in body


def test_another_tenants_staff_filtering_low_quality_see_only_their_own(
    client, personas, documents
):
    body = listed(client, personas.staff_b, low_quality="yes")
    assert "Globex poor scan" in body
    assert "Acme poor scan" not in body
    # a crafted tenant filter for A's tenant shows nothing of A either
    body = listed(client, personas.staff_b, low_quality="yes", tenant=personas.tenant_a.pk)
    assert "Acme poor scan" not in body


def test_the_document_page_lists_the_flagged_pages_with_their_reasons(client, personas, documents):
    poor, _, _ = documents
    client.force_login(personas.staff_a)
    body = client.get(reverse("admin:documents_document_change", args=[poor.pk])).content
    body = body.decode()
    assert "Text quality" in body
    assert "2 of 3 (67 %)" in body  # pages read with OCR
    assert "62 of 100" in body  # mean confidence
    assert 'class="doc-flagged-pages"' in body
    assert "low OCR confidence (41 of 100)" in body


def test_the_document_page_of_a_clean_document_says_no_page_is_flagged(client, personas, documents):
    _, clean, _ = documents
    client.force_login(personas.staff_a)
    body = client.get(reverse("admin:documents_document_change", args=[clean.pk])).content
    assert b"No page flagged" in body and b"doc-flagged-pages" not in body


def test_another_tenants_staff_cannot_open_the_document_page_or_its_chunks(
    client, personas, documents
):
    poor, _, _ = documents
    client.force_login(personas.staff_b)
    page = client.get(reverse("admin:documents_document_change", args=[poor.pk]))
    assert page.status_code in (302, 404)
    assert b"low OCR confidence" not in page.content
    chunks = client.get(reverse("admin:documents_document_chunks", args=[poor.pk]))
    assert chunks.status_code == 404


def test_the_chunk_list_marks_chunks_from_flagged_pages(client, personas, documents):
    poor, _, _ = documents
    make_chunks(poor, 4)  # pages 1, 1-2, 2, 2-3
    Chunk.objects.filter(document=poor, index=3).update(low_quality=True)
    client.force_login(personas.staff_a)
    response = client.get(reverse("admin:documents_document_chunks", args=[poor.pk]))
    body = response.content.decode()
    table = body.split('id="chunk-list"')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = table.split("<tr>")[1:]
    assert ["flagged page" in row for row in rows] == [False, False, False, True]
