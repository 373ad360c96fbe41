"""The admin's view of cost, duplicates and history: the estimate against the actual on the
document page, the same text in other files, the document's own history, the sum of a
selection's estimates, releasing held documents, and the upload page's duplicates."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from documents import services
from documents.models import AuditEntry, Document, Stage, Status
from tests.factories import make_document

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:documents_document_changelist")
UPLOAD = reverse("admin:documents_document_upload")
ESTIMATE = {
    "complete": True,
    "pages": 12,
    "pages_to_ocr": 3,
    "tokens": 45_678,
    "chunks": 200,
    "requests": 13,
    "cost_usd": 0.0068517,
    "seconds": 61.5,
    "rates_from_documents": 7,
}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def change_url(document):
    return reverse("admin:documents_document_change", args=[document.pk])


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]


def act(client, user, action, ids):
    client.force_login(user)
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": 0}
    response = client.post(CHANGELIST, data, follow=True)
    assert response.status_code == 200
    return messages_of(response)


def test_the_document_page_shows_the_estimate_against_the_actual(client, personas):
    document = make_document(
        personas.tenant_a,
        status=Status.COMPLETED,
        preflight={"estimate": ESTIMATE},
        actuals={"pages": 12, "ocr_pages": 2, "tokens": 50_001, "chunks": 220, "seconds": 70.25},
    )
    client.force_login(personas.staff_a)
    html = client.get(change_url(document)).content.decode()
    assert 'class="doc-estimate"' in html
    for shown in ("45,678", "50,001", "$0.0069", "61.5", "70.2", "last 7 documents"):
        assert shown in html


def test_an_estimate_from_the_structure_says_so_in_the_list_and_on_the_page(client, personas):
    from_structure = make_document(
        personas.tenant_a, preflight={"estimate": {**ESTIMATE, "depth": "structure"}}
    )
    from_every_page = make_document(
        personas.tenant_a, n=1, preflight={"estimate": {**ESTIMATE, "depth": "full"}}
    )
    client.force_login(personas.staff_a)
    assert "(from structure)" in client.get(change_url(from_structure)).content.decode()
    assert "(from structure)" not in client.get(change_url(from_every_page)).content.decode()
    listing = client.get(CHANGELIST).content.decode()
    assert listing.count("(from structure)") == 1


def test_a_held_document_says_why_and_an_estimating_one_says_so(client, personas):
    held = make_document(
        personas.tenant_a,
        stage=Stage.HELD,
        preflight={"estimate": {"complete": False, "pages": 900}, "held": "Too <b>many</b>."},
    )
    client.force_login(personas.staff_a)
    html = client.get(change_url(held)).content.decode()
    assert "Held: Too &lt;b&gt;many&lt;/b&gt;." in html
    assert "Estimating: only the file" in html
    listing = client.get(CHANGELIST, {"stage__exact": "held"}).content.decode()
    assert str(held.pk) in listing and ">held<" in listing


def test_near_duplicates_and_history_are_the_tenants_own(client, personas, isolated_queue):
    mine = make_document(personas.tenant_a, status=Status.COMPLETED, text_fingerprint="f" * 64)
    twin = make_document(personas.tenant_a, n=1, status=Status.COMPLETED, text_fingerprint="f" * 64)
    theirs = make_document(personas.tenant_b, status=Status.COMPLETED, text_fingerprint="f" * 64)
    services.documents_reprocess(
        queryset=Document.objects.filter(pk=mine.pk), actor=personas.owner_a, source="admin"
    )
    client.force_login(personas.staff_a)
    html = client.get(change_url(mine)).content.decode()
    assert change_url(twin) in html and "a different file" in html
    assert change_url(theirs) not in html
    assert 'class="doc-history"' in html and "Reprocess" in html
    assert personas.owner_a.username in html


def test_the_estimates_of_a_selection_are_summed(client, personas):
    ids = [
        make_document(personas.tenant_a, n=n, preflight={"estimate": ESTIMATE}).pk for n in range(3)
    ]
    ids.append(make_document(personas.tenant_a, n=9, preflight={"estimate": {"pages": 4}}).pk)
    [message] = act(client, personas.staff_a, "sum_estimates", ids)
    assert message.startswith("Estimate of 3 documents: 36 pages, 9 to OCR, 137,034 tokens")
    assert "600 chunks, 39 embedding requests" in message
    assert "1 more is still being estimated" in message


def test_release_lets_held_documents_go_and_skips_the_rest(client, personas, isolated_queue):
    held = make_document(personas.tenant_a, stage=Stage.HELD)
    done = make_document(personas.tenant_a, n=1, status=Status.COMPLETED)
    theirs = make_document(personas.tenant_b, stage=Stage.HELD)
    messages = act(client, personas.staff_a, "release_held", [held.pk, done.pk, theirs.pk])
    assert messages == ["1 document released and queued, 1 skipped because they were not held."]
    assert Document.objects.get(pk=held.pk).stage == Stage.QUEUED
    assert Document.objects.get(pk=theirs.pk).stage == Stage.HELD
    entry = AuditEntry.objects.get(action="release")
    assert entry.source == "admin" and entry.actor == personas.staff_a


def test_the_upload_page_names_and_links_the_files_already_there(client, personas, isolated_queue):
    existing = services.document_create(
        tenant=personas.tenant_a,
        uploaded_file=SimpleUploadedFile("first.txt", b"Already here. " * 30),
    )
    client.force_login(personas.staff_a)
    response = client.post(
        UPLOAD,
        {
            "tenant": personas.tenant_a.pk,
            "files": [
                SimpleUploadedFile("copy.txt", b"Already here. " * 30),
                SimpleUploadedFile("new.txt", b"Something new. " * 30),
            ],
        },
        follow=True,
    )
    messages = messages_of(response)
    [already] = [m for m in messages if m.startswith("Already in Acme")]
    assert "copy.txt" in already and change_url(existing) in already
    [queued] = [m for m in messages if m.startswith("1 document uploaded to Acme")]
    assert "Estimate (from structure):" in queued
    assert Document.objects.filter(tenant=personas.tenant_a).count() == 2
    entry = AuditEntry.objects.filter(action="upload").latest("id")
    assert entry.count == 1 and entry.source == "admin"
    assert entry.details["already_there"] == [{"file": "copy.txt", "document": str(existing.pk)}]


def test_the_upload_page_can_keep_a_new_copy(client, personas, isolated_queue):
    services.document_create(
        tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("a.txt", b"Same. " * 30)
    )
    client.force_login(personas.staff_a)
    client.post(
        UPLOAD,
        {
            "tenant": personas.tenant_a.pk,
            "files": [SimpleUploadedFile("a.txt", b"Same. " * 30)],
            "keep_duplicate": "on",
        },
    )
    assert Document.objects.filter(tenant=personas.tenant_a).count() == 2


def test_editing_the_title_is_recorded(client, personas):
    document = make_document(personas.tenant_a, status=Status.COMPLETED, title="Old")
    client.force_login(personas.staff_a)
    response = client.post(change_url(document), {"title": "New"})
    assert response.status_code == 302
    assert Document.objects.get(pk=document.pk).title == "New"
    entry = AuditEntry.objects.get(action="edit")
    assert entry.details == {"title": ["Old", "New"]} and entry.actor == personas.staff_a


def test_a_processing_document_shows_when_it_should_finish(client, personas, api_for):
    document = make_document(personas.tenant_a, preflight={"estimate": ESTIMATE})
    client.force_login(personas.staff_a)
    html = client.get(change_url(document)).content.decode()
    assert "Expected to finish at" in html and "about 61.5 s of processing" in html
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["expected_finish_at"] is not None
    assert body["estimate"]["seconds"] == 61.5
