"""The text of a DOCX file, read from the XML of its parts.

python-docx opens the package (ZIP, content types, relationships); the text is read from the
parts' XML by the walker below, because python-docx's paragraph-and-table API misses text
boxes, footnotes and list numbers, repeats the text of merged table cells, and its
``Document()`` refuses strict OOXML, whose parts differ from the usual ones only in their
namespaces. The walker matches element local names, so it reads both flavours (corpus:
strict.docx). Measured on the corpus (bench reference): python-docx opens 82 documents/s.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from docx.opc.exceptions import OpcError
from docx.opc.package import OpcPackage
from lxml import etree

from documents.errors import FailureKind, PermanentError

# What a damaged or foreign file raises while python-docx opens it: not a ZIP, a ZIP cut
# short, compressed data that does not inflate, no main document part, XML that does not parse.
_DAMAGED = (
    OpcError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    ValueError,
    etree.XMLSyntaxError,
)


def docx_text(path: Path) -> str:
    """The text of a Word document: headers, body (paragraphs, tables, text boxes, list
    numbers) in document order, footnotes, endnotes, footers; one paragraph or table row a
    line. Raises PermanentError(CORRUPT) when the file is not a readable Word package."""
    try:
        package = OpcPackage.open(str(path))
        main = _related(package, "officeDocument")[0]
        # Parse every part now, so that a damaged part is reported like a damaged file.
        headers = [_root(part) for part in _related(main, "header")]
        footers = [_root(part) for part in _related(main, "footer")]
        notes = [
            (note, _root(part))
            for kind, note in (("footnotes", "footnote"), ("endnotes", "endnote"))
            for part in _related(main, kind)
        ]
        body = _root(main).find(_w(_root(main), "body"))
        numbering = _Numbering(
            [_root(part) for part in _related(main, "numbering")],
            [_root(part) for part in _related(main, "styles")],
        )
    except _DAMAGED:
        raise PermanentError(
            "This Word document is damaged or incomplete and cannot be opened; check that it "
            "opens in Word and upload it again.",
            kind=FailureKind.CORRUPT,
        ) from None
    blocks: list[str] = []
    seen: set[str] = set()
    # Headers first, footers last, each distinct text once: every section repeats its
    # header, and first-page/even-page variants are often identical to the default one.
    for root in headers:
        _add_once(blocks, seen, "\n".join(_blocks(root, numbering)))
    if body is not None:
        blocks.extend(_blocks(body, numbering))
    for note, root in notes:
        for element in root:
            # separator/continuation notes hold the rule line, not text
            if _local(element) == note and not element.get(_w(element, "type")):
                blocks.extend(_blocks(element, numbering))
    for root in footers:
        _add_once(blocks, seen, "\n".join(_blocks(root, numbering)))
    return "\n".join(block for block in blocks if block.strip())


def _related(source, kind: str) -> list:
    # Strict OOXML relationship types live under purl.oclc.org, transitional ones under
    # schemas.openxmlformats.org; the last path segment is the same.
    return [
        rel.target_part
        for rel in source.rels.values()
        if not rel.is_external and rel.reltype.rsplit("/", 1)[-1] == kind
    ]


def _root(part) -> etree._Element:
    element = getattr(part, "element", None)  # XmlPart: already parsed by python-docx
    return element if element is not None else etree.fromstring(part.blob, _XML_PARSER)


_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _add_once(blocks: list[str], seen: set[str], text: str) -> None:
    if text.strip() and text not in seen:
        seen.add(text)
        blocks.append(text)


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _w(element, name: str) -> str:
    # The WordprocessingML namespace of this document (transitional or strict).
    return f"{{{etree.QName(element).namespace}}}{name}"


# Containers whose children are block content (paragraphs, tables) to walk through.
_BLOCK_WRAPPERS = {"sdt", "sdtContent", "customXml", "ins", "moveTo", "smartTag"}
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
    """A table as Markdown rows, the first row its header, so the chunker keeps each row
    whole and with its header (documents/pipeline/chunk.py), as it does for PDF tables.
    Every cell keeps its column: a cell merged across columns (gridSpan) is followed by
    empty ones, and the cells a vertical merge covers are empty in the XML, so merged text
    is not repeated. A table inside a cell is flattened into that cell's text."""
    rows = []
    for row in table.iter(_w(table, "tr")):
        if row.getparent() is not table and _nearest_table(row) is not table:
            continue  # a row of a nested table: read with its own cell
        cells = []
        for cell in row:
            if _local(cell) == "tc":
                text = " ".join(_blocks(cell, numbering, in_cell=True)).strip()
                cells.append(" ".join(text.split()).replace("|", "\\|"))
                span = _int(_val(_child(_child(cell, "tcPr"), "gridSpan")), 1)
                cells.extend("" for _ in range(span - 1))
        if any(cells):
            rows.append(cells)
    if nested:
        # inside a cell: one line of "a; b" per row, no Markdown of its own
        yield " ".join("; ".join(c for c in row if c) for row in rows)
        return
    if not rows:
        return
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    yield "| " + " | ".join(rows[0]) + " |"
    yield "| " + " | ".join("---" for _ in rows[0]) + " |"
    for row in rows[1:]:
        yield "| " + " | ".join(row) + " |"


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
        # paragraph uses (a corpus file: 7,320 levels, 0.11 s to read them all up front).
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
