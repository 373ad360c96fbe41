"""Which pages of a PDF have a text layer, judged from the page objects alone -- the
resources each page names, never its text -- so it can run inside the upload request.

A page with no content stream and no annotation is blank paper. Otherwise, a page whose
resources (its own, those it inherits from the page tree, and those of the form XObjects it
names) hold a font is a text page: text is drawn with a font, and nothing else needs one. A
page with no font but with an image, an annotation or a content stream that paints
something is a page OCR will read; one with none of these is blank too. This is
what the extractor finds in most files, not all: a page can name a font it never uses, or
draw only a page number the extractor judges too short and reads with OCR;
bench/bench_preflight.py measures how often on the corpus (README, "The preflight estimate
against what processing found").

qpdf (pikepdf) resolves objects only when asked, so the cost is the objects read: a few per
page, since pages usually share their resources, which are read once. Every object read
counts against ``max_objects``, and a page tree that leads back to itself, is nested too
deep, or is anything but what the specification says, makes the whole answer ``None``: the
caller then falls back to the page count alone. Nothing here raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pikepdf

# Bounds the work for a hostile or merely huge file, whatever it holds. Real documents read
# a few objects per page, since their pages share resources (``objects_read``; the README
# gives the corpus' figures), so most of the 2,000 pages the extractor accepts fit within it.
MAX_OBJECTS = 8000
# Real page trees are a few levels deep (writers build balanced trees); a deeper one is a
# chain made to exhaust a reader's stack.
MAX_TREE_DEPTH = 32
# Form XObjects inside form XObjects: real files nest one or two; the object budget bounds
# the rest, this keeps a form that names itself from being walked more than a few times.
MAX_FORM_DEPTH = 4
# A content stream at least this long (stored bytes) is taken to paint something; a shorter
# one is decoded and its operators looked at, since a blank page often carries a few bytes
# such as "q Q" or an empty compressed stream.
_SURELY_PAINTS_BYTES = 128
# A page drawn in more content streams than this is taken to paint something without
# reading them (writers split a page's content in a handful).
_MANY_CONTENT_PARTS = 16
# The operators that put marks on the page: fill, stroke, image or form, text, shading,
# inline image.
_PAINTING = {
    b"f",
    b"F",
    b"f*",
    b"S",
    b"s",
    b"B",
    b"B*",
    b"b",
    b"b*",
    b"Do",
    b"Tj",
    b"TJ",
    b"'",
    b'"',
    b"sh",
    b"BI",
}
_TOKENS = re.compile(rb"[^\s\[\]()<>/{}%]+")


@dataclass(frozen=True)
class PdfStructure:
    pages: int
    text_pages: int
    ocr_pages: int
    blank_pages: int
    # image XObjects named by each page's resources (and by its forms' on a page without a
    # font of its own), summed over the pages
    images: int
    objects_read: int


class _Unreadable(Exception):
    """The file is not what the walk can judge: the caller falls back to the page count."""


def read_pdf_structure(
    source, *, password: str = "", max_pages: int = 2000, max_objects: int = MAX_OBJECTS
) -> PdfStructure | None:
    """The pages of ``source`` (a path or a seekable binary file) by kind, or ``None`` when
    the file cannot be judged from its structure within ``max_objects`` objects and
    ``max_pages`` pages."""
    try:
        with pikepdf.open(source, password=password) as pdf:
            return _Walk(max_pages=max_pages, max_objects=max_objects).document(pdf)
    # qpdf reports a damaged file through many exception types (PdfError, PasswordError,
    # ValueError, RuntimeError, TypeError from a wrong object type...); whichever it is, the
    # answer is the same fallback, and an estimate must never be why an upload fails.
    except Exception:  # noqa: BLE001
        return None


class _Walk:
    def __init__(self, *, max_pages: int, max_objects: int):
        self.max_pages = max_pages
        self.max_objects = max_objects
        self.objects = 0
        # (has a font, images) of each indirect resources dictionary or form already read
        self.resources_seen: dict[tuple[int, int], tuple[bool, int]] = {}
        self.forms_seen: dict[tuple[int, int], tuple[bool, int]] = {}
        # whether each indirect content stream already looked at paints
        self.contents_seen: dict[tuple[int, int], bool] = {}

    def read(self, count: int = 1) -> None:
        self.objects += count
        if self.objects > self.max_objects:
            raise _Unreadable("over the object budget")

    def document(self, pdf: pikepdf.Pdf) -> PdfStructure:
        root = pdf.Root.get("/Pages")
        kinds = {"text": 0, "ocr": 0, "blank": 0}
        images = 0
        nodes_seen: set[tuple[int, int]] = set()
        # depth-first, left to right, without recursion: a page tree can be made deep enough
        # to exhaust Python's stack before MAX_TREE_DEPTH is checked
        stack = [(root, None, 0)]
        while stack:
            node, inherited, depth = stack.pop()
            if not isinstance(node, pikepdf.Dictionary) or depth > MAX_TREE_DEPTH:
                raise _Unreadable("not a page tree")
            key = node.objgen
            if key != (0, 0):
                if key in nodes_seen:
                    raise _Unreadable("the page tree leads back to itself")
                nodes_seen.add(key)
            self.read()
            resources = node.get("/Resources", inherited)
            kids = node.get("/Kids")
            if node.get("/Type") == "/Page" or kids is None:
                if sum(kinds.values()) >= self.max_pages:
                    raise _Unreadable("over the page cap")
                kind, page_images = self.page(node, resources)
                kinds[kind] += 1
                images += page_images
                continue
            if not isinstance(kids, pikepdf.Array) or len(kids) > self.max_pages:
                # (more kids than pages allowed: listing them alone would take a second)
                raise _Unreadable("a page tree node without a usable array of kids")
            self.read(len(kids) // 64)  # a long /Kids array is itself work
            stack.extend((kid, resources, depth + 1) for kid in reversed(list(kids)))
        return PdfStructure(
            pages=sum(kinds.values()),
            text_pages=kinds["text"],
            ocr_pages=kinds["ocr"],
            blank_pages=kinds["blank"],
            images=images,
            objects_read=self.objects,
        )

    def page(self, page, resources) -> tuple[str, int]:
        annotated = _non_empty(page.get("/Annots"))
        if not annotated and not _non_empty(page.get("/Contents")):
            # Nothing is drawn, whatever the resources offer (page trees often give every
            # page the same fonts): blank paper, as PDFium finds it.
            return "blank", 0
        has_font, images = self.resources(resources, depth=0)
        if has_font:
            return "text", images
        if images or annotated or self.paints(page):
            return "ocr", images
        return "blank", 0

    def resources(self, resources, *, depth: int) -> tuple[bool, int]:
        if not isinstance(resources, pikepdf.Dictionary):
            return False, 0
        key = resources.objgen
        if key != (0, 0) and key in self.resources_seen:
            return self.resources_seen[key]
        self.read()
        fonts = resources.get("/Font")
        has_font = isinstance(fonts, pikepdf.Dictionary) and len(fonts) > 0
        images = 0
        xobjects = resources.get("/XObject")
        if isinstance(xobjects, pikepdf.Dictionary):
            for _, xobject in xobjects.items():
                self.read()
                if not isinstance(xobject, pikepdf.Stream):
                    continue
                subtype = xobject.get("/Subtype")
                if subtype == "/Image":
                    images += 1
                # A page with a font is a text page whatever its forms hold: they are only
                # followed to find one (most of the walk's cost on pages built of forms).
                elif subtype == "/Form" and not has_font and depth < MAX_FORM_DEPTH:
                    form_font, form_images = self.form(xobject, depth=depth + 1)
                    has_font = has_font or form_font
                    images += form_images
        if key != (0, 0):
            self.resources_seen[key] = (has_font, images)
        return has_font, images

    def form(self, form, *, depth: int) -> tuple[bool, int]:
        key = form.objgen
        if key in self.forms_seen:
            return self.forms_seen[key]
        # Marked before it is read: a form that names itself counts once, as nothing.
        self.forms_seen[key] = (False, 0)
        found = self.resources(form.get("/Resources"), depth=depth)
        self.forms_seen[key] = found
        return found

    def paints(self, page) -> bool:
        """Whether the content stream of a page without fonts, images or annotations puts
        anything on paper."""
        contents = page.get("/Contents")
        if isinstance(contents, pikepdf.Array) and len(contents) > _MANY_CONTENT_PARTS:
            return True
        parts = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        for part in parts:
            if not isinstance(part, pikepdf.Stream):
                continue
            key = part.objgen
            if key not in self.contents_seen:
                self.contents_seen[key] = self.stream_paints(part)
            if self.contents_seen[key]:
                return True
        return False

    def stream_paints(self, part) -> bool:
        self.read()
        try:
            # The stored bytes, not /Length, which a damaged or hostile file gets wrong;
            # decoded only when short and through at most one Flate filter, so a few
            # bytes cannot inflate to more than about a hundred kilobytes.
            if len(part.read_raw_bytes()) >= _SURELY_PAINTS_BYTES:
                return True
            if part.get("/Filter") not in (None, "/FlateDecode"):
                return True
            return bool(_PAINTING.intersection(_TOKENS.findall(part.read_bytes())))
        except pikepdf.PdfError:
            return True  # a stream qpdf cannot decode may still draw for PDFium


def _non_empty(value) -> bool:
    """A stream, or an array with something in it (a page's /Contents or /Annots)."""
    if isinstance(value, pikepdf.Array):
        return len(value) > 0
    return isinstance(value, pikepdf.Stream)
