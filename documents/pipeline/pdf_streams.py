"""The inflated size of every stream a PDF page draws, measured before PDFium parses the page.

PDFium inflates a page's content streams whole when it loads the page (up to its own cap of
1 GiB each), so a small PDF with one huge Flate stream can take a worker's memory. Here
the streams a page uses are decoded a piece at a time, counted and thrown away: its content,
the form XObjects, tiling patterns, shadings, Type 3 glyph procedures and annotation
appearances it draws (recursively), and the font files it embeds. The page is refused when
one of them inflates past ``max_pdf_stream_bytes``. Image XObjects are not inflated (PDFium
decodes the pixels the image's dictionary declares, no more) but their declared pixels are
checked before a page is rendered for OCR.

pikepdf (qpdf) reads the object graph because PDFium has no API for a stream's raw bytes.
Each object is checked once per document, a page at a time as the pages are read, and a
stream whose raw length times the worst ratio of its filters cannot reach the limit is not
decoded at all; bench/bench_hostile.py --corpus-cost measures what the check adds.

Not covered: inline images inside a content stream (their data is at most the content
stream's) and objects qpdf cannot read although PDFium can (then PDFium's own cap applies).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pikepdf

from .budgets import Deadline, image_too_large, pdf_stream_too_large

_PIECE = 1 << 18  # bytes inflated at a time

# qpdf keeps every object it has resolved for as long as the file is open. Reopening keeps a
# 2,000-page document from growing without bound at little cost (docs/measurements.md,
# "qpdf reopening"); objects already checked are not walked again after a reopen.
REOPEN_EVERY_PAGES = 50
# Each open lists every page again (qpdf's page cache), so a long document is reopened at most
# this many times: 40 reopens of a 2,000-page file made the check 20 times slower.
MAX_REOPENS = 8

# The most one input byte can become through each filter: deflate ~1032:1, LZW one 9-12 bit
# code for a string of up to 4,096 bytes, run-length 2 bytes for 128, ASCII85 "z" for 4.
_WORST_RATIO = {
    "/FlateDecode": 1032,
    "/Fl": 1032,
    "/LZWDecode": 4096,
    "/LZW": 4096,
    "/RunLengthDecode": 64,
    "/RL": 64,
    "/ASCII85Decode": 4,
    "/A85": 4,
    "/ASCIIHexDecode": 1,
    "/AHx": 1,
    "/Crypt": 1,
}
_ASCII = {"/ASCII85Decode", "/A85", "/ASCIIHexDecode", "/AHx"}
_RESOURCE_KINDS = {"/Font", "/XObject", "/Pattern", "/Shading", "/ExtGState"}
# Forms within forms deeper than this are not drawn by PDFium (its render recursion limit is
# 64), so they are not walked either: a chain of thousands would exhaust Python's stack.
_MAX_DEPTH = 64


class PageStreams:
    """Checks, page by page, the streams of one PDF. ``check_page`` before PDFium loads a
    page; ``check_images`` before a page is rendered."""

    def __init__(
        self,
        path: Path,
        *,
        password: str,
        max_stream_bytes: int,
        max_image_pixels: int,
        deadline: Deadline | None = None,
    ):
        self._path = path
        self._password = password
        self._max_bytes = max_stream_bytes
        self._max_pixels = max_image_pixels
        self._deadline = deadline
        self._pdf: pikepdf.Pdf | None = None
        self._opened = False
        self._pages_since_open = 0
        self._reopen_every = REOPEN_EVERY_PAGES
        self._page_objects: list = []
        self._checked: set[tuple[int, int]] = set()
        self._walked: set[tuple[int, int]] = set()
        self._images_checked: set[tuple[int, int]] = set()
        self._pages_checked: set[int] = set()
        self._pages_images_checked: set[int] = set()

    def close(self) -> None:
        """Free qpdf's memory; a later check opens the file again (pages already checked
        need no reopening)."""
        if self._pdf is not None:
            self._page_objects = []
            self._pdf.close()
            self._pdf = None
        self._opened = False

    def _page(self, index: int):
        if self._pdf is not None and self._pages_since_open >= self._reopen_every:
            self.close()  # qpdf keeps every object it has resolved while the file is open
        if not self._opened:
            self._opened = True
            self._pages_since_open = 0
            try:
                self._pdf = pikepdf.open(self._path, password=self._password)
                # The page dictionaries, listed once per open: each ``pages[index]`` and
                # ``len(pages)`` lists every page again in qpdf, which made checking every page
                # quadratic in the page count (docs/measurements.md, "qpdf reopening").
                self._page_objects = [page.obj for page in self._pdf.pages]
            except (pikepdf.PdfError, pikepdf.PasswordError, ValueError, RuntimeError, OSError):
                # PDFium opened it (it is asked first) and repairs more than qpdf does; the
                # pages qpdf cannot read are left to PDFium's own limits.
                self._pdf = None
                self._page_objects = []
            self._reopen_every = max(REOPEN_EVERY_PAGES, len(self._page_objects) // MAX_REOPENS)
        if self._pdf is None:
            return None
        self._pages_since_open += 1
        return self._page_objects[index] if index < len(self._page_objects) else None

    # --- inflated sizes -------------------------------------------------------------------------

    def check_page(self, index: int) -> None:
        if index in self._pages_checked:
            return
        page = self._page(index)
        if page is None:
            return
        walk = _Walk(self, index + 1)
        try:
            walk.holder(page, page_level=True)
        except (pikepdf.PdfError, ValueError, TypeError):
            return  # a damaged object: PDFium will report the page, or read around it
        self._pages_checked.add(index)

    def _check_stream(self, stream: pikepdf.Stream, page: int, what: str) -> None:
        if self._deadline is not None:
            self._deadline.check(page=page)
        filters = _filters(stream)
        bound = _raw_length(stream)
        for name in filters:
            bound *= _WORST_RATIO.get(name, 1)
            if name not in _WORST_RATIO:
                break  # an image codec: nothing after it is parsed as content
        if bound <= self._max_bytes:
            return
        total = 0
        for piece in _decoded(stream, filters):
            total += len(piece)
            if total > self._max_bytes:
                raise pdf_stream_too_large(page, what, total, self._max_bytes)

    # --- images, before rendering ----------------------------------------------------------------

    def check_images(self, index: int) -> None:
        if index in self._pages_images_checked:
            return
        page = self._page(index)
        if page is None:
            return
        try:
            self._images(page.get("/Resources"), index + 1, set())
        except (pikepdf.PdfError, ValueError, TypeError):
            return
        self._pages_images_checked.add(index)

    def _images(self, resources, page: int, seen: set) -> None:
        xobjects = _get(resources, "/XObject")
        if not isinstance(xobjects, pikepdf.Dictionary):
            return
        for _, xobject in xobjects.items():
            if not isinstance(xobject, pikepdf.Stream) or not _first_visit(xobject, seen):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == "/Form":
                self._images(xobject.get("/Resources"), page, seen)
            elif subtype == "/Image" and _first_visit(xobject, self._images_checked):
                width, height = _int(xobject.get("/Width")), _int(xobject.get("/Height"))
                if width * height > self._max_pixels:
                    where = f"Page {page} of this PDF holds an image that"
                    raise image_too_large(
                        width * height, self._max_pixels, size=(width, height), where=where
                    )


class _Walk:
    """The streams one page draws. Every indirect object is visited once per document: its
    streams were checked when the first page that uses it was (fonts and resources are
    shared by most pages), and a form that draws itself is a loop, which PDFium stops."""

    def __init__(self, owner: PageStreams, page: int):
        self.owner = owner
        self.page = page
        self.seen = owner._walked
        self.depth = 0

    def stream(self, obj, what: str) -> None:
        if isinstance(obj, pikepdf.Stream) and _first_visit(obj, self.owner._checked):
            self.owner._check_stream(obj, self.page, what)

    def holder(self, obj, *, page_level: bool = False) -> None:
        """A page, form XObject, tiling pattern, Type 3 font or appearance stream."""
        if not _first_visit(obj, self.seen) or self.depth >= _MAX_DEPTH:
            return
        self.depth += 1
        try:
            self._holder(obj, page_level)
        finally:
            self.depth -= 1

    def _holder(self, obj, page_level: bool) -> None:
        if page_level:
            contents = obj.get("/Contents")
            for part in contents if isinstance(contents, pikepdf.Array) else [contents]:
                self.stream(part, "content stream")
            for annotation in _list(obj.get("/Annots")):
                appearances = _get(annotation, "/AP")
                for key in ("/N", "/R", "/D"):
                    appearance = _get(appearances, key)
                    if isinstance(appearance, pikepdf.Stream):
                        self.stream(appearance, "annotation appearance")
                        self.holder(appearance)
                    elif isinstance(appearance, pikepdf.Dictionary):
                        for _, state in appearance.items():
                            self.stream(state, "annotation appearance")
                            if isinstance(state, pikepdf.Stream):
                                self.holder(state)
        self.resources(obj.get("/Resources"))

    def resources(self, resources) -> None:
        if not isinstance(resources, pikepdf.Dictionary) or not _first_visit(resources, self.seen):
            return
        # One pass over the keys present: each lookup through pikepdf costs microseconds,
        # and most resource dictionaries have two or three of the six kinds.
        for kind, entries in resources.items():
            if not isinstance(entries, pikepdf.Dictionary) or kind not in _RESOURCE_KINDS:
                continue
            for _, entry in entries.items():
                if kind == "/Font":
                    self.font(entry)
                elif kind == "/XObject":
                    if isinstance(entry, pikepdf.Stream) and entry.get("/Subtype") == "/Form":
                        self.stream(entry, "form")
                        self.holder(entry)
                elif kind == "/Pattern":
                    if isinstance(entry, pikepdf.Stream):
                        self.stream(entry, "pattern")
                        self.holder(entry)
                    self.stream(_get(entry, "/Shading"), "shading")
                elif kind == "/Shading":
                    self.stream(entry, "shading")
                elif kind == "/ExtGState":
                    group = _get(_get(entry, "/SMask"), "/G")
                    if isinstance(group, pikepdf.Stream):
                        self.stream(group, "soft mask")
                        self.holder(group)

    def font(self, font) -> None:
        if not isinstance(font, pikepdf.Dictionary) or not _first_visit(font, self.seen):
            return
        for _, glyph in _items(font, "/CharProcs"):
            self.stream(glyph, "Type 3 glyph")
        self.resources(font.get("/Resources"))
        descriptors = [_get(font, "/FontDescriptor")]
        descriptors += [_get(f, "/FontDescriptor") for f in _list(font.get("/DescendantFonts"))]
        for descriptor in descriptors:
            for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                self.stream(_get(descriptor, key), "embedded font")


# --- pikepdf helpers -----------------------------------------------------------------------------


def _first_visit(obj, seen: set) -> bool:
    key = obj.objgen
    if key == (0, 0):
        return True  # a direct object is nobody else's and cannot lead back to itself
    if key in seen:
        return False
    seen.add(key)
    return True


def _get(obj, key: str):
    return obj.get(key) if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream) else None


def _items(obj, key: str) -> Iterable:
    value = _get(obj, key)
    return value.items() if isinstance(value, pikepdf.Dictionary) else ()


def _list(value) -> list:
    return list(value) if isinstance(value, pikepdf.Array) else []


def _int(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if isinstance(value, pikepdf.Array):
        return [str(item) for item in value]
    return [str(value)] if value is not None else []


def _params(stream: pikepdf.Stream, position: int) -> dict:
    value = stream.get("/DecodeParms")
    if isinstance(value, pikepdf.Array):
        value = value[position] if position < len(value) else None
    return value if isinstance(value, pikepdf.Dictionary) else {}


def _raw_length(stream: pikepdf.Stream) -> int:
    # The stored bytes qpdf found, not /Length, which a damaged or hostile file gets wrong.
    return len(stream.read_raw_bytes())


# --- decoding in pieces --------------------------------------------------------------------------


def _decoded(stream: pikepdf.Stream, filters: list[str]) -> Iterator[bytes]:
    """The stream's data through its filters, a piece at a time, up to the first filter that
    is not one of the generic ones (an image codec)."""
    data = stream.read_raw_bytes()
    position = 0
    # ASCII armour comes first in practice; it only shrinks or keeps the size (bar A85's
    # "z"), so it is decoded whole from the raw bytes, which are in memory already.
    while position < len(filters) and filters[position] in _ASCII:
        data = _ascii(filters[position], data)
        position += 1
    pieces: Iterator[bytes] = _slices(data)
    for index in range(position, len(filters)):
        name = filters[index]
        if name in ("/FlateDecode", "/Fl"):
            pieces = _inflate(pieces)
        elif name in ("/LZWDecode", "/LZW"):
            early = _int(_params(stream, index).get("/EarlyChange", 1))
            pieces = _lzw(pieces, early_change=early)
        elif name in ("/RunLengthDecode", "/RL"):
            pieces = _run_length(pieces)
        elif name in _ASCII or name == "/Crypt":
            continue  # only shrinks what comes out of the filters before it
        else:
            break
    return pieces


def _slices(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(data), _PIECE):
        yield view[start : start + _PIECE]


def _ascii(name: str, data: bytes) -> bytes:
    try:
        if name in ("/ASCIIHexDecode", "/AHx"):
            digits = bytes(c for c in data.split(b">", 1)[0] if c not in b" \t\r\n\f\x00")
            return binascii.unhexlify(digits + b"0" * (len(digits) % 2))
        body = data.split(b"~>", 1)[0]
        return base64.a85decode(body.removeprefix(b"<~"), ignorechars=b" \t\r\n\f\x00")
    except (ValueError, binascii.Error):
        return b""  # not decodable: PDFium cannot read it either


def _inflate(pieces: Iterable[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    try:
        for piece in pieces:
            while piece:
                out = inflater.decompress(piece, _PIECE)
                piece = inflater.unconsumed_tail
                if out:
                    yield out
                if inflater.eof:
                    return
    except zlib.error:
        return  # damaged data ends the stream for PDFium too


def _run_length(pieces: Iterable[bytes]) -> Iterator[bytes]:
    pending = b""
    for piece in pieces:
        data = pending + piece
        out = bytearray()
        i = 0
        while i < len(data):
            length = data[i]
            if length == 128:  # end of data
                if out:
                    yield bytes(out)
                return
            if length < 128:
                if i + 1 + length + 1 > len(data):
                    break
                out += data[i + 1 : i + 2 + length]
                i += length + 2
            else:
                if i + 1 >= len(data):
                    break
                out += data[i + 1 : i + 2] * (257 - length)
                i += 2
            if len(out) >= _PIECE:
                yield bytes(out)
                out.clear()
        pending = data[i:]
        if out:
            yield bytes(out)


def _lzw(pieces: Iterable[bytes], *, early_change: int = 1) -> Iterator[bytes]:
    """LZW as PDF uses it (PDF 32000-1, 7.4.4): MSB-first codes of 9 to 12 bits, 256 clears
    the table, 257 ends the data."""
    table = [bytes([n]) for n in range(256)] + [b"", b""]
    width, previous = 9, None
    buffer = bits = 0
    out = bytearray()
    for piece in pieces:
        for byte in piece:
            buffer = (buffer << 8) | byte
            bits += 8
            while bits >= width:
                bits -= width
                code = (buffer >> bits) & ((1 << width) - 1)
                buffer &= (1 << bits) - 1
                if code == 256:
                    table, width, previous = table[:258], 9, None
                    continue
                if code == 257:
                    if out:
                        yield bytes(out)
                    return
                if code < len(table):
                    entry = table[code]
                elif previous is not None and code == len(table):
                    entry = previous + previous[:1]
                else:
                    return  # damaged
                out += entry
                if previous is not None and len(table) < 4096:
                    table.append(previous + entry[:1])
                previous = entry
                if len(table) + early_change >= (1 << width) and width < 12:
                    width += 1
                if len(out) >= _PIECE:
                    yield bytes(out)
                    out.clear()
    if out:
        yield bytes(out)
