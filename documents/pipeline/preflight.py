"""What a file is made of, read from its structure before any of its text is extracted.

Two depths, because their costs differ by orders of magnitude (bench/bench_preflight.py):

* ``structure`` reads only what a file's directory and objects say: a PDF's page count
  and, from each page's resources, whether it has a text layer (pdf_structure.py), a Word
  file's ZIP directory (the uncompressed size of its text parts and the pictures it holds),
  an image's frame count, a text file's size. It never reads a page's text, so it costs a
  few milliseconds and can run inside the upload request; the estimate turns text pages and
  XML bytes into characters with rates measured on the corpus.
* ``full`` also looks at each PDF page's text layer -- PDFium's character count, not the
  text -- to tell the pages that will be read with OCR from those with text, and sums the
  lengths of a Word file's text runs. Loading a page is most of what reading its text costs,
  so this pass costs about what extracting the text layers does; it runs in the worker (the
  ``estimating`` stage), or at upload when a tenant's cost limit needs its answer.

Tokens per character depend on the script and the subject far more than on anything else
(docs/measurements.md, "Tokens per character"), so when a ``counter`` (the embedder's) is
given, the text of a few pages spread over the document -- or a Word file's text runs, or a
text file's first bytes -- is counted with it, and the estimate uses that sample's ratio.

Nothing here raises for a bad file: a file that cannot be inspected gets a ``problem``, and
the extraction reports it to staff with its own sentence. The full pass reads within the same
budgets as the extraction (``ExtractOptions``): a Word part through the bounded ZIP reader
(ooxml.py), a PDF page only after the streams it draws are checked (pdf_streams.py). A file
over one gets the problem ``over_budget``, and the extraction that follows fails it with the
budget's sentence: without that, the estimate inflated the bombs the extraction refuses (a
worker killed three times over a 3 MB Word file, tests/documents/test_hostile_end_to_end.py).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import BinaryIO

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from documents.errors import BudgetExceeded

from .extract import DOCX, IMAGE_TYPES, PDF, TEXT_TYPES, _blank, _clean
from .ocr import visible_chars
from .ooxml import Package, PackageError
from .pdf_streams import PageStreams
from .pdf_structure import read_pdf_structure
from .types import ExtractOptions, TokenCounter

STRUCTURE = "structure"
FULL = "full"

# A page with this many characters or more has a text layer whatever its whitespace; below,
# its text is read to count the visible characters exactly, as the extractor decides (a few
# dozen characters cost nothing to read).
_SURELY_TEXT_CHARS = 256

# Pages of a PDF whose text is read and counted for the token sample: enough to average over a
# title page or a table, few enough to cost a few milliseconds.
SAMPLE_PAGES = 8
# The head of a Word file's text counted for the sample (in the worker), and of a text file
# (at upload, where the whole preflight must stay near a millisecond).
SAMPLE_TEXT_CHARS = 32 * 1024
SAMPLE_TEXT_FILE_BYTES = 4 * 1024
_PIECE_CHARS = 2048

# The parts of a Word package whose text the extractor reads (docx_text.py).
_DOCX_TEXT_PART = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml$")
# The text of a run: <w:t> or <w:t xml:space="preserve">; strict OOXML uses the same
# local name under another prefix. Paragraphs end with </w:p>: runs are joined within a
# paragraph (a word can span two runs) and paragraphs by a line break, as the extractor does,
# so the token sample does not glue the last word of one paragraph to the next.
_DOCX_RUN_TEXT = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>([^<]*)</(?:\w+:)?t>")
_DOCX_PARAGRAPH_END = re.compile(rb"</(?:\w+:)?p>")


@dataclass(frozen=True)
class Preflight:
    """The facts the estimate is made from. ``complete`` means every fact it needs is known;
    ``None`` means not known (not looked at, or not applicable). At ``structure`` depth a
    complete PDF or Word preflight has no ``text_chars``: the estimate derives them from the
    text pages or ``docx_xml_bytes``."""

    kind: str  # pdf, docx, text, image
    size_bytes: int
    depth: str
    complete: bool
    pages: int | None = None
    pages_with_text: int | None = None
    pages_to_ocr: int | None = None
    blank_pages: int | None = None
    # characters in the PDF text layers, the Word text runs, or the text file (its bytes)
    text_chars: int | None = None
    images: int | None = None
    docx_xml_bytes: int | None = None
    # a sample of the text, in the units of ``text_chars``, and its tokens by the embedder's
    # counter; the estimate uses their ratio when the sample is large enough
    sample_chars: int = 0
    sample_tokens: int = 0
    # why the file could not be inspected ("encrypted", "damaged"); empty when it could
    problem: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preflight | None:
        if not data or "kind" not in data:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


Source = Path | str | BinaryIO


def inspect(
    source: Source,
    *,
    content_type: str,
    size_bytes: int,
    depth: str = FULL,
    ocr_min_chars: int = 16,
    max_pages: int = 2000,
    counter: TokenCounter | None = None,
    budgets: ExtractOptions | None = None,
) -> Preflight:
    """Inspect ``source`` (a path, or a seekable binary file, left at offset 0) as
    ``content_type``. ``ocr_min_chars`` is the extractor's own threshold; pages past
    ``max_pages`` are not looked at (the extractor refuses such a file anyway). ``counter``:
    the embedder's token counter, for the token sample (none without it). ``budgets``: the
    ZIP and PDF stream limits the full pass reads within (the defaults without it)."""
    budgets = budgets or ExtractOptions()
    if depth not in (STRUCTURE, FULL):
        raise ValueError(f"depth must be {STRUCTURE!r} or {FULL!r}, got {depth!r}")
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        if content_type == PDF:
            return _pdf(source, size_bytes, depth, ocr_min_chars, max_pages, counter, budgets)
        if content_type == DOCX:
            return _docx(source, size_bytes, depth, counter, budgets)
        if content_type in TEXT_TYPES:
            return _text(source, size_bytes, depth, counter)
        if content_type in IMAGE_TYPES:
            return _image(source, size_bytes, depth)
        return Preflight(
            kind="unknown", size_bytes=size_bytes, depth=depth, complete=False, problem="type"
        )
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


def _opened(source: Source):
    return str(source) if isinstance(source, Path | str) else source


def _sample(counter: TokenCounter | None, texts: list[str], units: int) -> dict:
    """``units``: the size of the sample in the units of ``text_chars``."""
    if counter is None or not units:
        return {}
    pieces = [piece for text in texts for piece in _pieces(text)]
    batch = getattr(counter, "count_tokens_batch", None)
    counts = batch(pieces) if batch else [counter.count_tokens(p) for p in pieces]
    # A counter may add tokens to every text it counts (MiniLM's [CLS] and [SEP]).
    per_text = counter.count_tokens("")
    return {"sample_chars": units, "sample_tokens": sum(n - per_text for n in counts)}


def _pieces(text: str) -> list[str]:
    """``text`` in pieces of about ``_PIECE_CHARS``, cut at whitespace: the MiniLM tokenizer
    counts four 2 KB pieces in a tenth of the time it takes over one 32 KB string."""
    pieces = []
    while len(text) > _PIECE_CHARS:
        cut = text.rfind(" ", _PIECE_CHARS // 2, _PIECE_CHARS)
        cut = cut if cut > 0 else _PIECE_CHARS
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces


# --- PDF ---------------------------------------------------------------------------------------


def _pdf(source, size_bytes, depth, ocr_min_chars, max_pages, counter, budgets) -> Preflight:
    base = {"kind": "pdf", "size_bytes": size_bytes, "depth": depth}
    try:
        # password=None tries the empty user password, as the extractor does.
        pdf = pdfium.PdfDocument(_opened(source), password=None)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        encrypted = code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY)
        return Preflight(**base, complete=False, problem="encrypted" if encrypted else "damaged")
    try:
        pages = len(pdf)
        if depth == STRUCTURE and pages <= max_pages:
            return _pdf_structure(source, base, pages, max_pages)
        if depth == STRUCTURE or pages > max_pages:
            return Preflight(**base, complete=False, pages=pages)
        streams = PageStreams(
            Path(source) if isinstance(source, str) else source,
            password="",
            max_stream_bytes=budgets.max_pdf_stream_bytes,
            max_image_pixels=budgets.max_image_pixels,
        )
        with_text = to_ocr = blank = chars = images = sampled_chars = 0
        sampled: list[str] = []
        every = max(1, -(-pages // SAMPLE_PAGES))
        for index in range(pages):
            try:
                streams.check_page(index)  # before PDFium inflates what the page draws
                page = pdf[index]
            except BudgetExceeded:
                streams.close()
                return Preflight(**base, complete=False, pages=pages, problem="over_budget")
            except pdfium.PdfiumError:
                streams.close()
                return Preflight(**base, complete=False, pages=pages, problem="damaged")
            try:
                want = counter is not None and index % every == 0
                count, text = _text_layer(page, ocr_min_chars, want_text=want)
                images += _image_objects(page)
                if count is not None:
                    with_text += 1
                    chars += count
                    if text:
                        sampled.append(text)
                        sampled_chars += count
                elif _blank(page):
                    blank += 1
                else:
                    to_ocr += 1
            finally:
                page.close()
        streams.close()
        return Preflight(
            **base,
            complete=True,
            pages=pages,
            pages_with_text=with_text,
            pages_to_ocr=to_ocr,
            blank_pages=blank,
            text_chars=chars,
            images=images,
            **_sample(counter, sampled, sampled_chars),
        )
    finally:
        pdf.close()


def _pdf_structure(source, base: dict, pages: int, max_pages: int) -> Preflight:
    """The pages by kind from the page objects; the page count alone (incomplete) when they
    cannot be read, or when qpdf counts other pages than PDFium, which the extractor uses."""
    if hasattr(source, "seek"):
        source.seek(0)
    shape = read_pdf_structure(_opened(source), max_pages=max_pages)
    if shape is None or shape.pages != pages:
        return Preflight(**base, complete=False, pages=pages)
    return Preflight(
        **base,
        complete=True,
        pages=pages,
        pages_with_text=shape.text_pages,
        pages_to_ocr=shape.ocr_pages,
        blank_pages=shape.blank_pages,
        images=shape.images,
    )


def _text_layer(page: pdfium.PdfPage, ocr_min_chars: int, *, want_text: bool):
    """(character count, text or "") when the page's text layer is enough for the extractor
    (which reads pages with fewer than ``ocr_min_chars`` visible characters with OCR), else
    (None, ""). The text itself is read only when wanted, or to decide a nearly empty page."""
    textpage = page.get_textpage()
    try:
        count = pdfium_c.FPDFText_CountChars(textpage.raw)
        if count <= 0:
            return None, ""
        if count >= _SURELY_TEXT_CHARS and not want_text:
            return count, ""
        text = _clean(textpage.get_text_range())
        if count < _SURELY_TEXT_CHARS and visible_chars(text) < ocr_min_chars:
            return None, ""
        return count, text if want_text else ""
    finally:
        textpage.close()


def _image_objects(page: pdfium.PdfPage) -> int:
    raw = page.raw
    return sum(
        1
        for i in range(pdfium_c.FPDFPage_CountObjects(raw))
        if pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(raw, i))
        == pdfium_c.FPDF_PAGEOBJ_IMAGE
    )


# --- Word ------------------------------------------------------------------------------------


def _docx(source, size_bytes, depth, counter, budgets) -> Preflight:
    base = {"kind": "docx", "size_bytes": size_bytes, "depth": depth, "pages": 1}
    facts: dict = {}
    try:
        with Package(
            _opened(source),
            max_part_bytes=budgets.max_zip_part_bytes,
            max_ratio=budgets.max_zip_ratio,
        ) as package:
            infos = package.infos()
            parts = [i for i in infos if _DOCX_TEXT_PART.match(i.filename)]
            facts = {
                "docx_xml_bytes": sum(i.file_size for i in parts),
                "images": sum(1 for i in infos if i.filename.startswith("word/media/")),
            }
            # A directory over the budgets (a ZIP bomb) gets no estimate from its sizes:
            # the extraction refuses it.
            package.check_directory()
            if depth == STRUCTURE:
                return Preflight(**base, complete=True, pages_with_text=1, pages_to_ocr=0, **facts)
            # Reads the XML but not its meaning: the characters between <w:t> tags are what
            # Word shows; tags, styles and properties (most of the bytes) are skipped. Each
            # part is read whole, which its budget bounds.
            paragraphs = [
                b"".join(_DOCX_RUN_TEXT.findall(xml)).decode("utf-8", "replace")
                for part in parts
                for xml in _DOCX_PARAGRAPH_END.split(package.read(part.filename))
            ]
    except BudgetExceeded:
        return Preflight(**base, complete=False, **facts, problem="over_budget")
    except (PackageError, zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError):
        return Preflight(**base, complete=False, problem="damaged")
    paragraphs = [p for p in paragraphs if p]
    chars = sum(len(p) for p in paragraphs)
    head = "\n".join(paragraphs)[:SAMPLE_TEXT_CHARS]
    return Preflight(
        **base,
        complete=True,
        pages_with_text=1,
        pages_to_ocr=0,
        text_chars=chars,
        **facts,
        **_sample(counter, [head], len(head)),
    )


# --- text --------------------------------------------------------------------------------------


def _text(source, size_bytes, depth, counter) -> Preflight:
    sample = {}
    if counter is not None:
        if isinstance(source, Path | str):
            with open(source, "rb") as handle:
                head = handle.read(SAMPLE_TEXT_FILE_BYTES)
        else:
            head = source.read(SAMPLE_TEXT_FILE_BYTES)
        # text_chars is in bytes (the file is not decoded here), so the sample is too.
        sample = _sample(counter, [head.decode("utf-8", "replace")], len(head))
    return Preflight(
        kind="text",
        size_bytes=size_bytes,
        depth=depth,
        complete=True,
        pages=1,
        pages_with_text=1,
        pages_to_ocr=0,
        text_chars=size_bytes,
        images=0,
        **sample,
    )


# --- images ----------------------------------------------------------------------------------


def _image(source, size_bytes, depth) -> Preflight:
    base = {"kind": "image", "size_bytes": size_bytes, "depth": depth}
    try:
        with Image.open(_opened(source)) as image:
            # Only TIFF frames are pages (the extractor's rule); a JPEG's extra frames are previews.
            frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    except (OSError, ValueError, Image.DecompressionBombError, EOFError):
        return Preflight(**base, complete=False, problem="damaged")
    return Preflight(
        **base,
        complete=True,
        pages=frames,
        pages_with_text=0,
        pages_to_ocr=frames,
        blank_pages=0,
        text_chars=0,
        images=frames,
    )
