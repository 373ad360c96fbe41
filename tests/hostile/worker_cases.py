"""The hostile corpus as a real worker meets it: which files, with which budgets, ending how.

Shared by tests/documents/test_hostile_end_to_end.py (upload through the API, assert the
outcomes) and bench/bench_hostile_worker.py (the same files, timed, the worker's memory
sampled). Some budgets are set low, with smaller files to match, so that the outcome comes
in seconds instead of minutes and the uploads stay small; the rest are the defaults, met by
the bombs of make_hostile.py as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from documents.errors import FailureKind
from tests.hostile import make_hostile

# The worker's settings (its environment): the budgets lowered here, the others left as
# their defaults (backoffice/settings.py).
WORKER_SETTINGS = {
    "PIPELINE_MAX_OCR_PAGES": "20",
    "PIPELINE_MAX_CHARS": "1000000",
    # Bounded memory, asserted: the watchdog kills a pool process (with its Tesseracts) over
    # this, which the test sees as a worker loss. The model-loaded pool process holds about
    # 0.8 GB (README, "Hostile input through a real worker"); a bomb read whole is gigabytes.
    "WORKER_MEMORY_LIMIT_MB": "1280",
}

COMPLETED = "completed"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    # a failure kind, or COMPLETED
    outcome: str
    # fragments of the failure sentence: the limit and the value measured
    fragments: list[str] = field(default_factory=list)


def _file(name: str) -> Callable[[Path], Path]:
    return lambda folder: make_hostile.make(name, folder)


CASES = [
    Case(
        "docx_paragraph_bomb",
        _file("docx_paragraph_bomb"),
        FailureKind.ZIP_PART_TOO_LARGE,
        ["word/document.xml", "is 1.1 GB uncompressed", "limit of 64 MB per part"],
    ),
    Case(
        "docx_nested_zip",
        _file("docx_nested_zip"),
        FailureKind.ZIP_RATIO_TOO_HIGH,
        ["word/embeddings/archive.zip", "ratio of 427 to 1", "limit of 200 to 1"],
    ),
    Case(
        "docx_lying_directory",
        _file("docx_lying_directory"),
        FailureKind.CORRUPT,
        ["word/document.xml inflates to more than", "not the 4.1 KB its directory gives"],
    ),
    Case(
        "docx_entity_expansion",
        _file("docx_entity_expansion"),
        FailureKind.CORRUPT,
        ["document type declaration (DTD)"],
    ),
    Case(
        "text_single_line",
        lambda folder: make_hostile.text_single_line(folder / "single-line.txt", size=2_000_000),
        FailureKind.TOO_MUCH_TEXT,
        ["more than 1,000,000 characters", "(2,000,000 read)"],
    ),
    Case(
        "pdf_flate_bomb",
        _file("pdf_flate_bomb"),
        FailureKind.PDF_STREAM_TOO_LARGE,
        ["Page 1", "content stream", "past the limit of 100 MB per stream"],
    ),
    Case(
        "pdf_near_blank_pages",
        _file("pdf_near_blank_pages"),
        FailureKind.TOO_MANY_OCR_PAGES,
        ["more than 20 pages without a text layer (of its 1,999 pages)", "limit is 20"],
    ),
    Case(
        "pdf_many_pages",
        lambda folder: make_hostile.pdf_many_pages(folder / "many-pages.pdf", pages=2_500),
        FailureKind.TOO_MANY_PAGES,
        ["2,500 pages", "limit of 2,000 pages"],
    ),
    Case(
        "pdf_page_tree_loop",
        _file("pdf_page_tree_loop"),
        FailureKind.CORRUPT,
        ["Page 1 of this PDF is damaged"],
    ),
    Case(
        "png_pixel_bomb",
        _file("png_pixel_bomb"),
        FailureKind.IMAGE_TOO_LARGE,
        ["13,000 x 13,000 pixels (169 million)", "limit of 89 million pixels"],
    ),
    Case(
        "png_one_pixel_high",
        _file("png_one_pixel_high"),
        FailureKind.EMPTY,
        ["No readable text"],
    ),
    Case(
        "tiff_many_frames",
        _file("tiff_many_frames"),
        FailureKind.TOO_MANY_OCR_PAGES,
        ["more than 20 pages, each to be read with OCR", "limit is 20"],
    ),
    Case(
        "tiff_bomb_second_frame",
        _file("tiff_bomb_second_frame"),
        FailureKind.IMAGE_TOO_LARGE,
        ["Page 2 of this image is 13,000 x 13,000 pixels", "limit of 100 million pixels"],
    ),
    # A form that draws itself: read once, the document completes.
    Case("pdf_form_loop", _file("pdf_form_loop"), COMPLETED),
]


def write_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {case.name: case.make(folder) for case in CASES}
