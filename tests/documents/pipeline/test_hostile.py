"""The hostile corpus (tests/hostile/make_hostile.py) through extract_text with the default
budgets, as the worker runs it: the type sniffed from the bytes, every page consumed. Each
file ends in its own failure kind with a sentence naming the limit and what was measured,
within the test's time limit (the pytest timeout below), while a normal file of each type
still extracts. bench/bench_hostile.py measures time and peak memory of each, before and after.

A test at the end runs the worst of them in a child process whose address space is capped
at 1 GiB: before the budgets, those files took a worker to 2-10 GB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.chunk import split_text
from documents.pipeline.embedders.gemini import GeminiEmbedder
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.preflight import FULL, inspect
from documents.pipeline.types import ExtractOptions, Page
from documents.uploads import sniff_content_type
from tests.documents.pipeline import makedocs
from tests.hostile import make_hostile

ROOT = Path(__file__).resolve().parents[3]
PNG, TIFF, TEXT = "image/png", "image/tiff", "text/plain"

# file -> (sniffed type, failure kind, fragments of its sentence: the limit and the value)
EXPECTED = {
    "docx_paragraph_bomb": (
        DOCX,
        FailureKind.ZIP_PART_TOO_LARGE,
        ["word/document.xml", "is 1.1 GB uncompressed", "limit of 64 MB per part"],
    ),
    "docx_paragraph_bomb_small": (
        DOCX,
        FailureKind.ZIP_PART_TOO_LARGE,
        ["is 109 MB uncompressed", "limit of 64 MB per part"],
    ),
    "docx_large_part": (
        DOCX,
        FailureKind.ZIP_PART_TOO_LARGE,
        ["is 84 MB uncompressed", "limit of 64 MB per part"],
    ),
    "docx_nested_zip": (
        DOCX,
        FailureKind.ZIP_RATIO_TOO_HIGH,
        ["word/embeddings/archive.zip", "ratio of 427 to 1", "limit of 200 to 1"],
    ),
    # The directory says 4 KB; the reader stops a read past it: the archive is not what it
    # says, which is damage (Python's zipfile says so too, after inflating all of it).
    "docx_lying_directory": (
        DOCX,
        FailureKind.CORRUPT,
        ["word/document.xml inflates to more than", "not the 4.1 KB its directory gives"],
    ),
    # ECMA-376 Part 2 forbids DTDs in a package; refused before any entity is touched.
    "docx_entity_expansion": (DOCX, FailureKind.CORRUPT, ["document type declaration (DTD)"]),
    "text_single_line": (
        TEXT,
        FailureKind.TOO_MUCH_TEXT,
        ["more than 10,000,000 characters", "(31,457,280 read)"],
    ),
    "pdf_flate_bomb": (
        PDF,
        FailureKind.PDF_STREAM_TOO_LARGE,
        ["Page 1", "content stream", "past the limit of 100 MB per stream"],
    ),
    "pdf_near_blank_pages": (
        PDF,
        FailureKind.TOO_MANY_OCR_PAGES,
        ["more than 300 pages without a text layer (of its 1,999 pages)", "limit is 300"],
    ),
    "pdf_many_pages": (
        PDF,
        FailureKind.TOO_MANY_PAGES,
        ["50,000 pages", "limit of 2,000 pages"],
    ),
    # PDFium finds the loop and cannot reach the page: damaged, said at once.
    "pdf_page_tree_loop": (PDF, FailureKind.CORRUPT, ["Page 1 of this PDF is damaged"]),
    "png_pixel_bomb": (
        PNG,
        FailureKind.IMAGE_TOO_LARGE,
        ["13,000 x 13,000 pixels (169 million)", "limit of 89 million pixels"],
    ),
    "tiff_many_frames": (
        TIFF,
        FailureKind.TOO_MANY_OCR_PAGES,
        ["more than 300 pages, each to be read with OCR", "limit is 300"],
    ),
    "tiff_bomb_second_frame": (
        TIFF,
        FailureKind.IMAGE_TOO_LARGE,
        ["Page 2 of this image is 13,000 x 13,000 pixels", "limit of 100 million pixels"],
    ),
    # Few pixels but wider than Tesseract accepts: scaled to fit, and there is nothing in a
    # line one pixel high to read (it used to be an installation error, retried for nothing).
    "png_one_pixel_high": (PNG, FailureKind.EMPTY, ["No readable text"]),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    make_hostile.main([str(folder)])
    return folder


def path_of(folder: Path, name: str) -> Path:
    return folder / make_hostile.FILES[name][1]


def extract(path: Path) -> tuple[str | None, list[Page]]:
    """As the pipeline does it: the type from the bytes, then every page."""
    with path.open("rb") as handle:
        content_type = sniff_content_type(handle, path.name)
    extraction = extract_text(path, content_type=content_type or "", options=ExtractOptions())
    try:
        return content_type, list(extraction.pages)
    finally:
        extraction.close()


def test_the_expectations_cover_the_whole_corpus_but_the_file_that_reads():
    assert set(EXPECTED) | {"pdf_form_loop"} == set(make_hostile.FILES)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_file_ends_in_its_own_failure_with_the_limit_and_the_value(hostile, name):
    content_type, kind, fragments = EXPECTED[name]
    path = path_of(hostile, name)
    with path.open("rb") as handle:
        assert sniff_content_type(handle, path.name) == content_type
    with pytest.raises(PermanentError) as caught:
        extract(path)
    assert caught.value.kind == kind, str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert caught.value.kind not in FailureKind.TRANSIENT  # never retried


@pytest.mark.timeout(60)
def test_a_form_that_draws_itself_is_read_once(hostile):
    _, pages = extract(path_of(hostile, "pdf_form_loop"))
    assert [page.text for page in pages] == ["A form that draws itself."]


@pytest.mark.timeout(120)
def test_a_single_line_within_the_text_budget_goes_through_the_chunker(tmp_path):
    # 2 MB on one line, no space, no sentence end: extracted whole, then cut into chunks that
    # fit (the Gemini estimate counts the bytes of an unbroken word; MiniLM's tokenizer would
    # call the whole line one unknown token).
    path = make_hostile.text_single_line(tmp_path / "line.txt", size=2_000_000)
    _, pages = extract(path)
    assert len(pages[0].text) == 2_000_000
    counter = GeminiEmbedder(api_key="unused")  # only its token estimate: nothing is sent
    chunks = split_text(pages, counter=counter, max_tokens=1024, overlap=100)
    assert "".join(chunk.text for chunk in chunks).count("abcdefghij") >= 200_000
    assert all(counter.count_tokens(chunk.text) <= 1024 for chunk in chunks)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["pdf", "docx", "png", "tiff", "text"])
def test_normal_files_still_extract_with_the_default_budgets(tmp_path, kind):
    path = {
        "pdf": lambda: makedocs.text_pdf(tmp_path / "a.pdf", ["Invoice number 4711 is due."]),
        "docx": lambda: makedocs.word_docx(tmp_path / "a.docx", footnote="A note."),
        "png": lambda: _save(makedocs.text_image("ALPHA INVOICE"), tmp_path / "a.png"),
        "tiff": lambda: makedocs.tiff(tmp_path / "a.tif", ["BRAVO ONE", "CHARLIE TWO"]),
        "text": lambda: _write(tmp_path / "a.txt", "Plain text, one line.\n" * 100),
    }[kind]()
    _, pages = extract(path)
    assert pages and all(page.text.strip() for page in pages)


def _save(image, path: Path) -> Path:
    image.save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- bounded memory ---------------------------------------------------------------------------

_CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from documents.errors import PermanentError
from documents.pipeline.extract import extract_text
from documents.pipeline.types import ExtractOptions
from documents.uploads import sniff_content_type
path = Path({path!r})
with path.open("rb") as handle:
    content_type = sniff_content_type(handle, path.name)
try:
    extraction = extract_text(path, content_type=content_type, options=ExtractOptions())
    list(extraction.pages)
    print(json.dumps("text"))
except PermanentError as exc:
    print(json.dumps(exc.kind))
"""
CAP = 1 << 30


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "name", ["docx_paragraph_bomb", "docx_lying_directory", "pdf_flate_bomb", "png_pixel_bomb"]
)
def test_the_worst_files_end_the_same_in_a_process_capped_at_1_gib(hostile, name):
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    code = _CHILD.format(root=str(ROOT), path=str(path_of(hostile, name)))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        preexec_fn=cap,
        cwd=ROOT,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == EXPECTED[name][1]


# --- the preflight estimate reads within the same budgets ---------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("docx_paragraph_bomb", "over_budget"),
        ("docx_nested_zip", "over_budget"),
        ("docx_lying_directory", "damaged"),
        ("pdf_flate_bomb", "over_budget"),
    ],
)
def test_the_full_preflight_stops_at_the_budgets_instead_of_inflating_the_bomb(
    hostile, name, problem
):
    # The worker's estimating stage runs it before extraction: it once read these whole.
    path = path_of(hostile, name)
    with path.open("rb") as handle:
        content_type = sniff_content_type(handle, path.name)
    facts = inspect(path, content_type=content_type, size_bytes=path.stat().st_size, depth=FULL)
    assert (facts.complete, facts.problem) == (False, problem)
