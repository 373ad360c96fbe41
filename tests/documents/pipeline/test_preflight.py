"""The preflight: what a file is made of, read without extracting its text, and the same
decision the extractor makes about which pages go to OCR."""

from __future__ import annotations

import io
import zipfile

import pytest

from documents.pipeline.embedders.local import LocalEmbedder
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.preflight import FULL, STRUCTURE, Preflight, inspect
from documents.pipeline.types import ExtractOptions
from tests import corpus
from tests.documents.pipeline import makedocs

PROSE = "The lighthouse keeper climbed the stairs every evening and lit the lamp.\n" * 12


def look(path, content_type, depth=FULL, **kwargs) -> Preflight:
    return inspect(
        path, content_type=content_type, size_bytes=path.stat().st_size, depth=depth, **kwargs
    )


def extractor_ocr_pages(path, content_type) -> int:
    extraction = extract_text(path, content_type=content_type, options=ExtractOptions())
    return sum(1 for page in extraction.pages if page.ocr)


def test_a_pdf_with_text_scanned_and_blank_pages_is_counted_page_by_page(tmp_path):
    text = makedocs.text_pdf(tmp_path / "text.pdf", [PROSE, None, "Short page with some words."])
    facts = look(text, PDF)
    assert (facts.pages, facts.pages_with_text, facts.blank_pages, facts.pages_to_ocr) == (
        3,
        2,
        1,
        0,
    )
    assert facts.complete and facts.kind == "pdf"
    # PDFium's count of the text layer: about the characters of the pages' text.
    assert len(PROSE) * 0.9 < facts.text_chars < len(PROSE) * 1.2 + 100

    scan = makedocs.image_pdf(tmp_path / "scan.pdf", ["Page one of a scan", "Page two"])
    facts = look(scan, PDF)
    assert (facts.pages, facts.pages_to_ocr, facts.pages_with_text, facts.images) == (2, 2, 0, 2)


def test_pages_to_ocr_are_the_pages_the_extractor_reads_with_ocr(tmp_path):
    scan = makedocs.image_pdf(tmp_path / "scan.pdf", ["A scanned page of words", "Another"])
    text = makedocs.text_pdf(tmp_path / "text.pdf", [PROSE, None])
    assert look(scan, PDF).pages_to_ocr == extractor_ocr_pages(scan, PDF) == 2
    assert look(text, PDF).pages_to_ocr == extractor_ocr_pages(text, PDF) == 0


def test_a_stricter_ocr_threshold_sends_more_pages_to_ocr(tmp_path):
    path = makedocs.text_pdf(tmp_path / "short.pdf", ["Twenty-five characters ok"])
    assert look(path, PDF).pages_to_ocr == 0
    assert look(path, PDF, ocr_min_chars=100).pages_to_ocr == 1


def test_the_structure_depth_sorts_pages_from_their_objects_without_reading_text(tmp_path):
    scan = makedocs.image_pdf(tmp_path / "scan.pdf", ["one", "two", "three"])
    facts = look(scan, PDF, depth=STRUCTURE)
    assert facts.complete and facts.depth == STRUCTURE
    assert (facts.pages, facts.pages_to_ocr, facts.pages_with_text, facts.images) == (3, 3, 0, 3)
    # No text is read: the estimate turns text pages into characters.
    assert facts.text_chars is None and facts.sample_chars == 0

    text = makedocs.text_pdf(tmp_path / "text.pdf", [PROSE, None, PROSE])
    facts = look(text, PDF, depth=STRUCTURE)
    assert (facts.pages_with_text, facts.pages_to_ocr, facts.blank_pages) == (2, 0, 1)
    assert (facts.pages_with_text, facts.pages_to_ocr, facts.blank_pages) == (
        look(text, PDF).pages_with_text,
        look(text, PDF).pages_to_ocr,
        look(text, PDF).blank_pages,
    )


def test_the_structure_depth_reads_a_file_object_like_a_path(tmp_path):
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["one", "two"])
    handle = io.BytesIO(path.read_bytes())
    facts = inspect(handle, content_type=PDF, size_bytes=path.stat().st_size, depth=STRUCTURE)
    assert facts == look(path, PDF, depth=STRUCTURE)
    assert handle.tell() == 0


def test_a_pdf_the_structure_pass_cannot_judge_keeps_only_its_page_count(tmp_path):
    # A page tree whose second kid is the tree itself: qpdf's walk gives up, PDFium still
    # counts the one real page.
    looped = makedocs._write_pdf(
        tmp_path / "loop.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length 9 >>\nstream\nBT (x) ET\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
        encrypted=False,
    )
    broken = makedocs.truncated(
        makedocs.text_pdf(tmp_path / "b.pdf", [PROSE] * 3), tmp_path / "t.pdf", 0.3
    )
    for path in (looped, broken):
        facts = look(path, PDF, depth=STRUCTURE)
        assert not facts.complete and facts.pages_to_ocr is None
    assert look(looped, PDF, depth=STRUCTURE).pages == 1
    long = makedocs.text_pdf(tmp_path / "long.pdf", [PROSE] * 5)
    facts = look(long, PDF, depth=STRUCTURE, max_pages=3)
    assert facts.pages == 5 and not facts.complete


def test_a_file_object_is_read_like_a_path_and_left_at_the_start(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", [PROSE, PROSE])
    handle = io.BytesIO(path.read_bytes())
    handle.seek(7)
    facts = inspect(handle, content_type=PDF, size_bytes=path.stat().st_size)
    assert facts == look(path, PDF)
    assert handle.tell() == 0


def test_an_encrypted_or_damaged_pdf_is_reported_as_a_problem_not_raised(tmp_path):
    locked = makedocs.text_pdf(tmp_path / "locked.pdf", [PROSE], user_password="secret")
    assert look(locked, PDF).problem == "encrypted"
    broken = makedocs.truncated(
        makedocs.text_pdf(tmp_path / "b.pdf", [PROSE] * 3), tmp_path / "t.pdf", 0.3
    )
    facts = look(broken, PDF)
    assert not facts.complete


def test_a_pdf_over_the_page_limit_is_not_read_page_by_page(tmp_path):
    path = makedocs.text_pdf(tmp_path / "long.pdf", [PROSE] * 5)
    facts = look(path, PDF, max_pages=3)
    assert facts.pages == 5 and not facts.complete


def test_a_word_document_counts_its_text_runs_and_pictures(tmp_path):
    path = makedocs.word_docx(tmp_path / "w.docx", footnote="A footnote.")
    structure = look(path, DOCX, depth=STRUCTURE)
    # Complete from the ZIP directory alone: the estimate turns XML bytes into characters.
    assert structure.complete and structure.docx_xml_bytes > 0
    assert structure.text_chars is None and structure.pages_to_ocr == 0
    facts = look(path, DOCX)
    assert facts.complete and facts.pages_to_ocr == 0
    extracted = next(extract_text(path, content_type=DOCX, options=ExtractOptions()).pages)
    # Run text against the extractor's text (which adds list numbers and line breaks).
    assert 0.7 * len(extracted.text) < facts.text_chars <= 1.1 * len(extracted.text)


def test_a_damaged_word_document_is_a_problem(tmp_path):
    path = tmp_path / "bad.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert look(path, DOCX).problem == "damaged"


def test_a_text_file_is_complete_from_its_size_and_an_image_from_its_frames(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text(PROSE)
    facts = look(text, "text/plain", depth=STRUCTURE)
    assert facts.complete and facts.text_chars == len(PROSE.encode())
    tif = makedocs.tiff(tmp_path / "scan.tif", ["one", "two", "three"])
    facts = look(tif, "image/tiff", depth=STRUCTURE)
    assert facts.complete and facts.pages_to_ocr == 3


def test_the_token_sample_is_counted_with_the_counter_given(tmp_path):
    counter = LocalEmbedder()
    path = makedocs.text_pdf(tmp_path / "a.pdf", [PROSE] * 20)
    without = look(path, PDF)
    assert without.sample_chars == 0
    facts = look(path, PDF, counter=counter)
    # Every other page at most: a sample, not the whole text.
    assert 0 < facts.sample_chars < facts.text_chars
    page_tokens = counter.count_tokens(PROSE.strip())
    assert facts.sample_tokens == pytest.approx(
        page_tokens * facts.sample_chars / (facts.text_chars / 20), rel=0.15
    )


def test_a_word_documents_sample_is_its_text_paragraph_by_paragraph(tmp_path):
    path = tmp_path / "plain.docx"
    body = "".join(f"<w:p><w:r><w:t>{PROSE.strip()}</w:t></w:r></w:p>" for _ in range(3))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body>{body}</w:body></w:document>",
        )
    counter = LocalEmbedder()
    facts = look(path, DOCX, counter=counter)
    assert facts.text_chars == 3 * len(PROSE.strip())
    # All of it, the paragraphs joined by line breaks as the extractor joins them.
    assert facts.sample_chars == facts.text_chars + 2
    whole = "\n".join([PROSE.strip()] * 3)
    assert facts.sample_tokens == pytest.approx(counter.count_tokens(whole), abs=8)


def test_it_round_trips_through_a_dict_and_ignores_unknown_keys():
    facts = Preflight(kind="pdf", size_bytes=10, depth=FULL, complete=True, pages=2)
    assert Preflight.from_dict({**facts.as_dict(), "added_later": 1}) == facts
    assert Preflight.from_dict({}) is None


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.AVAILABLE, reason="../shared/corpus is absent")
@pytest.mark.parametrize(
    "name", ["multipage.pdf", "cardinal.pdf", "malformed-from-issue-932.pdf", "freeculture.pdf"]
)
def test_on_corpus_pdfs_pages_to_ocr_match_the_extractor(name):
    path = corpus.CORPUS / name
    assert look(path, PDF).pages_to_ocr == extractor_ocr_pages(path, PDF)


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.AVAILABLE, reason="../shared/corpus is absent")
@pytest.mark.parametrize(
    "name", ["multipage.pdf", "cardinal.pdf", "freeculture.pdf", "ISO-IEC-29500-2.pdf"]
)
def test_on_corpus_pdfs_the_structure_depth_sorts_pages_as_the_full_depth(name):
    path = corpus.CORPUS / name
    structure, full = look(path, PDF, depth=STRUCTURE), look(path, PDF)
    assert structure.complete
    assert (structure.pages, structure.pages_to_ocr, structure.pages_with_text) == (
        full.pages,
        full.pages_to_ocr,
        full.pages_with_text,
    )
