"""The text of a DOCX file, read from the XML of its parts.

The package is opened with ooxml.py, within the ZIP budgets (every part's size and ratio
from the directory, then counted while it is inflated), and the parts are found through
their relationships, so a main part with another name than word/document.xml is read too.
The main part is parsed as a stream: each top-level paragraph, and each row of a top-level
table, is read as soon as it ends and then dropped from the tree, so a document of a million
tiny paragraphs costs its text, not its tree (lxml's tree of tiny elements is ~20 times the
XML). Headers, footers, notes, numbering and styles are parsed whole; they are held to the
part-size budget like every part. The characters read are counted against ``max_chars`` as
they come, and the deadline checked as the blocks go by.

The walker below matches element local names, so it reads both transitional and strict OOXML
(corpus: strict.docx), and reads what python-docx's paragraph-and-table API misses: text
boxes, footnotes, list numbers, merged table cells without repeating their text.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from documents.errors import FailureKind, PermanentError

from .budgets import Deadline, TextBudget, size
from .ooxml import DirectoryMismatch, DtdDeclared, Package, PackageError, refuse_dtd, xml_events
from .types import ExtractOptions

# What a damaged or foreign file raises while it is read: not a ZIP, a ZIP cut short,
# compressed data that does not inflate, no main document part, XML that does not parse.
_DAMAGED = (
    PackageError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    ValueError,
    etree.XMLSyntaxError,
)

_DAMAGED_MESSAGE = (
    "This Word document is damaged or incomplete and cannot be opened; check that it "
    "opens in Word and upload it again."
)
_DTD_MESSAGE = (
    "This Word document contains an XML document type declaration (DTD), which Word files "
    'may not contain: it is how "entity expansion" files exhaust a server. Save the '
    "document again from Word and upload the new file."
)

# How many blocks go by between two looks at the clock.
_DEADLINE_EVERY = 256


def docx_text(path: Path, options: ExtractOptions, deadline: Deadline | None = None) -> str:
    """The text of a Word document: headers, body (paragraphs, tables, text boxes, list
    numbers) in document order, footnotes, endnotes, footers; one paragraph or table row a
    line. Raises PermanentError(CORRUPT) when the file is not a readable Word package, and
    BudgetExceeded when a part or the text is over its budget."""
    text = _Text(TextBudget(options.max_chars), deadline)
    try:
        with Package(
            path, max_part_bytes=options.max_zip_part_bytes, max_ratio=options.max_zip_ratio
        ) as package:
            package.check_directory()
            main = package.main_document()
            if main is None:
                raise PackageError("no officeDocument relationship")
            headers = [package.parse(part) for part in package.related(main, "header")]
            footers = [package.parse(part) for part in package.related(main, "footer")]
            notes = [
                (note, package.parse(part))
                for kind, note in (("footnotes", "footnote"), ("endnotes", "endnote"))
                for part in package.related(main, kind)
            ]
            numbering = _Numbering(
                [package.parse(part) for part in package.related(main, "numbering")],
                [package.parse(part) for part in package.related(main, "styles")],
            )
            # Headers first, footers last, each distinct text once: every section repeats
            # its header, and first-page/even-page variants are often identical to the
            # default one.
            for root in headers:
                text.add_once("\n".join(_blocks(root, numbering)))
            if deadline is not None:
                deadline.check()
            with package.open(main) as stream:
                for block in _body_blocks(stream, numbering):
                    text.add(block)
            for note, root in notes:
                for element in root:
                    # separator/continuation notes hold the rule line, not text
                    if _local(element) == note and not element.get(_w(element, "type")):
                        for block in _blocks(element, numbering):
                            text.add(block)
            for root in footers:
                text.add_once("\n".join(_blocks(root, numbering)))
    except DtdDeclared:
        raise PermanentError(_DTD_MESSAGE, kind=FailureKind.CORRUPT) from None
    except DirectoryMismatch as exc:
        more = "" if exc.ended else "more than "
        raise PermanentError(
            f"This Word document is not what its archive says: the part {exc.part} inflates "
            f"to {more}{size(exc.measured)}, not the {size(exc.declared)} its directory gives, "
            "so it is damaged or was made to look smaller than it is. Save the document "
            "again from Word and upload the new file.",
            kind=FailureKind.CORRUPT,
        ) from None
    except _DAMAGED:
        raise PermanentError(_DAMAGED_MESSAGE, kind=FailureKind.CORRUPT) from None
    return "\n".join(text.blocks)


class _Text:
    """The blocks read so far, counted against the text budget."""

    def __init__(self, budget: TextBudget, deadline: Deadline | None):
        self.blocks: list[str] = []
        self._seen: set[str] = set()
        self._budget = budget
        self._deadline = deadline

    def add(self, block: str) -> None:
        if not block.strip():
            return
        self._budget.add(len(block) + 1)
        self.blocks.append(block)
        if self._deadline is not None and len(self.blocks) % _DEADLINE_EVERY == 0:
            self._deadline.check()

    def add_once(self, block: str) -> None:
        if block.strip() and block not in self._seen:
            self._seen.add(block)
            self.add(block)


# Containers whose children are block content (paragraphs, tables) to walk through.
_BLOCK_WRAPPERS = {"sdt", "sdtContent", "customXml", "ins", "moveTo", "smartTag"}
# The elements the body stream stops at: the root (to refuse a DTD before any content is
# parsed), paragraphs, tables and their rows, and the wrappers blocks sit in.
_STREAM_TAGS = tuple(f"{{*}}{name}" for name in ("document", "p", "tbl", "tr", *_BLOCK_WRAPPERS))


def _body_blocks(stream, numbering: _Numbering) -> Iterator[str]:
    """The body's blocks in document order, read as the parser reaches the end of each
    top-level paragraph or top-level table row, which is then removed from the tree."""
    first = True
    current_table, markdown = None, _MarkdownTable()
    for event, element in xml_events(stream, events=("start", "end"), tag=_STREAM_TAGS):
        if first:
            first = False
            refuse_dtd(element)
        if event != "end":
            continue
        name = _local(element)
        if name == "p" and _top_level(element.getparent()):
            yield from _paragraph(element, numbering)
        elif name == "tr" and _top_level_row(element):
            owner = _nearest_table(element)
            if owner is not current_table:
                current_table, markdown = owner, _MarkdownTable()
            yield from markdown.lines(_cells(element, numbering))
        elif not (name in _BLOCK_WRAPPERS or name == "tbl") or not _top_level(element.getparent()):
            continue  # inside a block still being read, or the root
        _drop(element)


def _top_level(parent) -> bool:
    """Whether a block whose parent is ``parent`` is a block of the body (not inside a table
    cell, a text box or a note): only wrappers between it and <w:body>."""
    while parent is not None:
        name = _local(parent)
        if name == "body":
            return True
        if name not in _BLOCK_WRAPPERS:
            return False
        parent = parent.getparent()
    return False


def _top_level_row(row) -> bool:
    parent = row.getparent()
    while parent is not None and _local(parent) in _BLOCK_WRAPPERS:
        parent = parent.getparent()
    return parent is not None and _local(parent) == "tbl" and _top_level(parent.getparent())


def _drop(element) -> None:
    """Free a block that has been read, and what came before it at its level (properties,
    bookmarks, blocks already read): lxml keeps every parsed node until it is removed."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _w(element, name: str) -> str:
    # The WordprocessingML namespace of this document (transitional or strict).
    return f"{{{etree.QName(element).namespace}}}{name}"


# Inline elements whose content is not text of the document: properties, deleted or moved
# text, field instructions, and mc:Fallback, the VML copy Word writes of each text box.
_SKIP = {"pPr", "rPr", "sectPr", "del", "moveFrom", "instrText", "delText", "Fallback"}


def _blocks(container, numbering: _Numbering, *, in_cell: bool = False) -> Iterator[str]:
    for child in container:
        name = _local(child)
        if name == "p":
            yield from _paragraph(child, numbering)
        elif name == "tbl":
            yield from _table(child, numbering, nested=in_cell)
        elif name in _BLOCK_WRAPPERS:
            yield from _blocks(child, numbering, in_cell=in_cell)


def _paragraph(paragraph, numbering: _Numbering) -> Iterator[str]:
    parts: list[str] = []
    boxes: list = []
    _inline(paragraph, parts, boxes)
    text = "".join(parts).strip()
    if text:
        yield numbering.prefix(paragraph) + text
    # A text box's paragraphs follow the paragraph that anchors it.
    for box in boxes:
        yield from _blocks(box, numbering)


def _inline(element, parts: list[str], boxes: list) -> None:
    for child in element:
        name = _local(child)
        if name == "t":
            parts.append(child.text or "")
        elif name == "tab":
            parts.append("\t")
        elif name in ("br", "cr"):
            parts.append("\n")
        elif name == "noBreakHyphen":
            parts.append("-")
        elif name == "txbxContent":
            boxes.append(child)
        elif name not in _SKIP:
            _inline(child, parts, boxes)


def _table(table, numbering: _Numbering, *, nested: bool = False) -> Iterator[str]:
    """A table read whole (in a header, a note, a text box or a cell) as Markdown rows; a
    table inside a cell is flattened into that cell's text."""
    rows = []
    for row in table.iter(_w(table, "tr")):
        if row.getparent() is not table and _nearest_table(row) is not table:
            continue  # a row of a nested table: read with its own cell
        rows.append(_cells(row, numbering))
    if nested:
        # inside a cell: one line of "a; b" per row, no Markdown of its own
        yield " ".join("; ".join(c for c in cells if c) for cells in rows if any(cells))
        return
    yield from _markdown_rows(rows)


def _cells(row, numbering: _Numbering) -> list[str]:
    """A row's cells, each keeping its column: a cell merged across columns (gridSpan) is
    followed by empty ones, and the cells a vertical merge covers are empty in the XML, so
    merged text is not repeated."""
    cells = []
    for cell in row:
        if _local(cell) == "tc":
            text = " ".join(_blocks(cell, numbering, in_cell=True)).strip()
            cells.append(" ".join(text.split()).replace("|", "\\|"))
            span = _int(_val(_child(_child(cell, "tcPr"), "gridSpan")), 1)
            cells.extend("" for _ in range(span - 1))
    return cells


class _MarkdownTable:
    """Rows of one table as Markdown, the first row its header followed by the separator, so
    the chunker keeps each row whole and with its header (documents/pipeline/chunk.py), as it
    does for PDF tables. Rows come one at a time (a streamed body table), so later rows are
    padded to the header's width rather than to the widest row."""

    def __init__(self):
        self.width: int | None = None

    def lines(self, cells: list[str]) -> Iterator[str]:
        if not any(cells):
            return
        if self.width is None:
            self.width = len(cells)
            yield "| " + " | ".join(cells) + " |"
            yield "| " + " | ".join("---" for _ in cells) + " |"
            return
        cells = cells + [""] * (self.width - len(cells))
        yield "| " + " | ".join(cells) + " |"


def _markdown_rows(rows: list[list[str]]) -> Iterator[str]:
    table = _MarkdownTable()
    for cells in rows:
        yield from table.lines(cells)


def _nearest_table(row):
    parent = row.getparent()
    while parent is not None and _local(parent) != "tbl":
        parent = parent.getparent()
    return parent


class _Numbering:
    """List numbers and bullets as Word shows them, approximately: one counter per list
    (numId), deeper levels restart when a shallower one advances, ``%1.%2.`` level texts;
    numbering inherited from a paragraph style is followed. Bullets become "•" because their
    glyphs are private-use characters of the Symbol font."""

    def __init__(self, numbering_roots: list, style_roots: list):
        # Lists are read when a paragraph first uses one: templates define hundreds that no
        # paragraph uses, thousands of levels in some real files.
        self._nums: dict[str, tuple] = {}  # numId -> (<w:num>, its part's abstractNumId map)
        self._lists: dict[str, dict[int, tuple[str, str, int]]] = {}
        self._abstract_levels: dict[object, dict[int, tuple[str, str, int]]] = {}
        self._styles: dict[str, tuple[str | None, str | None, str | None]] = {}
        self._counters: dict[str, dict[int, int]] = {}
        for root in numbering_roots:
            abstract = {
                element.get(_w(element, "abstractNumId"), ""): element
                for element in root
                if _local(element) == "abstractNum"
            }
            for element in root:
                if _local(element) == "num":
                    self._nums[element.get(_w(element, "numId"), "")] = (element, abstract)
        for root in style_roots:
            for style in root:
                if _local(style) == "style":
                    num_pr = _child(_child(style, "pPr"), "numPr")
                    self._styles[style.get(_w(style, "styleId"), "")] = (
                        _val(_child(num_pr, "numId")),
                        _val(_child(num_pr, "ilvl")),
                        _val(_child(style, "basedOn")),
                    )

    def _levels(self, num_id: str) -> dict[int, tuple[str, str, int]]:
        if num_id not in self._lists:
            self._lists[num_id] = (
                self._read_num(*self._nums[num_id]) if num_id in self._nums else {}
            )
        return self._lists[num_id]

    def _read_num(self, element, abstract: dict) -> dict[int, tuple[str, str, int]]:
        source = abstract.get(_val(_child(element, "abstractNumId")) or "")
        levels = dict(self._read_abstract(source)) if source is not None else {}
        for override in element:
            if _local(override) != "lvlOverride":
                continue
            ilvl = _int(override.get(_w(override, "ilvl")), 0)
            if (level := _child(override, "lvl")) is not None:
                levels[ilvl] = _level(level)
            start = _val(_child(override, "startOverride"))
            if start and ilvl in levels:
                levels[ilvl] = (levels[ilvl][0], levels[ilvl][1], _int(start, 1))
        return levels

    def _read_abstract(self, element) -> dict[int, tuple[str, str, int]]:
        # Keyed by the element itself (hashed by identity): the same <w:abstractNum> proxy
        # object is kept in the abstract maps of self._nums.
        if element not in self._abstract_levels:
            self._abstract_levels[element] = {
                _int(level.get(_w(level, "ilvl")), 0): _level(level)
                for level in element
                if _local(level) == "lvl"
            }
        return self._abstract_levels[element]

    def prefix(self, paragraph) -> str:
        num_pr = _child(_child(paragraph, "pPr"), "numPr")
        num_id, ilvl = _val(_child(num_pr, "numId")), _val(_child(num_pr, "ilvl"))
        style = _val(_child(_child(paragraph, "pPr"), "pStyle"))
        for _ in range(10):  # basedOn chains are short; the bound guards against a cycle
            if num_id or style not in self._styles:
                break
            style_num, style_ilvl, style = self._styles[style]
            num_id, ilvl = style_num, ilvl or style_ilvl
        levels = self._levels(num_id or "")
        level = _int(ilvl, 0)
        if not levels or level not in levels:
            return ""  # numId 0 ("no numbering") and lists defined elsewhere
        fmt, text, start = levels[level]
        counters = self._counters.setdefault(num_id, {})
        counters[level] = counters.get(level, start - 1) + 1
        for deeper in [k for k in counters if k > level]:
            del counters[deeper]
        if fmt == "bullet":
            return "• "
        if fmt == "none" or not text:
            return ""

        def number(match: re.Match) -> str:
            k = int(match.group(1)) - 1
            k_fmt, _, k_start = levels.get(k, ("decimal", "", 1))
            return _format_number(counters.get(k, k_start), k_fmt)

        return re.sub(r"%([1-9])", number, text) + " "


def _level(level) -> tuple[str, str, int]:
    return (
        _val(_child(level, "numFmt")) or "decimal",
        _val(_child(level, "lvlText")) or "",
        _int(_val(_child(level, "start")), 1),
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default  # a malformed number costs a list prefix, not the document


def _format_number(n: int, fmt: str) -> str:
    if fmt in ("lowerLetter", "upperLetter"):
        letters = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)  # Word: y, z, aa, bb
        return letters.upper() if fmt == "upperLetter" else letters
    if fmt in ("lowerRoman", "upperRoman"):
        roman = _roman(n)
        return roman.lower() if fmt == "lowerRoman" else roman
    if fmt == "decimalZero":
        return f"{n:02d}"
    return str(n)


def _roman(n: int) -> str:
    out = []
    for value, symbol in zip(
        (1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1),
        ("M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"),
        strict=True,
    ):
        count, n = divmod(n, value)
        out.append(symbol * count)
    return "".join(out)


def _child(element, name: str):
    if element is None:
        return None
    for child in element:
        if _local(child) == name:
            return child
    return None


def _val(element) -> str | None:
    return None if element is None else element.get(_w(element, "val"))
