"""Each budget of ExtractOptions, enforced by extract_text on small real files with the limit
set low: its own failure kind, a sentence that names the limit and what was measured, and
nothing expensive done before it (no page read with OCR, no image decoded)."""

import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from documents.errors import BudgetExceeded, FailureKind, PermanentError
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.types import ExtractOptions
from tests.documents.pipeline import makedocs
from tests.documents.pipeline.test_extract import PAGES, read
from tests.hostile.make_hostile import tiff_bomb_second_frame, write_pdf


def over_budget(path: Path, content_type: str, **options) -> BudgetExceeded:
    with pytest.raises(BudgetExceeded) as caught:
        read(path, content_type, **options)
    return caught.value


def logging_tesseract(tmp_path: Path) -> str:
    """A stand-in for tesseract that records each call and reads every page as "ocr text"."""
    script = tmp_path / "tesseract"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{tmp_path}/calls"\necho "ocr text" > "$2.txt"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def ocr_calls(tmp_path: Path) -> int:
    calls = tmp_path / "calls"
    return len(calls.read_text().split()) if calls.exists() else 0


# --- characters --------------------------------------------------------------------------------


def test_a_pdf_over_the_character_budget_fails_at_the_page_that_crosses_it(tmp_path):
    extraction = extract_text(
        makedocs.text_pdf(tmp_path / "a.pdf", PAGES),
        content_type=PDF,
        options=ExtractOptions(max_chars=80),
    )
    seen = []
    with pytest.raises(BudgetExceeded) as caught:
        for page in extraction.pages:
            seen.append(page.number)
    assert seen == [1]
    assert caught.value.kind == FailureKind.TOO_MUCH_TEXT
    assert str(caught.value) == (
        "This document has more than 80 characters of text, the limit per document (109 read "
        "by page 2 of 3). Split it into smaller files and upload them separately."
    )


def test_a_text_file_over_the_character_budget_is_refused_with_its_count(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("word " * 1000)
    error = over_budget(path, "text/plain", max_chars=4000)
    assert error.kind == FailureKind.TOO_MUCH_TEXT
    assert "more than 4,000 characters" in str(error)
    assert "(4,999 read)" in str(error)


def test_a_word_document_over_the_character_budget_is_refused(tmp_path):
    error = over_budget(makedocs.word_docx(tmp_path / "a.docx"), DOCX, max_chars=50)
    assert error.kind == FailureKind.TOO_MUCH_TEXT
    assert "more than 50 characters" in str(error)


# --- wall time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pdf", "docx", "tiff"])
def test_a_document_past_its_deadline_fails_before_the_next_page(tmp_path, kind):
    path, content_type = {
        "pdf": (lambda: makedocs.text_pdf(tmp_path / "a.pdf", PAGES), PDF),
        "docx": (lambda: makedocs.word_docx(tmp_path / "a.docx"), DOCX),
        "tiff": (lambda: makedocs.tiff(tmp_path / "a.tif", ["ONE", "TWO"]), "image/tiff"),
    }[kind]
    error = over_budget(path(), content_type, max_seconds=0)
    assert error.kind == FailureKind.TIME_LIMIT
    assert str(error).startswith("Reading this document took longer than the limit of 0 seconds")


# --- pages to read with OCR ----------------------------------------------------------------------


def test_the_pages_to_ocr_are_counted_before_the_first_is_read(tmp_path):
    tesseract = logging_tesseract(tmp_path)
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["ONE", "TWO", "THREE"])
    extraction = extract_text(
        path, content_type=PDF, options=ExtractOptions(max_ocr_pages=2, tesseract_cmd=tesseract)
    )
    with pytest.raises(BudgetExceeded) as caught:
        next(extraction.pages)
    assert caught.value.kind == FailureKind.TOO_MANY_OCR_PAGES
    assert str(caught.value) == (
        "This PDF has more than 2 pages without a text layer (of its 3 pages), and the limit "
        "is 2 pages read with OCR per document. Split it into smaller files, or upload a copy "
        "that has a text layer."
    )
    assert ocr_calls(tmp_path) == 0


def test_pages_after_the_first_scanned_page_are_read_once_and_in_order(tmp_path):
    # Text, a scanned page (a dot and no text), text: the third page's text layer is read
    # while counting the pages to OCR, and handed out in its turn.
    text = [b"BT /F1 14 Tf 72 720 Td (" + line.encode() + b") Tj ET" for line in PAGES]
    contents = [text[0], b"300 400 1 1 re f", text[2]]
    objects: list = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R 5 0 R 6 0 R] /Count 3 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for n in range(3):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font "
            f"<< /F1 3 0 R >> >> /Contents {7 + n} 0 R >>".encode()
        )
    objects += [(f"<< /Length {len(c)} >>".encode(), [c]) for c in contents]
    path = write_pdf(tmp_path / "mixed.pdf", objects)
    _, pages = read(path, PDF, tesseract_cmd=logging_tesseract(tmp_path), max_ocr_pages=1)
    assert [(page.number, page.text, page.ocr) for page in pages] == [
        (1, PAGES[0], False),
        (2, "ocr text", True),
        (3, PAGES[2], False),
    ]
    assert ocr_calls(tmp_path) == 1


def test_a_tiff_with_more_frames_than_pages_to_ocr_is_refused_before_any_is_read(tmp_path):
    tesseract = logging_tesseract(tmp_path)
    path = makedocs.tiff(tmp_path / "a.tif", ["ONE", "TWO", "THREE"])
    error = over_budget(path, "image/tiff", max_ocr_pages=2, tesseract_cmd=tesseract)
    assert error.kind == FailureKind.TOO_MANY_OCR_PAGES
    assert str(error).startswith(
        "This image has more than 2 pages, each to be read with OCR, and the limit is 2 pages"
    )
    assert ocr_calls(tmp_path) == 0


# --- image pixels --------------------------------------------------------------------------------


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height and whose pixel data is cut off after a few
    bytes: reading its size is fine, decoding it fails as damaged."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1 + width) * height)[:20]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat))
    return path


def test_an_image_over_the_pixel_budget_is_refused_from_its_header(tmp_path):
    path = png_header_only(tmp_path / "a.png", 5000, 4000)
    error = over_budget(path, "image/png", max_image_pixels=10_000_000)
    assert error.kind == FailureKind.IMAGE_TOO_LARGE
    assert str(error).startswith(
        "This image is 5,000 x 4,000 pixels (20 million), more than the limit of 10 million pixels."
    )
    # The same file within the budget is decoded, and found damaged.
    with pytest.raises(PermanentError) as caught:
        read(path, "image/png")
    assert caught.value.kind == FailureKind.CORRUPT


def test_pillows_decompression_bomb_warning_is_an_error(tmp_path):
    # 100 million pixels: under our raised limit, over Pillow's warning (89.5 million).
    path = png_header_only(tmp_path / "a.png", 10_000, 10_000)
    error = over_budget(path, "image/png", max_image_pixels=150_000_000)
    assert error.kind == FailureKind.IMAGE_TOO_LARGE
    assert str(error).startswith(
        "This image is 10,000 x 10,000 pixels (100 million), more than the limit of 89 million"
    )


def test_each_frame_of_a_tiff_is_held_to_the_pixel_budget(tmp_path):
    path = tiff_bomb_second_frame(tmp_path / "a.tif", side=4000)
    error = over_budget(path, "image/tiff", max_image_pixels=10_000_000, tesseract_cmd="true")
    assert error.kind == FailureKind.IMAGE_TOO_LARGE
    assert str(error).startswith("Page 2 of this image is 4,000 x 4,000 pixels (16 million)")


def test_a_very_wide_strip_is_scaled_to_what_tesseract_accepts(tmp_path):
    # 40,000 x 200 pixels: few pixels, but wider than Tesseract's 32,767 (it used to refuse
    # the image, an installation error).
    path = tmp_path / "strip.png"
    image = Image.new("L", (40_000, 200), 255)
    image.paste(makedocs.text_image("WIDE STRIP", size=(1700, 200)), (0, 0))
    image.save(path)
    _, pages = read(path, "image/png")
    assert pages[0].ocr
    assert "WIDE STRIP" in pages[0].text


# --- Word packages -------------------------------------------------------------------------------


def test_a_word_document_with_a_renamed_main_part_reads_like_the_original(tmp_path):
    original = makedocs.word_docx(tmp_path / "a.docx", footnote="See the annex.")
    renamed = makedocs.renamed_main_part(original, tmp_path / "renamed.docx")
    assert read(renamed, DOCX)[1] == read(original, DOCX)[1]


def test_a_word_document_declaring_a_dtd_is_refused(tmp_path):
    source = makedocs.word_docx(tmp_path / "a.docx")
    path = tmp_path / "dtd.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "word/document.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY x "y">]>', 1)
            dst.writestr(item, data)
    with pytest.raises(PermanentError) as caught:
        read(path, DOCX)
    assert caught.value.kind == FailureKind.CORRUPT
    assert "document type declaration (DTD)" in str(caught.value)
