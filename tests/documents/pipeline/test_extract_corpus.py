"""Extraction over the shared corpus of real files (../shared/corpus/MANIFEST.tsv), checking
that every kind of file ends the way it should. Skipped when the corpus is absent; the folder
can be moved with CORPUS_DIR.

To keep the run short (about 40 s) it leaves out the two books
(freeculture.pdf, 352 pages; synthetic-concat-607p.pdf, 607 pages: bench/bench_extract.py reads
them) and runs OCR on a representative subset of the scans: linn.pdf (a plain scanned page),
ccitt.pdf (CCITT G4 bilevel), francais.pdf (French), phototest.tif (TIFF) and typewriter.png
(PNG, Dutch typewriter). The other scans (skew, cardinal, multipage, c02-22, epson, 2400dpi,
eurotext, linn.png, synthetic-scan-8p) take 3-5 s a page and add no new path through the code.
"""

from pathlib import Path

import pytest

from documents.errors import PermanentError
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.types import ExtractOptions
from documents.uploads import sniff_content_type
from tests.corpus import AVAILABLE, CORPUS, expected_outcome, manifest

if not AVAILABLE:
    pytest.skip(f"no corpus at {CORPUS}", allow_module_level=True)

pytestmark = pytest.mark.corpus

ROWS = manifest()
SKIPPED = {"freeculture.pdf", "synthetic-concat-607p.pdf"}
OCR_SUBSET = {
    "linn.pdf": ["LinnSequencer", "Recorder"],
    "ccitt.pdf": ["LinnSequencer", "Recorder"],
    "francais.pdf": ["whisky", "juge"],
    "phototest.tif": ["point", "text"],
    "typewriter.png": ["linzen", "water"],
}
CONTENT_TYPES = {".pdf": PDF, ".docx": DOCX, ".png": "image/png", ".tif": "image/tiff"}


def cases() -> list[str]:
    names = []
    for name, row in ROWS.items():
        scan = row["kind"].startswith(("scanned-pdf", "scan-image"))
        if name in SKIPPED or (scan and name not in OCR_SUBSET):
            continue
        names.append(name)
    return names


def extract(name: str, **options):
    """Extract as the pipeline does: with the type sniffed from the bytes (the name's type
    when the bytes say nothing, as for the 0-byte file the API would refuse)."""
    path = CORPUS / name
    with path.open("rb") as fileobj:
        content_type = sniff_content_type(fileobj, name) or CONTENT_TYPES[path.suffix]
    extraction = extract_text(path, content_type=content_type, options=ExtractOptions(**options))
    return extraction.page_count, list(extraction.pages)


@pytest.mark.parametrize("name", cases())
def test_each_file_ends_as_its_kind_says(name):
    row = ROWS[name]
    expected = expected_outcome(row)
    if expected != "text":
        with pytest.raises(PermanentError) as caught:
            extract(name)
        assert caught.value.kind == expected, str(caught.value)
        return
    count, pages = extract(name)
    assert [page.number for page in pages] == list(range(1, count + 1))
    if row["pages"].isdigit():
        assert count == int(row["pages"])
    text = "\n".join(page.text for page in pages)
    assert text.strip()
    if name in OCR_SUBSET:
        assert any(page.ocr for page in pages)
        for word in OCR_SUBSET[name]:
            assert word.lower() in text.lower()


@pytest.mark.parametrize("name", [n for n, row in ROWS.items() if row["kind"] == "encrypted"])
def test_each_password_protected_pdf_opens_with_its_password(name):
    _, pages = extract(name, password=ROWS[name]["password"])
    assert any(page.text.strip() for page in pages)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hdr-header-footer.docx", ["Header for section-1", "Footer for section 1"]),
        ("doc-odd-even-hdrs.docx", ["Odd page header.", "Even page header."]),
        ("footnotes.docx", ["Ouch.", "A tachyon walks into a bar.", "Fin."]),
        ("text-box.docx", ["Datum plane"]),
        ("strict.docx", ["• Bullet1", "1. Number1", "Cellaa | Cellab"]),
        (
            "example.docx",
            ["Header text", "Footer text", "First footnote", "Second endnote", "I. expect I"],
        ),
    ],
)
def test_word_documents_give_the_text_a_paragraphs_and_tables_pass_misses(name, expected):
    _, pages = extract(name)
    for line in expected:
        assert line in pages[0].text


def test_a_text_box_is_not_read_twice():
    _, pages = extract("text-box.docx")
    assert pages[0].text.count("Datum plane") == 1


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_sniffer_agrees_with_the_file_extension_except_for_the_impostors(name):
    with (CORPUS / name).open("rb") as fileobj:
        sniffed = sniff_content_type(fileobj, name)
    if name == "synthetic-not-a-pdf.pdf":
        assert sniffed == DOCX  # a Word document renamed .pdf
    elif name == "empty.pdf":
        assert sniffed is None  # zero bytes
    else:
        assert sniffed == CONTENT_TYPES[Path(name).suffix]
