"""The limits a document is read within, and the failures that say which one it broke.

The limits themselves are fields of ``ExtractOptions`` (types.py). Each is checked before the
step it protects: a ZIP part's size and ratio from the archive directory before it is
inflated (and again while it is inflated), a PDF stream's inflated size before PDFium parses
the page, an image's pixels from its header before it is decoded, the pages needing OCR
before the first one is read, the characters as the pages come, the wall time between pages.

Every failure is a ``BudgetExceeded`` (permanent, never retried) with a kind of its own and
a sentence for staff that names the limit and the value measured, and says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from documents.errors import BudgetExceeded, FailureKind


def size(n: float) -> str:
    """A byte count as people read it: 512 bytes, 4.1 KB, 64 MB, 1.1 GB (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(n)} bytes"


def _pixels(n: int) -> str:
    return f"{n / 1e6:,.0f} million" if n >= 10e6 else f"{n / 1e6:.1f} million"


# --- ZIP parts (DOCX) ----------------------------------------------------------------------------


def zip_part_too_large(part: str, measured: int, limit: int, *, whole: bool = False):
    """``whole``: the part was to be parsed whole, which has a lower limit
    (ooxml.WHOLE_PART_SHARE)."""
    per = "for a part read whole" if whole else "per part"
    return BudgetExceeded(
        f"The part {part} of this Word document is {size(measured)} uncompressed, more than "
        f"the limit of {size(limit)} {per}. Save the document again from Word (or split it) "
        "and upload the new file.",
        kind=FailureKind.ZIP_PART_TOO_LARGE,
    )


def zip_ratio_too_high(part: str, inflated: int, compressed: int, limit: float):
    return BudgetExceeded(
        f"The part {part} of this Word document inflates from {size(compressed)} to "
        f"{size(inflated)}, a compression ratio of {inflated / max(compressed, 1):,.0f} to 1, "
        f"more than the limit of {limit:,.0f} to 1; real documents do not compress that "
        "well. Save the document again from Word and upload the new file.",
        kind=FailureKind.ZIP_RATIO_TOO_HIGH,
    )


# --- PDF -----------------------------------------------------------------------------------------


def pdf_stream_too_large(page: int, what: str, measured: int, limit: int):
    return BudgetExceeded(
        f"Page {page} of this PDF has a compressed {what} that inflates past the limit of "
        f"{size(limit)} per stream ({size(measured)} when reading stopped). Export or print "
        "the document to PDF again and upload the new file.",
        kind=FailureKind.PDF_STREAM_TOO_LARGE,
    )


# --- images --------------------------------------------------------------------------------------


def image_too_large(pixels: int, limit: int, *, size=None, where: str = "This image"):
    """``size``: (width, height) when known. ``where``: "This image", "Page 2 of this
    image", "Page 3 of this PDF holds an image that"."""
    dimensions = f"{size[0]:,} x {size[1]:,} pixels ({_pixels(pixels)})" if size else None
    return BudgetExceeded(
        f"{where} is {dimensions or _pixels(pixels) + ' pixels'}, more than the limit of "
        f"{_pixels(limit)} pixels. Scan or export it at a lower resolution (300 DPI is "
        "plenty for text) and upload it again.",
        kind=FailureKind.IMAGE_TOO_LARGE,
    )


# --- pages, text, time ---------------------------------------------------------------------------


def too_many_ocr_pages(limit: int, *, what: str, needing: int | None = None, of_pages=None):
    """``needing``: the exact count when known, else "more than ``limit``" is said (the
    count stops there). ``of_pages``: the PDF's page count (an image's pages all need OCR)."""
    count = f"{needing:,}" if needing is not None else f"more than {limit:,}"
    if of_pages is not None:
        found = f"{count} pages without a text layer (of its {of_pages:,} pages)"
        advice = "Split it into smaller files, or upload a copy that has a text layer."
    else:
        found = f"{count} pages, each to be read with OCR"
        advice = "Split it into smaller files and upload them separately."
    return BudgetExceeded(
        f"This {what} has {found}, and the limit is {limit:,} pages read with OCR per "
        f"document. {advice}",
        kind=FailureKind.TOO_MANY_OCR_PAGES,
    )


class TextBudget:
    """Counts the characters of a document as its text is produced."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def add(self, chars: int, *, page: int | None = None, pages: int | None = None) -> None:
        self.count += chars
        if self.count > self.limit:
            where = f" by page {page:,} of {pages:,}" if page and pages and pages > 1 else ""
            raise BudgetExceeded(
                f"This document has more than {self.limit:,} characters of text, the limit "
                f"per document ({self.count:,} read{where}). Split it into smaller files and "
                "upload them separately.",
                kind=FailureKind.TOO_MUCH_TEXT,
            )


class Deadline:
    """The wall time a document may take to read, started when extraction starts."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._start = clock()

    def elapsed(self) -> float:
        return self._clock() - self._start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def check(self, *, page: int | None = None, pages: int | None = None) -> None:
        if self.remaining() < 0:
            raise self.exceeded(page=page, pages=pages)

    def exceeded(self, *, page: int | None = None, pages: int | None = None) -> BudgetExceeded:
        where = f", at page {page:,}" if page else ""
        where += f" of {pages:,}" if page and pages else ""
        return BudgetExceeded(
            f"Reading this document took longer than the limit of {self.seconds:,.0f} "
            f"seconds (stopped after {self.elapsed():,.0f} seconds{where}). Split it into "
            "smaller files and upload them separately.",
            kind=FailureKind.TIME_LIMIT,
        )


def document_time_limit(limit: float, elapsed: float, *, stage: str = "") -> BudgetExceeded:
    """The whole document (every stage, not only extraction) outlived its wall time: the
    processing task's soft time limit fired. ``stage``: where it was stopped."""
    where = f", while {stage}" if stage else ""
    return BudgetExceeded(
        f"Processing this document took longer than the limit of {limit:,.0f} seconds per "
        f"document (stopped after {elapsed:,.1f} seconds{where}). Split it into smaller "
        "files and upload them separately.",
        kind=FailureKind.TIME_LIMIT,
    )
