"""Extract the text of a document, page by page: PDF, DOCX, plain text/Markdown and images.

``extract_text`` opens the document and checks what can be checked up front (damaged,
password-protected, too many pages, an empty Word or text file), so those failures come
before any page is read. The pages themselves are read lazily: PDF pages one at a time,
pages without a text layer (and every image frame) through Tesseract. Errors found while
reading pages are raised by the ``pages`` iterator, including ``FailureKind.EMPTY`` for a
PDF or image in which not even OCR found a word: the consumer sees it after the last page.

Every document is read within the budgets of ``ExtractOptions`` (budgets.py), each checked
before the step it protects: the ZIP parts of a DOCX (ooxml.py), the streams a PDF page draws
before PDFium loads the page (pdf_streams.py), an image's pixels from its header before it is
decoded, the pages that need OCR before the first one is read (for a PDF, the text layers of
the pages after the first page to OCR are read then, and kept, so nothing is read twice), the
characters as the pages come, and the wall time between pages and while Tesseract runs.

PDF library: pypdfium2, many times faster than pdfplumber for the same text
(docs/decisions/0001-pypdfium2-over-pdfplumber.md); pdfplumber reads only the pages that
hold a ruled table (tables.py), for the cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import charset_normalizer
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from documents.errors import FailureKind, PermanentError

from .budgets import Deadline, TextBudget, too_many_ocr_pages
from .docx_text import docx_text
from .images import image_frames, ocr_scale, open_image
from .ocr import OcrJob, ocr_pages, visible_chars
from .pdf_streams import PageStreams
from .quality import TextScore, score_text
from .tables import TableReader
from .types import Extraction, ExtractOptions, Page

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPES = ("text/plain", "text/markdown")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff")

# PDFium keeps what it has parsed (fonts, shared objects) for as long as a document is open,
# so a long document is reopened now and then; a reopen is one cross-reference parse, far
# cheaper than the memory it frees (docs/measurements.md, "PDF reopening").
REOPEN_EVERY_PAGES = 25

EMPTY_MESSAGE = "No readable text was found in this document, even after OCR."
# Word and text files are not read with OCR (a picture in a Word document stays unread).
EMPTY_FILE_MESSAGE = "No text was found in this document."

# How much worse (charset-normalizer's "chaos" ratio, 0-1) Windows-1252 may read than the
# best guess and still be chosen; see _read_text_file.
_CHAOS_MARGIN = 0.1

# PDFium's text: "\r\n" line ends, U+FFFE where a word was hyphenated across a line end
# (removing it joins the word back: "com\ufffepany"), and stray C0 controls from symbol fonts.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]")


def extract_text(path: Path, *, content_type: str, options: ExtractOptions) -> Extraction:
    """Open ``path`` as ``content_type`` and return its page count and a lazy page iterator.

    Raises PermanentError (CORRUPT, ENCRYPTED, EMPTY, UNSUPPORTED_TYPE, or a budget's
    kind) for what can be told on opening; ``pages`` may raise PermanentError (CORRUPT for a
    damaged page, a budget's kind, EMPTY at the end) and OCR errors while it is iterated.
    Close ``pages`` (``Extraction.close``) when stopping early: it stops Tesseract."""
    path = Path(path)
    path.stat()  # a missing file is our bug, not a property of the document: let it raise
    deadline = Deadline(options.max_seconds)
    if content_type == PDF:
        return _extract_pdf(path, options, deadline)
    if content_type == DOCX:
        return _single_page(docx_text(path, options, deadline), options)
    if content_type in TEXT_TYPES:
        return _single_page(_read_text_file(path), options)
    if content_type in IMAGE_TYPES:
        return _extract_image(path, options, deadline)
    raise PermanentError(
        f"Files of type {content_type or 'unknown'} cannot be read; upload a PDF, a Word "
        "document (.docx), a text or Markdown file, or a PNG, JPEG or TIFF image.",
        kind=FailureKind.UNSUPPORTED_TYPE,
    )


# --- PDF ---------------------------------------------------------------------------------


def _extract_pdf(path: Path, options: ExtractOptions, deadline: Deadline) -> Extraction:
    pdf = _open_pdf(path, options)
    page_count = len(pdf)
    if page_count > options.max_pages:
        pdf.close()
        raise _too_many_pages("PDF", page_count, options.max_pages)
    if page_count == 0:
        pdf.close()
        raise PermanentError(EMPTY_MESSAGE, kind=FailureKind.EMPTY)
    pages = ocr_pages(
        _PdfPages(path, pdf, options, deadline).pages(),
        languages=options.ocr_languages,
        parallel=options.ocr_parallel_pages,
        tesseract=options.tesseract_cmd,
        deadline=deadline,
    )
    return Extraction(page_count=page_count, pages=_counted(pages, options, page_count))


def _open_pdf(path: Path, options: ExtractOptions) -> pdfium.PdfDocument:
    try:
        # A path (not bytes) lets PDFium read the file on demand instead of holding it all.
        # password=None makes PDFium try the empty user password, which is how PDFs that are
        # "encrypted" only to restrict printing or copying open (corpus: pr-138-example.pdf).
        return pdfium.PdfDocument(str(path), password=options.password or None)
    except pdfium.PdfiumError as exc:
        raise _pdf_open_error(exc, options) from None


def _pdf_open_error(exc: pdfium.PdfiumError, options: ExtractOptions) -> PermanentError:
    code = getattr(exc, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        if options.password:
            message = (
                "This PDF is password-protected and the password given does not open it; "
                "check the password or upload an unprotected copy."
            )
        else:
            message = "This PDF is password-protected; upload an unprotected copy."
        return PermanentError(message, kind=FailureKind.ENCRYPTED)
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return PermanentError(
            "This PDF is protected with an encryption scheme that cannot be opened; "
            "upload an unprotected copy.",
            kind=FailureKind.ENCRYPTED,
        )
    # FPDF_ERR_FORMAT and the rest: not a PDF, cut short (an interrupted download or
    # upload), or an empty file.
    return PermanentError(
        "This PDF is damaged or incomplete and cannot be opened; check that the file opens "
        "on your computer and upload it again.",
        kind=FailureKind.CORRUPT,
    )


class _PdfPages:
    """The pages of an open PDF, each yielded as its text layer, or as an OcrJob with the
    rendered page when the layer has fewer than ``ocr_min_chars`` visible characters or
    scores as garbage (quality.py) and the page is not blank. A readable page that holds a
    ruled table has it as Markdown rows (tables.py). Each page and text page is closed before
    the next is opened, and the document is reopened every ``REOPEN_EVERY_PAGES`` pages
    loaded, so memory stays flat whatever the page count. Before PDFium loads a page, the
    streams it draws are checked (pdf_streams.py); before it renders one, the images it
    holds."""

    def __init__(
        self, path: Path, pdf: pdfium.PdfDocument, options: ExtractOptions, deadline: Deadline
    ):
        self.path = path
        self.pdf = pdf
        self.options = options
        self.deadline = deadline
        self.count = len(pdf)
        self.streams = PageStreams(
            path,
            password=options.password,
            max_stream_bytes=options.max_pdf_stream_bytes,
            max_image_pixels=options.max_image_pixels,
            deadline=deadline,
        )
        self.tables = TableReader() if options.tables else None
        self._loaded = 0

    def pages(self) -> Iterator[Page | OcrJob]:
        ahead: dict[int, tuple[str, bool, TextScore]] = {}
        counted = False
        try:
            for index in range(self.count):
                number = index + 1
                text, needs_ocr, score = ahead.pop(index, None) or self._read(index)
                if not needs_ocr:
                    yield Page(number=number, text=text, garbage_score=score.score)
                    continue
                image = self._render(index)
                if not counted:
                    # Rendered first: the render is the run's peak of memory, and the count
                    # reads and checks every later page, which leaves PDFium and qpdf larger.
                    counted = True
                    self._count_ocr_pages(index, ahead)
                yield OcrJob(
                    number=number,
                    image=image,
                    dpi=image.info["dpi"],
                    fallback_text=text,
                    fallback_score=score if score.garbage else None,
                )
                del image  # handed over: do not keep it alive while the next page is read
        finally:
            self.pdf.close()
            self.streams.close()
            if self.tables is not None:
                self.tables.close()

    def _count_ocr_pages(self, first: int, ahead: dict[int, tuple[str, bool, TextScore]]) -> None:
        """Before the first page goes to OCR: read the text layers of the pages after it
        (kept in ``ahead`` for their turn), count those that need OCR too, and check the
        images of each one (reading a text layer takes milliseconds, OCR seconds). Then
        qpdf's memory is released: every page has been checked."""
        needing = 1
        text = TextBudget(self.options.max_chars)
        for index in range(first + 1, self.count):
            ahead[index] = self._read(index)
            text.add(len(ahead[index][0]), page=index + 1, pages=self.count)
            if ahead[index][1]:
                needing += 1
                if needing > self.options.max_ocr_pages:
                    raise too_many_ocr_pages(
                        self.options.max_ocr_pages, what="PDF", of_pages=self.count
                    )
                self.streams.check_images(index)
        if needing > self.options.max_ocr_pages:  # the first page alone, with a limit of 0
            raise too_many_ocr_pages(
                self.options.max_ocr_pages, what="PDF", needing=needing, of_pages=self.count
            )
        self.streams.close()

    def _load(self, index: int) -> pdfium.PdfPage:
        self.deadline.check(page=index + 1, pages=self.count)
        self.streams.check_page(index)
        if self._loaded and self._loaded % REOPEN_EVERY_PAGES == 0:
            self.pdf.close()
            self.pdf = _open_pdf(self.path, self.options)
        self._loaded += 1
        try:
            return self.pdf[index]
        except pdfium.PdfiumError:
            raise PermanentError(
                f"Page {index + 1} of this PDF is damaged and cannot be read; repair or "
                "re-export the PDF and upload it again.",
                kind=FailureKind.CORRUPT,
            ) from None

    def _read(self, index: int) -> tuple[str, bool, TextScore]:
        """The page's text layer, whether the page needs OCR, and the layer's garbage score.
        A layer that scores as garbage is read with OCR as well (quality.py)."""
        page = self._load(index)
        try:
            # one text page for the text layer and the tables' cells (opening one costs
            # about as much as reading the text)
            textpage = page.get_textpage()
            try:
                text = _clean(textpage.get_text_range())
                score = score_text(text, self.options.word_languages)
                readable = visible_chars(text) >= self.options.ocr_min_chars and not score.garbage
                needs_ocr = not readable and not _blank(page)
                if not needs_ocr and self.tables is not None:
                    text = self.tables.page_text(page, textpage, index, text)
            finally:
                textpage.close()
        finally:
            page.close()
        return text, needs_ocr, score

    def _render(self, index: int) -> Image.Image:
        self.streams.check_images(index)
        page = self._load(index)
        try:
            return _render(page, self.options.ocr_dpi)
        finally:
            page.close()


def _blank(page: pdfium.PdfPage) -> bool:
    """A page with no content objects and no annotations renders as blank paper: there is
    nothing for OCR to read, so it is not rendered and no Tesseract is started for it."""
    return pdfium_c.FPDFPage_CountObjects(page.raw) == 0 and (
        pdfium_c.FPDFPage_GetAnnotCount(page.raw) == 0
    )


def _render(page: pdfium.PdfPage, dpi: int) -> Image.Image:
    width, height = page.get_size()  # in points, 1/72 inch
    scale = dpi / 72
    scale *= ocr_scale(width * scale, height * scale)
    # Grayscale: Tesseract binarises anyway, and it is a third of the memory of RGB.
    bitmap = page.render(scale=scale, grayscale=True)
    image = bitmap.to_pil()
    bitmap.close()
    image.info["dpi"] = round(scale * 72)
    return image


# --- images ------------------------------------------------------------------------------


def _extract_image(path: Path, options: ExtractOptions, deadline: Deadline) -> Extraction:
    image, frames = open_image(path, options)
    pages = ocr_pages(
        image_frames(image, frames, options, deadline),
        languages=options.ocr_languages,
        parallel=options.ocr_parallel_pages,
        tesseract=options.tesseract_cmd,
        deadline=deadline,
    )
    return Extraction(page_count=frames, pages=_counted(pages, options, frames))


# --- text and shared helpers ---------------------------------------------------------------


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    try:
        # Most files are UTF-8, and a strict decode is a certain answer; charset-normalizer
        # guesses, so it is asked only when UTF-8 fails.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        candidates = charset_normalizer.from_bytes(data)
        best = candidates.best()
        if best is None:
            raise PermanentError(
                "The characters in this text file are in an encoding that could not be "
                "recognised; save it as UTF-8 and upload it again.",
                kind=FailureKind.CORRUPT,
            ) from None
        # charset-normalizer misjudges short Western European text: French written in
        # Windows-1252 came out as cp1257 ("réuni ą Montréal"). Windows-1252 is where our
        # users' legacy files come from (English, French, German), so it wins whenever it
        # reads about as cleanly as the best guess; Cyrillic or Greek text read as 1252 is
        # full of mixed-case accented letters, scores far worse, and keeps its own guess.
        western = next((match for match in candidates if match.encoding == "cp1252"), None)
        if western is not None and western.chaos <= best.chaos + _CHAOS_MARGIN:
            best = western
        text = str(best)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _single_page(text: str, options: ExtractOptions) -> Extraction:
    # Known before any page is handed out, so EMPTY is raised here rather than at the end.
    text = text.strip()
    if not visible_chars(text):
        raise PermanentError(EMPTY_FILE_MESSAGE, kind=FailureKind.EMPTY)
    TextBudget(options.max_chars).add(len(text))
    return Extraction(page_count=1, pages=iter([Page(number=1, text=text)]))


def _counted(pages: Iterator[Page], options: ExtractOptions, page_count: int) -> Iterator[Page]:
    """The pages, with their characters counted against the budget, and EMPTY after the last
    one when not even OCR found a word. Closing this closes the pages it reads from (and so
    stops their Tesseract processes)."""
    text = TextBudget(options.max_chars)
    found_text = False
    try:
        for page in pages:
            text.add(len(page.text), page=page.number, pages=page_count)
            found_text = found_text or visible_chars(page.text) > 0
            yield page
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
    if not found_text:
        raise PermanentError(EMPTY_MESSAGE, kind=FailureKind.EMPTY)


def _too_many_pages(what: str, count: int, limit: int) -> PermanentError:
    return PermanentError(
        f"This {what} has {count:,} pages, more than the limit of {limit:,} pages; split it "
        "into smaller files and upload them separately.",
        kind=FailureKind.TOO_MANY_PAGES,
    )


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
