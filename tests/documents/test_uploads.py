import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from documents.uploads import DOCX, sniff_content_type
from tests.documents.pipeline import makedocs
from tests.hostile import make_hostile


def sniff(data: bytes, filename: str) -> str | None:
    return sniff_content_type(io.BytesIO(data), filename)


def image_bytes(format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (20, 20), "white").save(buffer, format=format)
    return buffer.getvalue()


def test_it_recognises_a_pdf_by_its_header(tmp_path):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text on a page"])
    assert sniff(pdf.read_bytes(), "upload.bin") == "application/pdf"


def test_it_accepts_junk_before_the_pdf_header_as_pdf_readers_do(tmp_path):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text on a page"])
    assert sniff(b"\xef\xbb\xbf" + b"x" * 500 + pdf.read_bytes(), "a.pdf") == "application/pdf"


def test_a_truncated_pdf_is_still_a_pdf_so_extraction_can_say_it_is_damaged(tmp_path):
    pdf = makedocs.text_pdf(tmp_path / "a.pdf", ["Some text on a page"])
    assert sniff(pdf.read_bytes()[:200], "a.pdf") == "application/pdf"


def test_a_word_document_renamed_pdf_is_a_word_document(tmp_path):
    path = makedocs.word_docx(tmp_path / "report.docx")
    assert sniff(path.read_bytes(), "report.pdf") == DOCX


def test_a_strict_word_document_is_a_word_document(tmp_path):
    path = makedocs.strict_docx(makedocs.word_docx(tmp_path / "a.docx"), tmp_path / "s.docx")
    assert sniff(path.read_bytes(), "s.docx") == DOCX


def test_a_zip_that_is_not_a_word_document_is_unsupported():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff(buffer.getvalue(), "book.docx") is None


def test_a_damaged_zip_named_docx_is_passed_on_as_docx_to_be_reported_as_damaged(tmp_path):
    data = makedocs.word_docx(tmp_path / "a.docx").read_bytes()[:3000]
    assert sniff(data, "a.docx") == DOCX
    assert sniff(data, "a.zip") is None


@pytest.mark.parametrize(
    ("format", "expected"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("TIFF", "image/tiff")]
)
def test_it_recognises_images_by_their_magic_bytes(format, expected):
    assert sniff(image_bytes(format), "scan.txt") == expected


def test_big_endian_tiff_is_a_tiff():
    assert sniff(b"MM\x00*" + b"\x00" * 100, "scan") == "image/tiff"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [("notes.txt", "text/plain"), ("README.md", "text/markdown"), ("a.MARKDOWN", "text/markdown")],
)
def test_text_is_plain_or_markdown_by_its_name(filename, expected):
    assert sniff("# Title\n\nSome *text*, déjà vu.\n".encode(), filename) == expected


def test_legacy_8_bit_text_is_text():
    text = "Le comité s'est réuni à Montréal; l'été dernier, déjà, on parlait français. " * 20
    assert sniff(text.encode("cp1252"), "notes.txt") == "text/plain"


def test_utf16_text_with_a_byte_order_mark_is_text_despite_its_nul_bytes():
    assert sniff("Hello, world\n".encode("utf-16"), "notes.txt") == "text/plain"


def test_a_cut_through_a_multibyte_character_at_8_kb_does_not_make_text_binary():
    data = ("€" * 4000).encode("utf-8")  # 3 bytes each: 8192 falls inside a character
    assert sniff(data, "euros.txt") == "text/plain"


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x02\x03binary" * 100, bytes(range(1, 256)) * 40, b"\x7fELF\x02\x01\x01\x00"],
)
def test_binary_data_is_unsupported(data):
    assert sniff(data, "program.txt") is None


def test_an_empty_file_has_no_type():
    assert sniff(b"", "empty.pdf") is None


def test_it_reads_from_where_the_file_is_and_seeks_back_there(tmp_path):
    data = b"prefix" + makedocs.word_docx(tmp_path / "a.docx").read_bytes()
    fileobj = io.BytesIO(data)
    fileobj.seek(0)
    assert sniff_content_type(fileobj, "a.docx") is None  # "prefix" is not a ZIP header
    assert fileobj.tell() == 0
    fileobj.seek(6)
    assert sniff_content_type(fileobj, "a.docx") == DOCX
    assert fileobj.tell() == 6


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="%"),
        min_size=1,
        max_size=3000,
    )
)
def test_any_utf8_text_without_control_characters_is_text(text):
    assert sniff(text.encode("utf-8"), "x.txt") == "text/plain"


def test_a_word_document_whose_main_part_has_another_name_is_a_word_document(tmp_path):
    original = makedocs.word_docx(tmp_path / "a.docx")
    renamed = makedocs.renamed_main_part(original, tmp_path / "renamed.docx")
    assert sniff(renamed.read_bytes(), "renamed.docx") == DOCX
    assert sniff(renamed.read_bytes(), "renamed.bin") == DOCX


def test_a_spreadsheet_package_is_not_a_word_document():
    buffer = io.BytesIO(makedocs.spreadsheet_package())
    assert sniff(buffer.getvalue(), "book.xlsx") is None


def test_a_word_package_bomb_is_recognised_so_extraction_can_name_the_limit(tmp_path):
    # Only the small relationship and content-type parts are read to sniff it.
    path = make_hostile.docx_paragraph_bomb(tmp_path / "bomb.docx")
    assert sniff(path.read_bytes(), "bomb.bin") == DOCX
