"""Tables without rules: columns of text lined up on a page, found and cut into cells.

Two steps, as for ruled tables (tables.py), so that pages of prose pay for the first alone:

1. ``looks_aligned``: the bounds of the page's text objects, as PDFium already holds them.
   Objects are grouped into lines by their vertical middle and, within a line, into runs
   that sit closer than an em apart. A table has lines of three runs or more whose left or
   right ends recur at the same place down the page, nearly every run at such an edge, and
   short runs. Some pages of prose pass too (an index beside numbered lines, a contents
   page), which is what the second step is for.
2. pdfplumber's table finder with its text strategy (columns where word ends line up, rows
   from the words' lines), given the page's words as PDFium reads them. The strategy cuts a
   page of prose into a grid just as readily, so a table it finds is kept only when it reads
   like one: no more than ``MAX_WORDS_CROSSING`` of the words inside it straddle a column
   boundary (in prose the columns run through words; in a table they run between them), at
   least three rows and three columns in use, short cells, and half of the cells filled.
   Lines that only line up with the table are trimmed from its top and bottom, and columns
   split at a mere space joined back, before judging.
   The thresholds and what they keep and reject on the corpus are in
   docs/quality-and-tables.md ("Tables without rules").
"""

from __future__ import annotations

import ctypes
import statistics
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# Step 1: runs of a line closer than this many of their own heights are one run; a run end
# counts as aligned when this many lines of three runs or more share it (within _EDGE_SNAP
# points); a page needs _MIN_ALIGNED_EDGES such ends in _MIN_MULTI_RUN_LINES such lines.
_RUN_GAP_EMS = 1.0
_LINE_SNAP = 3.0
_EDGE_SNAP = 4.0
_MIN_LINES_PER_EDGE = 3
_MIN_ALIGNED_EDGES = 3
_MIN_MULTI_RUN_LINES = 3
# ...and in a table nearly every run starts or ends at a column's edge; formulas and
# captions beside figures line up by chance, a run here and there.
_MIN_ALIGNED_RUNS = 0.8
# ...and its runs are short: the median run, in ems of its own height, no longer than about
# three words (step 2's longest median cell), where columns of prose run far longer.
_MAX_RUN_EMS = 9.0

# Step 2: what a table found by the text strategy must look like to be kept.
MAX_WORDS_CROSSING = 0.10
_MIN_ROWS = 3
_MIN_COLUMNS = 3
_MIN_FILLED = 0.45
_MAX_MEDIAN_WORDS = 3
_LONG_CELL_WORDS = 6
_MAX_LONG_CELLS = 0.10
# A cell ending in a comma or a hyphen goes on in the next row: wrapped text (an index's
# entries), not a cell.
_MAX_CONTINUED_CELLS = 0.05

# Characters are joined into words as pdfplumber does by default, in points.
_WORD_X_TOLERANCE = 1.5
_WORD_Y_TOLERANCE = 3.0

# Two columns the text strategy found are one where the words on either side are a space
# apart (about a third of an em) rather than a gutter.
_MERGE_GAP_EMS = 0.6


@dataclass(frozen=True)
class AlignedTable:
    """A table's box (pdfplumber coordinates: points from the page's top-left corner) and the
    text of its cells, row by row, without its empty rows."""

    bbox: tuple[float, float, float, float]
    rows: list[list[str]]


def looks_aligned(page: pdfium.PdfPage) -> bool:
    """Whether the page's text objects line up in three or more columns (step 1)."""
    objects: list[tuple[float, float, float, float]] = []
    raw = page.raw
    get_object, get_type = pdfium_c.FPDFPage_GetObject, pdfium_c.FPDFPageObj_GetType
    get_bounds, text = pdfium_c.FPDFPageObj_GetBounds, pdfium_c.FPDF_PAGEOBJ_TEXT
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    for index in range(pdfium_c.FPDFPage_CountObjects(raw)):
        obj = get_object(raw, index)
        if get_type(obj) != text or not get_bounds(obj, left, bottom, right, top):
            continue
        height = top.value - bottom.value
        if height > 0 and right.value > left.value:
            middle = (top.value + bottom.value) / 2
            objects.append((middle, left.value, right.value, height))
    multi_run_lines = [runs for runs in map(_runs, _lines(objects)) if len(runs) >= 3]
    ends: Counter = Counter(
        edge for runs in multi_run_lines for run in runs for edge in _run_ends(run)
    )
    aligned = {edge for edge, count in ends.items() if count >= _MIN_LINES_PER_EDGE}
    runs = [run for line in multi_run_lines for run in line]
    aligned_runs = sum(1 for run in runs if aligned.intersection(_run_ends(run)))
    return (
        len(multi_run_lines) >= _MIN_MULTI_RUN_LINES
        and len(aligned) >= _MIN_ALIGNED_EDGES
        and aligned_runs >= _MIN_ALIGNED_RUNS * len(runs)
        and statistics.median((right - left) / height for left, right, height in runs)
        <= _MAX_RUN_EMS
    )


def _run_ends(run: tuple[float, float, float]) -> tuple[tuple[str, int], tuple[str, int]]:
    return ("l", round(run[0] / _EDGE_SNAP)), ("r", round(run[1] / _EDGE_SNAP))


def _lines(objects: list[tuple[float, float, float, float]]):
    """The objects grouped into lines: sorted by their vertical middle, a line goes on while
    the middles stay within _LINE_SNAP of its first (glyph bounds differ by a point or two
    between "Region" and "1001" on the same baseline)."""
    line: list[tuple[float, float, float]] = []
    first = None
    for middle, left, right, height in sorted(objects):
        if first is not None and middle - first > _LINE_SNAP:
            yield line
            line, first = [], None
        if first is None:
            first = middle
        line.append((left, right, height))
    if line:
        yield line


def _runs(objects: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """(left, right, height) of each run of the line's objects."""
    runs: list[list[float]] = []
    for left, right, height in sorted(objects):
        if runs and left - runs[-1][1] < _RUN_GAP_EMS * height:
            runs[-1][1] = max(runs[-1][1], right)
            runs[-1][2] = max(runs[-1][2], height)
        else:
            runs.append([left, right, height])
    return [(a, b, h) for a, b, h in runs]


def find_aligned_tables(
    page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, height: float
) -> list[AlignedTable]:
    """The tables pdfplumber's text strategy finds among the page's words that read like
    tables (step 2). ``height``: of the page's media box, which starts at 0,0."""
    from pdfplumber.utils.text import WordExtractor

    from .table_cells import FastTableFinder

    width = page.get_width()
    words = WordExtractor(
        x_tolerance=_WORD_X_TOLERANCE, y_tolerance=_WORD_Y_TOLERANCE
    ).extract_words(_characters(textpage, height))
    if not words:
        return []
    finder = FastTableFinder(
        _WordsPage(words, (0.0, 0.0, width, height)),
        {"vertical_strategy": "text", "horizontal_strategy": "text"},
    )
    found = []
    for table in finder.tables:
        bbox = table.bbox  # a property that pdfplumber computes again on every read
        cells = [list(row.cells) for row in table.rows]
        inside = [w for w in words if _within(w, bbox)]
        inner = _inner_boundaries(bbox, cells)
        crossing = [w for w in inside if _crosses(w, inner)]
        if not inside or len(crossing) > MAX_WORDS_CROSSING * len(inside):
            continue
        grid = _trim(_merge_close_columns(_trim(_cell_words(cells, inside), crossing)))
        rows = [[" ".join(w["text"] for w in cell) for cell in row] for row in grid]
        if _reads_like_a_table(rows):
            found.append(AlignedTable(bbox=_box(bbox, grid), rows=rows))
    return found


@dataclass(frozen=True)
class _WordsPage:
    """What pdfplumber's ``TableFinder`` reads of a page with the text strategy."""

    words: list[dict]
    bbox: tuple[float, float, float, float]

    def extract_words(self, **_settings) -> list[dict]:
        return self.words


def _characters(textpage: pdfium.PdfTextPage, height: float) -> list[dict]:
    """The page's characters as pdfplumber's character dicts: the text and its box, the
    font's box (PDFium's loose box) so that a line's characters share a top and bottom."""
    raw = textpage.raw
    box = pdfium_c.FS_RECTF()
    characters = []
    for index in range(pdfium_c.FPDFText_CountChars(raw)):
        code = pdfium_c.FPDFText_GetUnicode(raw, index)
        if code < 0x21 or code == 0xFFFE or not pdfium_c.FPDFText_GetLooseCharBox(raw, index, box):
            continue  # spaces, line ends and PDFium's hyphenation mark are not characters here
        top, bottom = height - box.top, height - box.bottom
        characters.append(
            {
                "text": chr(code),
                "x0": box.left,
                "x1": box.right,
                "top": top,
                "bottom": bottom,
                "doctop": top,
                "upright": True,
            }
        )
    return characters


def _within(word: dict, bbox) -> bool:
    x0, top, x1, bottom = bbox
    return (
        word["x0"] >= x0 - 1
        and word["x1"] <= x1 + 1
        and word["top"] >= top - 1
        and word["bottom"] <= bottom + 1
    )


def _inner_boundaries(bbox, cells) -> list[float]:
    x0, _, x1, _ = bbox
    boundaries = {round(c[i], 2) for row in cells for c in row if c for i in (0, 2)}
    return sorted(x for x in boundaries if x0 + 1 < x < x1 - 1)


def _crosses(word: dict, boundaries: list[float]) -> bool:
    return any(word["x0"] + 0.5 < x < word["x1"] - 0.5 for x in boundaries)


def _cell_words(cells, words: list[dict]) -> list[list[list[dict]]]:
    """Each cell's words (rows, then columns), a word going to the cell that holds its
    middle. (Reading the cell's box with PDFium, as for ruled tables, would give a word cut
    by a column boundary to both cells.) Rows left empty are dropped."""
    grid = []
    for row in cells:
        cell_words = []
        for cell in row:
            if cell is None:
                cell_words.append([])
                continue
            x0, top, x1, bottom = cell
            cell_words.append(
                [
                    w
                    for w in words
                    if x0 <= (w["x0"] + w["x1"]) / 2 < x1
                    and top <= (w["top"] + w["bottom"]) / 2 < bottom
                ]
            )
        if any(cell_words):
            grid.append(cell_words)
    return grid


def _trim(grid, crossing: list[dict] = ()) -> list[list[list[dict]]]:
    """Without the rows at the top and bottom that are a line of text lined up with the
    table rather than a row of it: one filled cell (a caption, a sentence starting at the
    first column's edge), or a word straddling a column boundary."""
    crossing_ids = {id(w) for w in crossing}

    def text_line(row) -> bool:
        filled = sum(bool(cell) for cell in row)
        return filled < 2 or any(id(w) in crossing_ids for cell in row for w in cell)

    start, stop = 0, len(grid)
    while start < stop and text_line(grid[start]):
        start += 1
    while stop > start and text_line(grid[stop - 1]):
        stop -= 1
    return grid[start:stop]


def _merge_close_columns(grid) -> list[list[list[dict]]]:
    """Columns joined to their left neighbour where the text strategy split at an ordinary
    space: "Region" and "0".."4" line up down a column of "Region 0", "Region 1", but the
    gap between them is a space, not a gutter between columns."""
    if not grid:
        return grid
    columns = len(grid[0])
    keep = [0]  # the columns that start a merged column
    for c in range(1, columns):
        gaps = [
            min(w["x0"] for w in row[c]) - max(w["x1"] for w in row[c - 1])
            for row in grid
            if row[c - 1] and row[c]
        ]
        ems = [w["bottom"] - w["top"] for row in grid for w in row[c]]
        if gaps and statistics.median(gaps) < _MERGE_GAP_EMS * statistics.median(ems):
            continue
        keep.append(c)
    spans = list(zip(keep, [*keep[1:], columns], strict=True))
    return [[[w for cell in row[a:b] for w in cell] for a, b in spans] for row in grid]


def _box(bbox, grid) -> tuple[float, float, float, float]:
    """The box of the kept rows' words, so that trimmed lines are read as text, and the
    words' first and last letters are not read again as text beside the table (pdfplumber's
    box can start a point inside a word's loose box)."""
    words = [w for row in grid for cell in row for w in cell]
    if not words:
        return bbox
    return (
        min(bbox[0], min(w["x0"] for w in words) - 1),
        min(w["top"] for w in words),
        max(bbox[2], max(w["x1"] for w in words) + 1),
        max(w["bottom"] for w in words),
    )


def _reads_like_a_table(rows: list[list[str]]) -> bool:
    if len(rows) < _MIN_ROWS:
        return False
    columns = [c for c in range(len(rows[0])) if sum(bool(row[c]) for row in rows) >= 2]
    if len(columns) < _MIN_COLUMNS:
        return False
    in_use = [row[c] for row in rows for c in columns]
    filled = [cell for cell in in_use if cell]
    sizes = [len(cell.split()) for cell in filled]
    return (
        len(filled) >= _MIN_FILLED * len(in_use)
        and statistics.median(sizes) <= _MAX_MEDIAN_WORDS
        and sum(size > _LONG_CELL_WORDS for size in sizes) <= _MAX_LONG_CELLS * len(sizes)
        and sum(cell.endswith((",", "-")) for cell in filled) <= _MAX_CONTINUED_CELLS * len(filled)
    )
