"""The ruling lines of a PDF page, read from PDFium's path objects, in the shape pdfplumber's
table finder takes (its "edges").

pdfplumber finds a page's edges by parsing the whole page again with pdfminer: every
character of every text run, to keep the few lines and boxes the table finder needs. On the
corpus' table pages that parse was 95 % of the time tables cost (0.3-1 s a page against a few
ms for PDFium's text; docs/quality-and-tables.md). PDFium already holds the page's paths, so
their segments are read here, turned into page coordinates, and handed to pdfplumber's
``TableFinder`` as the page's edges: the table finding itself is pdfplumber's, unchanged.

What pdfminer makes of a path, and so what this reproduces: each straight segment of a
painted path is an edge (a rectangle's four sides, a polyline's pieces, the closing segment
of a closed subpath); only horizontal and vertical ones can bound a cell. Bézier segments
(rounded corners) are left out: pdfplumber keeps only their axis-aligned pieces, which a
table's rules never are. Paths inside form XObjects are read too, with the form's matrix,
as pdfminer descends into forms.
"""

from __future__ import annotations

import ctypes

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# Coordinates closer than this (points) count as equal: PDFium returns floats that a
# matrix has turned, and pdfminer's exact comparison works on values it did not transform.
_FLAT = 0.01
# Forms nested deeper than this are not read (a form drawing itself).
_MAX_FORM_DEPTH = 8

_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def page_edges(page: pdfium.PdfPage, height: float, min_length: float) -> list[dict]:
    """Every horizontal and vertical edge drawn on ``page`` at least ``min_length`` long, as
    pdfplumber edge dicts in its coordinates (points from the top-left corner of a media box
    of ``height`` points that starts at 0,0: the caller checks that). The table finder drops
    shorter edges before anything else (its ``edge_min_length_prefilter``), so they need not
    be made: a rule drawn as a thin filled rectangle has two such sides, two edges in three
    on a page of a standard's tables."""
    edges = _Edges(height, min_length)
    raw = page.raw
    objects = (
        pdfium_c.FPDFPage_GetObject(raw, i) for i in range(pdfium_c.FPDFPage_CountObjects(raw))
    )
    _walk(objects, _IDENTITY, edges, depth=0)
    return edges.found


def _walk(objects, parent: _Matrix, edges: _Edges, depth: int) -> None:
    matrix = pdfium_c.FS_MATRIX()
    for obj in objects:
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind not in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_FORM):
            continue
        if not pdfium_c.FPDFPageObj_GetMatrix(obj, matrix):
            continue
        own = _compose(
            (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f),
            parent,
        )
        if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
            _path_edges(obj, own, edges)
        elif depth < _MAX_FORM_DEPTH:
            count = pdfium_c.FPDFFormObj_CountObjects(obj)
            children = (pdfium_c.FPDFFormObj_GetObject(obj, i) for i in range(max(count, 0)))
            _walk(children, own, edges, depth + 1)


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    """The matrix of ``inner`` followed by ``outer`` (PDF row-vector convention)."""
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (
        a * A + b * C,
        a * B + b * D,
        c * A + d * C,
        c * B + d * D,
        e * A + f * C + E,
        e * B + f * D + F,
    )


def _path_edges(path, m: _Matrix, edges: _Edges) -> None:
    x, y = ctypes.c_float(), ctypes.c_float()
    start = current = None
    for index in range(pdfium_c.FPDFPath_CountSegments(path)):
        segment = pdfium_c.FPDFPath_GetPathSegment(path, index)
        if not pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
            continue
        point = (
            m[0] * x.value + m[2] * y.value + m[4],
            m[1] * x.value + m[3] * y.value + m[5],
        )
        kind = pdfium_c.FPDFPathSegment_GetType(segment)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO or current is None:
            start = current = point
            continue
        if kind == pdfium_c.FPDF_SEGMENT_LINETO:
            edges.add(current, point)
        current = point
        if pdfium_c.FPDFPathSegment_GetClose(segment):
            edges.add(current, start)
            current = start


class _Edges:
    """The edges of one page, in pdfplumber's coordinates, as they are found."""

    def __init__(self, height: float, min_length: float):
        self.height = height
        self.min_length = min_length
        self.found: list[dict] = []

    def add(self, p0, p1) -> None:
        (x0, y0), (x1, y1) = p0, p1
        left, right = min(x0, x1), max(x0, x1)
        top, bottom = self.height - max(y0, y1), self.height - min(y0, y1)
        if abs(y0 - y1) <= _FLAT:
            orientation, bottom = "h", top
            length = right - left
        elif abs(x0 - x1) <= _FLAT:
            orientation, right = "v", left
            length = bottom - top
        else:
            return
        if length < self.min_length:
            return
        self.found.append(
            {
                "object_type": "line",
                "orientation": orientation,
                "x0": left,
                "x1": right,
                "top": top,
                "bottom": bottom,
                "doctop": top,
                "width": right - left,
                "height": bottom - top,
            }
        )
