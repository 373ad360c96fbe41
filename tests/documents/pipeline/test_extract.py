import zipfile
from pathlib import Path

import docx
import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.ocr import OcrError
from documents.pipeline.types import ExtractOptions
from tests.documents.pipeline import makedocs

OPTIONS = ExtractOptions()

PAGES = [
    "The first page talks about invoices and payment terms.",
    "The second page lists the delivery addresses in detail.",
    "The third page holds the signatures of both parties.",
]


def read(path: Path, content_type: str, **options):
    extraction = extract_text(path, content_type=content_type, options=ExtractOptions(**options))
    return extraction.page_count, list(extraction.pages)


def failure(path: Path, content_type: str, **options) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        read(path, content_type, **options)
    return caught.value


# --- PDF ----------------------------------------------------------------------------------------


def test_it_reads_each_page_of_a_text_pdf_in_order(tmp_path):
    count, pages = read(makedocs.text_pdf(tmp_path / "a.pdf", PAGES), PDF)
    assert count == 3
    assert [page.number for page in pages] == [1, 2, 3]
    assert [page.text for page in pages] == PAGES
    assert not any(page.ocr for page in pages)


def test_the_page_count_is_known_before_any_page_is_read(tmp_path):
    extraction = extract_text(
        makedocs.text_pdf(tmp_path / "a.pdf", PAGES), content_type=PDF, options=OPTIONS
    )
    assert extraction.page_count == 3
    assert next(extraction.pages).number == 1


def test_lines_and_special_characters_survive(tmp_path):
    text = "Total (net): 1,200.00 EUR\nCafé crème à 3 € \\ backslash"
    _, pages = read(makedocs.text_pdf(tmp_path / "a.pdf", [text]), PDF)
    assert pages[0].text == text


@pytest.mark.parametrize("password", [None, "s3cret"])
def test_a_long_pdf_is_read_whole_across_the_periodic_reopening(tmp_path, password):
    texts = [f"This is page number {n} of a long report." for n in range(1, 62)]
    path = makedocs.text_pdf(tmp_path / "long.pdf", texts, user_password=password)
    count, pages = read(path, PDF, password=password or "")
    assert count == 61
    assert [page.text for page in pages] == texts


def test_a_pdf_encrypted_with_an_empty_user_password_is_read_normally(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES[:1], user_password="")
    assert b"/Encrypt" in path.read_bytes()
    _, pages = read(path, PDF)
    assert pages[0].text == PAGES[0]


def test_a_password_protected_pdf_is_refused_with_a_clear_message(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES[:1], user_password="s3cret")
    error = failure(path, PDF)
    assert error.kind == FailureKind.ENCRYPTED
    assert str(error) == "This PDF is password-protected; upload an unprotected copy."


def test_a_password_protected_pdf_is_read_with_its_password(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES[:1], user_password="s3cret")
    _, pages = read(path, PDF, password="s3cret")
    assert pages[0].text == PAGES[0]


def test_a_wrong_password_is_reported_as_such(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES[:1], user_password="s3cret")
    error = failure(path, PDF, password="guess")
    assert error.kind == FailureKind.ENCRYPTED
    assert "password given does not open it" in str(error)


def test_a_truncated_pdf_is_corrupt(tmp_path):
    whole = makedocs.text_pdf(tmp_path / "a.pdf", PAGES)
    error = failure(makedocs.truncated(whole, tmp_path / "half.pdf"), PDF)
    assert error.kind == FailureKind.CORRUPT
    assert "damaged or incomplete" in str(error)


@pytest.mark.parametrize("data", [b"", b"this is not a PDF at all", b"%PDF-1.4\n%%EOF"])
def test_empty_and_fake_pdfs_are_corrupt(tmp_path, data):
    path = tmp_path / "fake.pdf"
    path.write_bytes(data)
    assert failure(path, PDF).kind == FailureKind.CORRUPT


def test_a_word_document_sent_as_pdf_is_corrupt(tmp_path):
    path = makedocs.word_docx(tmp_path / "a.docx")
    assert failure(path, PDF).kind == FailureKind.CORRUPT


def test_a_pdf_over_the_page_limit_is_refused_naming_both_numbers(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES)
    error = failure(path, PDF, max_pages=2)
    assert error.kind == FailureKind.TOO_MANY_PAGES
    assert "3 pages" in str(error)
    assert "limit of 2 pages" in str(error)


def test_a_pdf_of_blank_pages_fails_as_empty_after_the_last_page(tmp_path):
    path = makedocs.text_pdf(tmp_path / "blank.pdf", ["", ""])
    extraction = extract_text(path, content_type=PDF, options=OPTIONS)
    seen = []
    with pytest.raises(PermanentError) as caught:
        for page in extraction.pages:
            seen.append(page.number)
    assert seen == [1, 2]  # both pages were handed out before the verdict
    assert caught.value.kind == FailureKind.EMPTY
    assert str(caught.value) == "No readable text was found in this document, even after OCR."


def test_a_blank_page_is_not_sent_to_ocr(tmp_path):
    # With Tesseract unreachable, a PDF can be read only if no page goes to OCR: the blank
    # page does not, a scanned page still does.
    missing = str(tmp_path / "no-tesseract")
    path = makedocs.text_pdf(tmp_path / "a.pdf", [PAGES[0], None, PAGES[1]])
    _, pages = read(path, PDF, tesseract_cmd=missing)
    assert [(page.number, page.ocr) for page in pages] == [(1, False), (2, False), (3, False)]
    assert pages[1].text == ""
    with pytest.raises(OcrError):
        read(makedocs.image_pdf(tmp_path / "scan.pdf", [PAGES[0]]), PDF, tesseract_cmd=missing)


def test_a_short_text_layer_is_kept_when_ocr_finds_nothing_more(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", [PAGES[0], "Fig. 1"])
    _, pages = read(path, PDF)
    assert pages[0].ocr is False
    assert pages[1].ocr is False
    assert pages[1].text == "Fig. 1"


# --- DOCX ---------------------------------------------------------------------------------------


def docx_text(path: Path) -> str:
    count, pages = read(path, DOCX)
    assert count == 1
    assert [page.number for page in pages] == [1]
    return pages[0].text


def test_a_word_document_reads_header_body_lists_table_and_footer_in_order(tmp_path):
    text = docx_text(makedocs.word_docx(tmp_path / "a.docx"))
    assert text.splitlines() == [
        "Quarterly header",
        "Annual report",
        "First body paragraph.",
        "Second body paragraph.",
        "• apples",
        "• pears",
        "1. first step",
        "2. second step",
        "| Region | Revenue |",
        "| --- | --- |",
        "| North | 1200 |",
        "Closing paragraph.",
        "Confidential footer",
    ]


def test_footnotes_are_read_after_the_body(tmp_path):
    text = docx_text(makedocs.word_docx(tmp_path / "a.docx", footnote="See the annex."))
    lines = text.splitlines()
    assert lines.index("See the annex.") == lines.index("Closing paragraph.") + 1


def test_a_text_box_is_read_once_after_its_anchor_paragraph(tmp_path):
    text = docx_text(makedocs.word_docx(tmp_path / "a.docx", text_box="Boxed remark"))
    lines = text.splitlines()
    assert lines.count("Boxed remark") == 1  # Word stores it twice (DrawingML and VML)
    assert lines.index("Boxed remark") == lines.index("Second body paragraph.") + 1


def test_a_header_repeated_by_every_section_is_read_once(tmp_path):
    path = makedocs.docx_with_two_sections(tmp_path / "a.docx", "Shared header")
    assert docx_text(path).splitlines() == [
        "Shared header",
        "Section one text.",
        "Section two text.",
    ]


def test_a_strict_open_xml_document_is_read_like_a_regular_one(tmp_path):
    regular = makedocs.word_docx(tmp_path / "a.docx", footnote="Note.", text_box="Box.")
    strict = makedocs.strict_docx(regular, tmp_path / "strict.docx")
    with pytest.raises(KeyError):
        docx.Document(strict)  # python-docx alone refuses it
    assert docx_text(strict) == docx_text(regular)


def test_a_word_document_without_text_is_empty(tmp_path):
    error = failure(makedocs.empty_docx(tmp_path / "a.docx"), DOCX)
    assert error.kind == FailureKind.EMPTY
    assert str(error) == "No text was found in this document."


def test_a_truncated_word_document_is_corrupt(tmp_path):
    whole = makedocs.word_docx(tmp_path / "a.docx")
    error = failure(makedocs.truncated(whole, tmp_path / "half.docx", 0.6), DOCX)
    assert error.kind == FailureKind.CORRUPT
    assert "Word document is damaged" in str(error)


def test_a_word_document_with_a_damaged_part_is_corrupt(tmp_path):
    whole = makedocs.word_docx(tmp_path / "a.docx", footnote="Note.")
    damaged = tmp_path / "damaged.docx"
    with zipfile.ZipFile(whole) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, b"<w:footnotes><unclosed>" if "footnotes" in item.filename else data)
    assert failure(damaged, DOCX).kind == FailureKind.CORRUPT


def test_a_pdf_sent_as_a_word_document_is_corrupt(tmp_path):
    path = makedocs.text_pdf(tmp_path / "a.pdf", PAGES)
    assert failure(path, DOCX).kind == FailureKind.CORRUPT


# --- text ---------------------------------------------------------------------------------------


def test_utf8_text_is_one_page_without_its_byte_order_mark(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffLine one\r\nLigne deux, déjà\r\n".encode())
    count, pages = read(path, "text/plain")
    assert count == 1
    assert pages[0].text == "Line one\nLigne deux, déjà"


def test_legacy_encodings_are_detected(tmp_path):
    text = "Le comité s'est réuni à Montréal; l'été dernier, déjà, on parlait français.\n" * 5
    path = tmp_path / "a.md"
    path.write_bytes(text.encode("cp1252"))
    _, pages = read(path, "text/markdown")
    assert pages[0].text == text.strip()


def test_cyrillic_in_a_legacy_encoding_is_not_mistaken_for_western_european(tmp_path):
    text = "Отчёт о продажах за первый квартал. Выручка выросла на десять процентов.\n" * 3
    path = tmp_path / "a.txt"
    path.write_bytes(text.encode("cp1251"))
    _, pages = read(path, "text/plain")
    assert pages[0].text == text.strip()


def test_a_blank_text_file_is_empty(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("  \n\t\n")
    assert failure(path, "text/plain").kind == FailureKind.EMPTY


def test_other_types_are_unsupported(tmp_path):
    path = tmp_path / "a.odt"
    path.write_bytes(b"PK\x03\x04whatever")
    error = failure(path, "application/vnd.oasis.opendocument.text")
    assert error.kind == FailureKind.UNSUPPORTED_TYPE
    assert "upload a PDF" in str(error)


def test_a_word_table_keeps_its_columns_when_cells_are_merged_or_empty(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("Item", "Q1", "Q2"), ("Pens | pencils", "", "7"), ("Total", "", "")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 1).merge(table.cell(2, 2)).text = "12"  # one cell across two columns
    document.save(tmp_path / "t.docx")
    assert docx_text(tmp_path / "t.docx").splitlines() == [
        "| Item | Q1 | Q2 |",
        "| --- | --- | --- |",
        "| Pens \\| pencils |  | 7 |",
        "| Total | 12 |  |",
    ]
