"""Text quality through a real worker: a PDF whose pages are clean text, text behind a broken
ToUnicode map, and a badly degraded scan is uploaded through the API; the worker (real
Tesseract) stores the document's quality summary, its flagged page with the reason, and
marks the chunks of that page. Tenant B's staff see none of it."""

from __future__ import annotations

import pytest

from documents.models import Chunk, Status
from documents.pipeline.quality import LOW_CONFIDENCE
from tests.documents.pipeline import makedocs
from tests.documents.test_end_to_end import upload
from tests.polling import wait_for_document

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REPORT = (
    "The quarterly report shows revenue growth in every region of the company.\n"
    "Customers renewed their contracts and the board approved the budget for\n"
    "the next year. Our teams opened two new offices and hired more staff to\n"
    "support the growing number of clients who asked for help with their\n"
    "projects during the summer months, before the holidays started again."
)
# A full page of clean text, long enough for chunks of its own before the later pages.
CLEAN_PAGE = "\n".join(
    f"Line {i}: the lighthouse keeper climbed the stairs and lit the lamp again." for i in range(36)
)


def quality_pdf(tmp_path):
    clean = makedocs.text_pdf(tmp_path / "clean.pdf", [CLEAN_PAGE])
    broken = makedocs.broken_tounicode_pdf(tmp_path / "broken.pdf", [REPORT], "shifted")
    # 64-pixel letters blurred over 8 pixels: Tesseract finds words, mostly wrong ones
    scan = makedocs.degraded(makedocs.text_image(REPORT, size=(2800, 1200)), blur=8.0)
    degraded = makedocs.scan_pdf(tmp_path / "degraded.pdf", [scan])
    return makedocs.joined_pdf(tmp_path / "mixed.pdf", [clean, broken, degraded])


def test_the_worker_stores_the_quality_summary_flags_the_degraded_scan_and_its_chunks(
    tmp_path, personas, api_for, celery_worker
):
    path = quality_pdf(tmp_path)
    body = upload(api_for(personas.staff_a), "mixed.pdf", path.read_bytes())
    document = wait_for_document(body["document_id"], worker=celery_worker, timeout=240)
    assert document.status == Status.COMPLETED, document.failure_message

    quality = document.quality
    assert quality["pages"] == 3
    # the broken layer (page 2) scored as garbage and was read with OCR, which read it well;
    # the scan (page 3) has no layer
    assert quality["garbled_layers"] == 1
    assert quality["ocr_pages"] == 2 and quality["ocr_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert quality["mean_confidence"] is not None
    assert [f["page"] for f in quality["flagged"]] == [3]
    (flag,) = quality["flagged"]
    assert "low OCR confidence" in flag["reason"]
    assert flag["ocr_confidence"] < LOW_CONFIDENCE
    assert document.low_quality

    chunks = list(Chunk.objects.filter(document=document).order_by("index"))
    assert any(c.page_end < 3 for c in chunks), "the clean page should have chunks of its own"
    for chunk in chunks:
        assert chunk.low_quality == (chunk.page_start <= 3 <= chunk.page_end), chunk.page_span

    detail = api_for(personas.staff_a).get(body["status_url"]).json()
    assert detail["quality"]["low_quality"] is True
    assert detail["quality"]["garbled_layers"] == 1
    assert [f["page"] for f in detail["quality"]["flagged_pages"]] == [3]
    listed = api_for(personas.staff_a).get("/api/documents/?low_quality=true").json()
    assert [d["id"] for d in listed["results"]] == [str(document.pk)]

    # tenant B: not the document, not its quality, not in its filtered list
    other = api_for(personas.staff_b)
    assert other.get(body["status_url"]).status_code == 404
    assert other.get("/api/documents/?low_quality=true").json()["results"] == []


def test_a_clean_text_pdf_is_stored_as_trustworthy(tmp_path, personas, api_for, celery_worker):
    path = makedocs.text_pdf(tmp_path / "clean.pdf", [CLEAN_PAGE, REPORT])
    body = upload(api_for(personas.staff_a), "clean.pdf", path.read_bytes())
    document = wait_for_document(body["document_id"], worker=celery_worker)
    assert document.status == Status.COMPLETED, document.failure_message
    assert document.quality == {
        "pages": 2,
        "ocr_pages": 0,
        "ocr_share": 0.0,
        "mean_confidence": None,
        "garbled_layers": 0,
        "flagged": [],
    }
    assert not document.low_quality
    assert not Chunk.objects.filter(document=document, low_quality=True).exists()
