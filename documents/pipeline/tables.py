"""Tables on PDF pages, kept whole: each table becomes Markdown rows in the page's text, one
row a line under its header, so the chunker can keep a row with its header.

Finding them costs two steps, and text-only pages pay for the first alone:

1. ``looks_like_table``: the page's objects as PDFium already holds them. A ruled table is
   drawn as thin horizontal and vertical paths (or one path of many line segments), a
   shaded one as a column of equal boxes; a page of text has few paths or none. Walking the
   object list is a few ctypes calls per object, no parsing (cost per page in
   docs/quality-and-tables.md).
2. pdfplumber's table finder (the lines strategy: cells from the ruling lines) on those
   pages only, given the page's ruling lines as PDFium reads them (pdf_edges.py).
   pdfplumber's own way to them is to parse the whole page again with pdfminer, every
   character included, hundreds of times slower than PDFium's text.

A page with no ruled table whose text objects line up in columns is tried for a table
without rules instead (aligned_tables.py, the same two steps on the text objects and words).

pdfplumber gives the cells' boxes; their text is read with PDFium from the same boxes, so a
cell reads like the rest of the page (pdfplumber spaced the digits of ca-warn-report.pdf's
dates apart: "0 3 / 2 5 / 2 0 16"). The page text is then: the text above each table, the
table, the text beside it, the text below, in reading order from the top.

A table continued from the previous page (the previous page's last table reaching its foot,
the same number of columns, first on the page under at most a running head, a first row
unlike that header) gets that header again, so its rows are not read as a new table whose
header is a row of data.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from .aligned_tables import find_aligned_tables, looks_aligned
from .pdf_edges import page_edges

# Rules and boxes, in PDF points (1/72 inch). A rule is at most _THIN thick and at least
# _MIN_RULE long. A table's rules line up: its horizontal rules share their left and right
# ends (a row's top and bottom borders, a booktabs table's three rules), its vertical rules
# their top and bottom ends within a row. A page needs _MIN_H_RULES horizontal rules of one
# extent (a table of two rows has three), or _MIN_V_RULES vertical rules of one extent beside
# two horizontal ones, or _MIN_ALIGNED_BOXES boxes of one left edge, width and height stacked
# (shaded rows, bordered cells). Underlined links, fraction bars, a running head's rule and
# the axes of a chart do not line up like that (docs/quality-and-tables.md); pdfplumber
# makes the final call on the pages that pass.
_THIN = 2.5
_MIN_RULE = 8.0
_MIN_H_RULES = 3
_MIN_V_RULES = 3
_MIN_ALIGNED_BOXES = 4
_SNAP = 2.0  # points: ends this close count as the same

# A table continued overleaf may sit under the page's running head (a report's title and
# page number: issue-67-example.pdf); more text than this above it and it is a new table.
_RUNNING_HEAD_CHARS = 120

_PIPE = re.compile(r"\|")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]")


@dataclass(frozen=True)
class TableStats:
    """What the cheap check saw: the largest group of horizontal rules with the same
    extent, of vertical rules with the same extent, and of equal boxes in a column."""

    horizontal: int
    vertical: int
    aligned_boxes: int

    @property
    def table(self) -> bool:
        return (
            self.horizontal >= _MIN_H_RULES
            or (self.vertical >= _MIN_V_RULES and self.horizontal >= 2)
            or self.aligned_boxes >= _MIN_ALIGNED_BOXES
        )


def page_objects_stats(page: pdfium.PdfPage) -> TableStats:
    """Group the page's path objects into rules and boxes by their bounds (top level only:
    tables inside form XObjects are not seen, nor a grid drawn as one path, a cost the check
    accepts for its speed: two ctypes calls per object, four per path)."""
    raw = page.raw
    get_object, get_type = pdfium_c.FPDFPage_GetObject, pdfium_c.FPDFPageObj_GetType
    get_bounds, path = pdfium_c.FPDFPageObj_GetBounds, pdfium_c.FPDF_PAGEOBJ_PATH
    horizontal: dict[tuple[int, int], int] = {}
    vertical: dict[tuple[int, int], int] = {}
    boxes: dict[tuple[int, int, int], int] = {}
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    for index in range(pdfium_c.FPDFPage_CountObjects(raw)):
        obj = get_object(raw, index)
        if get_type(obj) != path or not get_bounds(obj, left, bottom, right, top):
            continue
        width, height = right.value - left.value, top.value - bottom.value
        if height <= _THIN and width >= _MIN_RULE:
            _add(horizontal, (_snap(left.value), _snap(right.value)))
        elif width <= _THIN and height >= _MIN_RULE:
            _add(vertical, (_snap(bottom.value), _snap(top.value)))
        elif width >= _MIN_RULE and height >= _THIN:
            _add(boxes, (_snap(left.value), _snap(width), _snap(height)))
    return TableStats(_largest(horizontal), _largest(vertical), _largest(boxes))


def _snap(value: float) -> int:
    return round(value / _SNAP)


def _add(groups: dict, key) -> None:
    groups[key] = groups.get(key, 0) + 1


def _largest(groups: dict) -> int:
    return max(groups.values(), default=0)


def looks_like_table(page: pdfium.PdfPage) -> bool:
    return page_objects_stats(page).table


@dataclass(frozen=True)
class _EdgesPage:
    """What pdfplumber's ``TableFinder`` reads of a page with the lines strategy: its edges
    and its box (``Table.rows`` needs nothing else; ``Table.extract``, which would read
    pdfplumber's characters, is never called)."""

    edges: list[dict]
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class _Table:
    top: float  # pdfplumber coordinates: points from the page's top-left corner
    bottom: float
    x0: float
    x1: float
    rows: list[list[str]]


class TableReader:
    """Finds the tables of one PDF's pages with pdfplumber's table finder, fed with the
    ruling lines PDFium reads from the page (pdf_edges.py) instead of pdfminer's parse of
    the whole page, which cost 95 % of the time tables took (docs/quality-and-tables.md).
    Pages must be asked for in increasing order (a table continued overleaf gets its header
    again)."""

    def __init__(self):
        self._last_header: list[str] | None = None  # of the last table of the previous page

    def page_text(
        self, page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, index: int, text: str
    ) -> str:
        """``text`` (the page's text layer, read from ``textpage``), or the page read again
        from ``textpage`` with its tables as Markdown rows when it has any."""
        previous_header, self._last_header = self._last_header, None
        ruled = looks_like_table(page)
        if not ruled and not looks_aligned(page):
            return text
        # pdfplumber's coordinates start at the top-left of the (unrotated) media box; a
        # rotated page or one whose box does not start at 0,0 would need them converted, and
        # is rare enough to keep its plain text.
        if page.get_rotation() or tuple(page.get_mediabox()[:2]) != (0.0, 0.0):
            return text
        tables = self._find_tables(page, textpage) if ruled else []
        # a page with rules that make no table may still hold one without (checked only then)
        if not tables and (not ruled or looks_aligned(page)):
            tables = self._find_aligned_tables(page, textpage)
        if not tables:
            return text
        return self._compose(page, textpage, tables, previous_header)

    def close(self) -> None:
        """Nothing is held between pages."""

    def _find_tables(self, page: pdfium.PdfPage, textpage: pdfium.PdfTextPage) -> list[_Table]:
        x0, y0, x1, y1 = page.get_mediabox()
        height = y1 - y0
        finder = find_ruled_tables(page, (x0, 0.0, x1, height))
        found = [(table.bbox, [list(row.cells) for row in table.rows]) for table in finder.tables]
        tables = [_read_table(textpage, bbox, rows, height) for bbox, rows in found]
        return sorted((t for t in tables if t is not None), key=lambda t: t.top)

    def _find_aligned_tables(
        self, page: pdfium.PdfPage, textpage: pdfium.PdfTextPage
    ) -> list[_Table]:
        found = find_aligned_tables(page, textpage, page.get_height())
        tables = []
        for table in found:
            x0, top, x1, bottom = table.bbox
            rows = [[_PIPE.sub(r"\|", cell) for cell in row] for row in table.rows]
            tables.append(_Table(top=top, bottom=bottom, x0=x0, x1=x1, rows=rows))
        return sorted(tables, key=lambda t: t.top)

    def _compose(
        self,
        page: pdfium.PdfPage,
        textpage: pdfium.PdfTextPage,
        tables: list[_Table],
        previous_header: list[str] | None,
    ) -> str:
        width, height = page.get_size()
        parts: list[str] = []
        cursor = 0.0  # pdfplumber "top" reached so far
        for number, table in enumerate(tables):
            parts.append(_bounded(textpage, 0, cursor, width, table.top, height))
            continuing = None
            above = "".join(parts).strip()
            if number == 0 and previous_header and len(above) <= _RUNNING_HEAD_CHARS:
                continuing = previous_header
            parts.append(_markdown(table.rows, continuing))
            # text beside the table, left then right of it
            parts.append(_bounded(textpage, 0, table.top, table.x0, table.bottom, height))
            parts.append(_bounded(textpage, table.x1, table.top, width, table.bottom, height))
            cursor = max(cursor, table.bottom)
            self._last_header = continuing or _header(table.rows)
        parts.append(_bounded(textpage, 0, cursor, width, height, height))
        if len(tables) and self._last_header and tables[-1].bottom < height * 0.75:
            # the last table ends well above the page's foot: nothing continues overleaf
            self._last_header = None
        return "\n".join(part for part in parts if part.strip())


def find_ruled_tables(page: pdfium.PdfPage, bbox: tuple[float, float, float, float]):
    """pdfplumber's table finder on ``page``'s ruling lines, as PDFium reads them, within
    ``bbox`` (pdfplumber's coordinates, the caller's media box). The lines strategy on both
    axes (pdfplumber's default): cells from ruling lines alone. The text strategy needs the
    page's words, read only for pages whose text lines up (aligned_tables.py)."""
    from pdfplumber.table import TableSettings

    from .table_cells import FastTableFinder

    min_length = TableSettings().edge_min_length_prefilter
    return FastTableFinder(_EdgesPage(page_edges(page, bbox[3], min_length), bbox))


def _read_table(
    textpage: pdfium.PdfTextPage, bbox, cell_rows: list[list], height: float
) -> _Table | None:
    rows = []
    for cells in cell_rows:
        texts = [_cell_text(textpage, cell, height) if cell else "" for cell in cells]
        if any(texts):
            rows.append(texts)
    # at least a header and a row, two columns in use: anything less is a box of text
    columns_used = sum(any(row[c] for row in rows) for c in range(len(rows[0]))) if rows else 0
    if len(rows) < 2 or columns_used < 2:
        return None
    x0, top, x1, bottom = bbox
    return _Table(top=top, bottom=bottom, x0=x0, x1=x1, rows=rows)


def _cell_text(textpage: pdfium.PdfTextPage, bbox, height: float) -> str:
    x0, top, x1, bottom = bbox
    text = textpage.get_text_bounded(x0, height - bottom, x1, height - top)
    return _PIPE.sub(r"\|", " ".join(_clean(text).split()))


def _bounded(textpage, x0: float, top: float, x1: float, bottom: float, height: float) -> str:
    if x1 - x0 < 1 or bottom - top < 1:
        return ""
    return _clean(textpage.get_text_bounded(x0, height - bottom, x1, height - top)).strip()


def _clean(text: str) -> str:
    # as extract._clean (which imports this module): PDFium's line ends, its hyphenation
    # mark (removing it joins the word back), stray C0 controls from symbol fonts
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _header(rows: list[list[str]]) -> list[str]:
    return _split_title(rows)[1][0]


def _split_title(rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Leading rows with a single filled cell are a title spanning the table, not its
    header: they are kept as plain lines above it."""
    titles = []
    while len(rows) > 2 and sum(bool(c) for c in rows[0]) == 1:
        titles.append(next(c for c in rows[0] if c))
        rows = rows[1:]
    return titles, rows


def _markdown(rows: list[list[str]], continuing: list[str] | None) -> str:
    titles, rows = _split_title(rows)
    if continuing is not None and len(continuing) == len(rows[0]) and rows[0] != continuing:
        header, body = continuing, rows
    else:
        header, body = rows[0], rows[1:]
    lines = [*titles, _row(header), "| " + " | ".join("---" for _ in header) + " |"]
    lines += [_row(row) for row in body]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# --- Markdown tables in a page's text, for the chunker ------------------------------------------

_SEPARATOR_LINE = re.compile(r"\|(?:[ \t]*:?-{3,}:?[ \t]*\|)+")


@dataclass(frozen=True)
class MarkdownTable:
    """A Markdown table found in a text: its header (the header line and the separator line
    under it) and each row, as (start, end) offsets of the text without surrounding blanks."""

    header: tuple[int, int]
    rows: tuple[tuple[int, int], ...]

    @property
    def end(self) -> int:
        return self.rows[-1][1] if self.rows else self.header[1]


def markdown_tables(text: str) -> list[MarkdownTable]:
    """The tables this module and docx_text write: a line "| a | b |", then a separator line
    "| --- | --- |", then zero or more "| ... |" lines. Without the separator line a line of
    pipes is text, so prose that happens to start and end with "|" is left alone."""
    if "|" not in text or "---" not in text:
        return []
    lines = []  # (start, end) of each line without its surrounding blanks
    pos = 0
    for line in text.split("\n"):
        stripped = line.strip()
        lead = len(line) - len(line.lstrip())
        lines.append((pos + lead, pos + lead + len(stripped)))
        pos += len(line) + 1
    tables = []
    i = 0
    while i < len(lines) - 1:
        start, end = lines[i]
        sep_start, sep_end = lines[i + 1]
        if _is_row(text, start, end) and _SEPARATOR_LINE.fullmatch(text, sep_start, sep_end):
            rows = []
            j = i + 2
            while j < len(lines) and _is_row(text, *lines[j]):
                rows.append(lines[j])
                j += 1
            tables.append(MarkdownTable(header=(start, sep_end), rows=tuple(rows)))
            i = j
        else:
            i += 1
    return tables


def _is_row(text: str, start: int, end: int) -> bool:
    return end - start >= 2 and text[start] == "|" and text[end - 1] == "|"
