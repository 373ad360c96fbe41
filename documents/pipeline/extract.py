"""Extract the text of a document, page by page: PDF, DOCX, plain text/Markdown and images.

``extract_text`` opens the document and checks what can be checked up front (damaged,
password-protected, too many pages, an empty Word or text file), so those failures come
before any page is read. The pages themselves are read lazily: PDF pages one at a time,
pages without a text layer (and every image frame) through Tesseract. Errors found while
reading pages are raised by the ``pages`` iterator, including ``FailureKind.EMPTY`` for a
PDF or image in which not even OCR found a word: the consumer sees it after the last page.

PDF library: pypdfium2 only, no pdfplumber. bench/bench_extract.py, same 27 corpus text
PDFs (133 pages) in the same run, three runs on a shared, busy 2-core machine: pypdfium2
through extract_text 154/143/76 pages/s, pdfplumber with each page closed 2.6/1.8/1.6 pages/s,
ratios 58x/78x/47x (reference/measured-here.md: 326 vs 6.6 pages/s, 48.5x, 0.991 of the
characters shared; pypdfium2 also reads vertical Japanese that pdfplumber garbles). What
pdfplumber adds (table cells, word boxes) is not used by the chunker, so it would cost ~50x
the time for nothing; it reads only the pages that hold a ruled table (tables.py), for the
cells.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import charset_normalizer
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, UnidentifiedImageError

from documents.errors import FailureKind, PermanentError

from .docx_text import docx_text
from .ocr import OcrJob, ocr_pages, visible_chars
from .quality import score_text
from .tables import TableReader
from .types import Extraction, ExtractOptions, Page

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPES = ("text/plain", "text/markdown")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff")

# Tesseract's time and memory grow with the pixel count, and it refuses images wider than
# 32767 px. 40 Mpx is an A3 page at 300 DPI; larger images are scaled down to it first.
MAX_OCR_PIXELS = 40_000_000

# PDFium keeps what it has parsed (fonts, shared objects) for as long as a document is open:
# reading the 607-page corpus book, the process grew from 37 MB to 57 MB without reopening,
# to 50/48/46 MB reopening every 100/50/25 pages. A reopen costs 1.6 ms (one cross-reference
# parse); pages/s did not change beyond the noise of these machines.
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

    Raises PermanentError (CORRUPT, ENCRYPTED, TOO_MANY_PAGES, TOO_LARGE, EMPTY,
    UNSUPPORTED_TYPE) for what can be told on opening; ``pages`` may raise PermanentError
    (CORRUPT for a damaged page, EMPTY at the end) and OCR errors while it is iterated."""
    path = Path(path)
    path.stat()  # a missing file is our bug, not a property of the document: let it raise
    if content_type == PDF:
        return _extract_pdf(path, options)
    if content_type == DOCX:
        return _single_page(docx_text(path))
    if content_type in TEXT_TYPES:
        return _single_page(_read_text_file(path))
    if content_type in IMAGE_TYPES:
        return _extract_image(path, options)
    raise PermanentError(
        f"Files of type {content_type or 'unknown'} cannot be read; upload a PDF, a Word "
        "document (.docx), a text or Markdown file, or a PNG, JPEG or TIFF image.",
        kind=FailureKind.UNSUPPORTED_TYPE,
    )


# --- PDF ---------------------------------------------------------------------------------


def _extract_pdf(path: Path, options: ExtractOptions) -> Extraction:
    pdf = _open_pdf(path, options)
    page_count = len(pdf)
    if page_count > options.max_pages:
        pdf.close()
        raise _too_many_pages("PDF", page_count, options.max_pages)
    if page_count == 0:
        pdf.close()
        raise PermanentError(EMPTY_MESSAGE, kind=FailureKind.EMPTY)
    pages = ocr_pages(
        _pdf_pages(path, pdf, options),
        languages=options.ocr_languages,
        parallel=options.ocr_parallel_pages,
        tesseract=options.tesseract_cmd,
    )
    return Extraction(page_count=page_count, pages=_fail_if_empty(pages))


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


def _pdf_pages(
    path: Path, pdf: pdfium.PdfDocument, options: ExtractOptions
) -> Iterator[Page | OcrJob]:
    """Yield each page's text layer, or an OcrJob with the rendered page when the layer has
    fewer than ``ocr_min_chars`` visible characters or scores as garbage (quality.py) and
    the page is not blank. Each page and text page is closed before the next is opened, and
    the document is reopened every ``REOPEN_EVERY_PAGES`` pages, so memory stays flat
    whatever the page count."""
    tables = TableReader(path, options.password)
    try:
        for index in range(len(pdf)):
            number = index + 1
            if index and index % REOPEN_EVERY_PAGES == 0:
                pdf.close()
                pdf = _open_pdf(path, options)
            try:
                page = pdf[index]
            except pdfium.PdfiumError:
                raise PermanentError(
                    f"Page {number} of this PDF is damaged and cannot be read; repair or "
                    "re-export the PDF and upload it again.",
                    kind=FailureKind.CORRUPT,
                ) from None
            try:
                textpage = page.get_textpage()
                try:
                    text = _clean(textpage.get_text_range())
                finally:
                    textpage.close()
                # quality hook: a layer that scores as garbage is read with OCR as well
                score = score_text(text, options.word_languages)
                readable = visible_chars(text) >= options.ocr_min_chars and not score.garbage
                if readable or _blank(page):
                    # tables hook: ruled tables become Markdown rows (tables.py)
                    text = tables.page_text(page, index, text) if options.tables else text
                    yield Page(number=number, text=text, garbage_score=score.score)
                    continue
                image = _render(page, options.ocr_dpi)
            finally:
                page.close()
            yield OcrJob(
                number=number,
                image=image,
                dpi=image.info["dpi"],
                fallback_text=text,
                fallback_score=score if score.garbage else None,
            )
            del image  # handed over: do not keep it alive while the next page is read
    finally:
        tables.close()
        pdf.close()


def _blank(page: pdfium.PdfPage) -> bool:
    """A page with no content objects and no annotations renders as blank paper: there is
    nothing for OCR to read, and rendering it and starting Tesseract costs ~0.25 s (two such
    pages in the end-to-end bench set, a separator page in each of two documents)."""
    return pdfium_c.FPDFPage_CountObjects(page.raw) == 0 and (
        pdfium_c.FPDFPage_GetAnnotCount(page.raw) == 0
    )


def _render(page: pdfium.PdfPage, dpi: int) -> Image.Image:
    width, height = page.get_size()  # in points, 1/72 inch
    scale = dpi / 72
    scale = min(scale, math.sqrt(MAX_OCR_PIXELS / max(1.0, width * height)))
    # Grayscale: Tesseract binarises anyway, and it is a third of the memory of RGB.
    bitmap = page.render(scale=scale, grayscale=True)
    image = bitmap.to_pil()
    bitmap.close()
    image.info["dpi"] = round(scale * 72)
    return image


# --- images ------------------------------------------------------------------------------


def _extract_image(path: Path, options: ExtractOptions) -> Extraction:
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:
        raise PermanentError(
            "This image is too large to read (over 178 million pixels); scan it at a lower "
            "resolution and upload it again.",
            kind=FailureKind.TOO_LARGE,
        ) from None
    except (UnidentifiedImageError, OSError):
        raise _damaged_image() from None
    # Only TIFF pages are document pages; the extra frames of a JPEG (MPO) are previews.
    frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    if frames > options.max_pages:
        image.close()
        raise _too_many_pages("image", frames, options.max_pages)
    pages = ocr_pages(
        _image_frames(image, frames),
        languages=options.ocr_languages,
        parallel=options.ocr_parallel_pages,
        tesseract=options.tesseract_cmd,
    )
    return Extraction(page_count=frames, pages=_fail_if_empty(pages))


def _image_frames(image: Image.Image, frames: int) -> Iterator[OcrJob]:
    try:
        for index in range(frames):
            try:
                image.seek(index)
                image.load()
                frame = _for_ocr(image)
            except (OSError, ValueError, EOFError):
                raise _damaged_image() from None
            dpi = image.info.get("dpi")
            dpi = round(float(dpi[0])) if dpi and float(dpi[0]) >= 70 else None
            if frame.width * frame.height > MAX_OCR_PIXELS:
                factor = math.sqrt(MAX_OCR_PIXELS / (frame.width * frame.height))
                size = (int(frame.width * factor), int(frame.height * factor))
                frame = frame.resize(size, Image.Resampling.LANCZOS)
                dpi = round(dpi * factor) if dpi else None
            yield OcrJob(number=index + 1, image=frame, dpi=dpi)
    finally:
        image.close()


def _for_ocr(image: Image.Image) -> Image.Image:
    if image.mode in ("1", "L"):
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are black underneath: flatten onto white or text disappears.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def _damaged_image() -> PermanentError:
    return PermanentError(
        "This image is damaged or incomplete and cannot be read; upload it again.",
        kind=FailureKind.CORRUPT,
    )


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


def _single_page(text: str) -> Extraction:
    # Known before any page is handed out, so EMPTY is raised here rather than at the end.
    if not visible_chars(text):
        raise PermanentError(EMPTY_FILE_MESSAGE, kind=FailureKind.EMPTY)
    return Extraction(page_count=1, pages=iter([Page(number=1, text=text.strip())]))


def _fail_if_empty(pages: Iterable[Page]) -> Iterator[Page]:
    found_text = False
    for page in pages:
        found_text = found_text or visible_chars(page.text) > 0
        yield page
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
