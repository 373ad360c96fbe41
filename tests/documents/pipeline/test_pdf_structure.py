"""The pages of a PDF by kind, judged from the page objects without reading any text: what
the upload request can afford, and the fallback (None) for anything it cannot judge."""

from __future__ import annotations

import zlib

import pytest

from documents.pipeline.extract import PDF, extract_text
from documents.pipeline.pdf_structure import PdfStructure, read_pdf_structure
from documents.pipeline.types import ExtractOptions
from tests import corpus
from tests.documents.pipeline import makedocs

PROSE = "The lighthouse keeper climbed the stairs every evening and lit the lamp.\n" * 12
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
TEXT = b"BT /F1 14 Tf 72 720 Td (Some words) Tj ET"


def kinds(shape: PdfStructure) -> tuple[int, int, int]:
    return shape.text_pages, shape.ocr_pages, shape.blank_pages


def stream(data: bytes, *, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def hand_made(path, objects: list[bytes]):
    """A PDF of ``objects`` as written (object 1 the catalog), for the shapes no writer
    makes on purpose: inherited resources, forms naming themselves, page trees with loops."""
    return makedocs._write_pdf(path, objects, encrypted=False)


def test_a_text_pdf_has_text_pages_and_its_page_without_content_is_blank(tmp_path):
    path = makedocs.text_pdf(tmp_path / "text.pdf", [PROSE, None, "Short page."])
    shape = read_pdf_structure(path)
    # The blank page names the font too (every page of this file does): it draws nothing.
    assert (shape.pages, *kinds(shape)) == (3, 2, 0, 1)
    assert shape.images == 0


def test_a_scan_has_pages_to_ocr_and_their_images(tmp_path):
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["Page one of a scan", "Page two"])
    shape = read_pdf_structure(path)
    assert kinds(shape) == (0, 2, 0)
    assert shape.images == 2


def test_a_file_object_is_read_like_a_path(tmp_path):
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["one", "two", "three"])
    with path.open("rb") as handle:
        assert read_pdf_structure(handle) == read_pdf_structure(path)


def test_fonts_inherited_from_the_page_tree_make_a_text_page(tmp_path):
    path = hand_made(
        tmp_path / "inherited.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            stream(TEXT),
            FONT,
        ],
    )
    assert kinds(read_pdf_structure(path)) == (1, 0, 0)


def test_a_font_or_an_image_inside_a_form_xobject_is_found(tmp_path):
    image = stream(
        b"\x00" * 4,
        extra=b"/Type /XObject /Subtype /Image /Width 2 /Height 2 "
        b"/ColorSpace /DeviceGray /BitsPerComponent 8",
    )
    path = hand_made(
        tmp_path / "forms.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
            b"/Resources << /XObject << /Fm1 6 0 R >> >> >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
            b"/Resources << /XObject << /Fm2 7 0 R >> >> >>",
            stream(b"/Fm1 Do"),
            # a form drawing text, whose resources name the form itself: walked once
            stream(
                TEXT,
                extra=b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                b"/Resources << /Font << /F1 9 0 R >> /XObject << /Me 6 0 R >> >>",
            ),
            stream(
                b"/Im1 Do",
                extra=b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                b"/Resources << /XObject << /Im1 8 0 R >> >>",
            ),
            image,
            FONT,
        ],
    )
    shape = read_pdf_structure(path)
    assert kinds(shape) == (1, 1, 0)
    assert shape.images == 1


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"q Q", "blank"),
        (b"", "blank"),
        (zlib.compress(b"q 1 0 0 1 0 0 cm Q"), "blank"),
        (b"0 0 m 100 100 l S", "ocr"),  # vector strokes: OCR reads what they draw
        (b"0 0 m 100 100 l 200 0 l h f " * 10, "ocr"),  # long enough not to be decoded
    ],
)
def test_a_page_without_fonts_or_images_is_blank_unless_its_content_paints(tmp_path, content, kind):
    flate = b"/Filter /FlateDecode" if content.startswith(b"x\x9c") else b""
    path = hand_made(
        tmp_path / "drawn.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            stream(content, extra=flate),
        ],
    )
    shape = read_pdf_structure(path)
    assert {"text": shape.text_pages, "ocr": shape.ocr_pages, "blank": shape.blank_pages}[kind] == 1


def test_a_page_tree_that_leads_back_to_itself_gives_no_answer(tmp_path):
    path = hand_made(
        tmp_path / "loop.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            stream(TEXT),
            FONT,
        ],
    )
    assert read_pdf_structure(path) is None


def test_a_page_tree_nested_past_the_limit_gives_no_answer(tmp_path):
    depth = 40
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (level + 3))
    objects.append(b"<< /Type /Page /MediaBox [0 0 612 792] /Contents %d 0 R >>" % (depth + 3))
    objects.append(stream(TEXT))
    assert read_pdf_structure(hand_made(tmp_path / "deep.pdf", objects)) is None


def test_a_file_over_the_object_budget_or_the_page_cap_gives_no_answer(tmp_path):
    path = makedocs.text_pdf(tmp_path / "long.pdf", [PROSE] * 20)
    assert read_pdf_structure(path).pages == 20
    assert read_pdf_structure(path, max_objects=10) is None
    assert read_pdf_structure(path, max_pages=19) is None


def test_a_damaged_encrypted_or_foreign_file_gives_no_answer_without_raising(tmp_path):
    not_pdf = tmp_path / "not.pdf"
    not_pdf.write_bytes(b"%PDF-1.4\nnothing else")
    locked = makedocs.text_pdf(tmp_path / "locked.pdf", [PROSE], user_password="secret")
    assert read_pdf_structure(not_pdf) is None
    assert read_pdf_structure(locked) is None
    # An encrypted file with an empty user password opens as the extractor opens it.
    open_locked = makedocs.text_pdf(tmp_path / "open.pdf", [PROSE], user_password="")
    assert kinds(read_pdf_structure(open_locked)) == (1, 0, 0)


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.AVAILABLE, reason="../shared/corpus is absent")
@pytest.mark.parametrize(
    "name",
    ["cardinal.pdf", "multipage.pdf", "skew.pdf", "tracemonkey.pdf", "habibi.pdf"],
)
def test_on_corpus_pdfs_pages_to_ocr_match_the_extractor(name):
    path = corpus.CORPUS / name
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions())
    pages = list(extraction.pages)
    shape = read_pdf_structure(path)
    assert shape.pages == len(pages)
    assert shape.ocr_pages == sum(1 for page in pages if page.ocr)
