"""Uploads (documents/intake.py, through services): the preflight estimate stored with the
document, duplicates answered with the existing document within the tenant only, and the
tenant's page and cost limits refusing or holding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents import services
from documents.errors import OverLimit
from documents.models import AuditEntry, Document, Stage, Status
from tests.documents.pipeline import makedocs
from tests.doubles.gemini import GeminiDouble

pytestmark = pytest.mark.django_db

PROSE = "The harbour master counted the boats that came in with the evening tide. " * 30


def text(name="notes.txt", body=PROSE) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body.encode())


def pdf(tmp_path, pages: int, name="report.pdf") -> SimpleUploadedFile:
    path = makedocs.text_pdf(tmp_path / name, [f"Page {i}. {PROSE}" for i in range(pages)])
    return SimpleUploadedFile(name, path.read_bytes())


@pytest.fixture
def gemini_pricing(settings):
    # Only the Gemini counter and price are used: no request reaches the service.
    settings.EMBEDDER = "gemini"
    settings.GEMINI_API_KEY = GeminiDouble.API_KEY
    settings.GEMINI_BASE_URL = "http://127.0.0.1:9"
    settings.GEMINI_PRICE_PER_MILLION_TOKENS = 0.15


# --- the estimate -----------------------------------------------------------------------------


def test_a_text_upload_carries_a_complete_estimate(personas, isolated_queue):
    document = services.document_create(tenant=personas.tenant_a, uploaded_file=text())
    guess = Document.objects.get(pk=document.pk).estimate
    assert guess["complete"] and guess["pages"] == 1 and guess["pages_to_ocr"] == 0
    assert guess["tokens"] > 0 and guess["chunks"] >= 1 and guess["requests"] >= 1
    assert guess["seconds"] > 0
    # The local embedder has no price.
    assert guess["cost_usd"] is None


def test_a_pdf_upload_is_estimated_from_its_structure(personas, isolated_queue, tmp_path):
    document = services.document_create(tenant=personas.tenant_a, uploaded_file=pdf(tmp_path, 3))
    facts = document.preflight["facts"]
    assert facts["depth"] == "structure" and facts["pages_with_text"] == 3
    # No text read in the request: the characters come from the text pages.
    assert facts["text_chars"] is None
    guess = document.estimate
    assert guess["complete"] and guess["depth"] == "structure"
    assert (guess["pages"], guess["pages_to_ocr"]) == (3, 0)
    assert guess["tokens"] > 0 and guess["requests"] >= 1 and guess["seconds"] > 0


def test_a_scanned_pdf_upload_is_estimated_with_its_pages_to_ocr(
    personas, isolated_queue, tmp_path
):
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["First page", "Second page"])
    document = services.document_create(
        tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("scan.pdf", path.read_bytes())
    )
    guess = document.estimate
    assert guess["complete"] and guess["depth"] == "structure"
    assert guess["pages_to_ocr"] == 2 and guess["tokens"] > 0


def test_a_word_upload_is_estimated_from_the_size_of_its_text(personas, isolated_queue, tmp_path):
    path = makedocs.word_docx(tmp_path / "w.docx")
    document = services.document_create(
        tenant=personas.tenant_a, uploaded_file=SimpleUploadedFile("w.docx", path.read_bytes())
    )
    guess = document.estimate
    assert guess["complete"] and guess["depth"] == "structure"
    assert guess["pages_to_ocr"] == 0 and guess["tokens"] > 0


def test_with_gemini_the_estimate_has_a_cost_at_the_configured_price(
    personas, isolated_queue, gemini_pricing, settings
):
    document = services.document_create(tenant=personas.tenant_a, uploaded_file=text())
    guess = document.estimate
    assert guess["cost_usd"] == pytest.approx(guess["tokens"] * 0.15 / 1e6)
    settings.GEMINI_PRICE_PER_MILLION_TOKENS = 0.075
    other = services.document_create(tenant=personas.tenant_a, uploaded_file=text("b.txt"))
    assert other.estimate["cost_usd"] == pytest.approx(other.estimate["tokens"] * 0.075 / 1e6)


# --- duplicates ---------------------------------------------------------------------------------


def test_the_same_bytes_in_the_same_tenant_answer_with_the_existing_document(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    first = services.document_upload(tenant=personas.tenant_a, uploaded_file=text("a.txt"))
    with django_capture_on_commit_callbacks() as callbacks:
        again = services.document_upload(tenant=personas.tenant_a, uploaded_file=text("copy.txt"))
    assert again.duplicate and again.document.pk == first.document.pk
    assert callbacks == []  # nothing queued
    assert Document.objects.filter(tenant=personas.tenant_a).count() == 1


def test_keep_duplicate_makes_a_new_copy(personas, isolated_queue):
    first = services.document_upload(tenant=personas.tenant_a, uploaded_file=text())
    copy = services.document_upload(
        tenant=personas.tenant_a, uploaded_file=text(), keep_duplicate=True
    )
    assert not copy.duplicate and copy.document.pk != first.document.pk
    assert copy.document.sha256 == first.document.sha256


def test_a_file_known_to_tenant_a_tells_tenant_b_nothing(personas, isolated_queue):
    known = services.document_upload(tenant=personas.tenant_a, uploaded_file=text())
    theirs = services.document_upload(tenant=personas.tenant_b, uploaded_file=text())
    # A fresh document of B's own, exactly as if A had never uploaded the file.
    assert not theirs.duplicate and theirs.document.tenant == personas.tenant_b
    assert theirs.document.pk != known.document.pk
    b_entries = AuditEntry.objects.filter(tenant=personas.tenant_b)
    assert [e.details for e in b_entries] == [{}]


# --- limits -------------------------------------------------------------------------------------


def test_a_document_over_the_page_limit_is_refused_with_the_limit_and_the_count(
    personas, isolated_queue, tmp_path
):
    tenant = personas.tenant_a
    tenant.max_pages_per_document, tenant.over_limit_action = 2, "refuse"
    tenant.save()
    with pytest.raises(OverLimit) as refused:
        services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 3))
    assert refused.value.http_status == 413
    assert "3 pages" in refused.value.message and "at most 2 pages" in refused.value.message
    assert not Document.objects.exists()
    entry = AuditEntry.objects.get(action="upload")
    assert entry.count == 0 and entry.details["refused"][0]["file"] == "report.pdf"


def test_a_held_document_is_not_queued_and_says_why(
    personas, isolated_queue, tmp_path, django_capture_on_commit_callbacks
):
    tenant = personas.tenant_a
    tenant.max_pages_per_document = 2
    tenant.save()
    with django_capture_on_commit_callbacks() as callbacks:
        upload = services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 3))
    assert upload.held and callbacks == []
    document = Document.objects.get(pk=upload.document.pk)
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.HELD)
    assert "at most 2 pages" in document.held_reason
    within = services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 2, "b.pdf"))
    assert not within.held and within.document.stage == Stage.QUEUED


def test_releasing_a_held_document_queues_it_and_is_recorded(
    personas, isolated_queue, tmp_path, django_capture_on_commit_callbacks
):
    tenant = personas.tenant_a
    tenant.max_pages_per_document = 1
    tenant.save()
    held = services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 2)).document
    queued = services.document_upload(tenant=tenant, uploaded_file=text()).document
    with django_capture_on_commit_callbacks() as callbacks:
        result = services.documents_release(
            queryset=Document.objects.filter(pk__in=[held.pk, queued.pk]),
            actor=personas.owner_a,
            source="admin",
        )
    assert (result.done, result.skipped) == (1, 1)
    assert len(callbacks) == 1
    assert Document.objects.get(pk=held.pk).stage == Stage.QUEUED
    entry = AuditEntry.objects.get(action="release")
    assert entry.object_ids == [str(held.pk)] and entry.actor == personas.owner_a


def test_a_cost_limit_reads_every_page_at_upload_and_refuses_what_costs_more(
    personas, isolated_queue, tmp_path, gemini_pricing
):
    tenant = personas.tenant_a
    tenant.max_cost_per_document, tenant.over_limit_action = Decimal("0.00001"), "refuse"
    tenant.save()
    with pytest.raises(OverLimit) as refused:
        services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 4))
    assert "estimated to cost $" in refused.value.message
    assert "at most $0.0000" in refused.value.message
    tenant.max_cost_per_document = Decimal("1")
    tenant.save()
    accepted = services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 4)).document
    assert accepted.preflight["facts"]["depth"] == "full"
    assert accepted.estimate["complete"] and accepted.stage == Stage.QUEUED


def test_without_a_price_a_cost_limit_does_not_slow_uploads(personas, isolated_queue, tmp_path):
    tenant = personas.tenant_a
    tenant.max_cost_per_document = Decimal("0.00001")
    tenant.save()
    document = services.document_upload(tenant=tenant, uploaded_file=pdf(tmp_path, 2)).document
    assert document.preflight["facts"]["depth"] == "structure"
    assert document.stage == Stage.QUEUED
