"""An Office Open XML package (a DOCX is one) opened within budgets.

A package is a ZIP archive of parts that point at each other through relationships
(ECMA-376 Part 2, the Open Packaging Conventions): the main document is whichever part the
package's ``_rels/.rels`` names as the officeDocument, whatever it is called, and its own
``.rels`` name its headers, footers, notes, numbering and styles.

Every part is checked before it is inflated: its uncompressed size and its compression ratio
as the archive directory gives them (a ZIP bomb is refused without inflating a byte). The
directory can lie, so a part is then read through a counting reader that stops a read after
the size the directory gave, the size the budgets were checked against: a part declared small
that inflates further is refused as soon as it passes it. Python's zipfile alone is not
enough: asked for a whole part it inflates everything the compressed data holds and only then
cuts it to the declared size.

python-docx is not used to open the package because it reads every part whole into memory and
parses each XML part whole (the hostile-corpus figures are in the README).
"""

from __future__ import annotations

import copy
import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote

from lxml import etree

from .budgets import zip_part_too_large, zip_ratio_too_high

# The main part's content type in a Word package: document, template, and their
# macro-enabled forms (python-docx accepts the same four).
WORD_MAIN_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
        "application/vnd.ms-word.document.macroEnabled.main+xml",
        "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
    }
)

# A part under this size cannot hurt whatever its ratio (a page of spaces compresses 100:1),
# so the ratio is judged only above it.
RATIO_FLOOR_BYTES = 1_000_000

# A part parsed whole (not streamed) is held to this share of the part budget: lxml's tree of
# tiny elements takes about twenty times their XML, so a quarter of the part budget keeps
# that worst case to a few hundred MB, far above any real document's parts
# (docs/measurements.md, "Whole XML parts").
WHOLE_PART_SHARE = 4

_READ_PIECE = 64 * 1024


class PackageError(Exception):
    """Not a readable package: not a ZIP, a ZIP cut short, a part missing or damaged, XML
    that does not parse. The caller words it for its reader."""


class DtdDeclared(PackageError):
    """A part declares a DTD."""


class DirectoryMismatch(PackageError):
    """A part inflates to another size than the archive's directory says."""

    def __init__(self, part: str, measured: int, declared: int, *, ended: bool):
        self.part = part
        self.measured = measured  # when reading stopped: a lower bound unless ``ended``
        self.declared = declared
        self.ended = ended
        more = "" if ended else "more than "
        super().__init__(
            f"part {part} inflates to {more}{measured} bytes, not the {declared} its "
            "directory entry says"
        )


@dataclass(frozen=True)
class Relationship:
    kind: str  # the last segment of the relationship type: "officeDocument", "header", ...
    target: str  # the target part's name in the archive (no leading slash)


class Package:
    """``source`` is a path or a seekable binary file. Raises PackageError, or
    BudgetExceeded for a part over a limit: every part's directory entry with
    ``check_directory``, a part being read whatever its entry says."""

    def __init__(self, source, *, max_part_bytes: int, max_ratio: float):
        self.max_part_bytes = max_part_bytes
        self.max_ratio = max_ratio
        try:
            self._zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            raise PackageError("not a ZIP archive, or one cut short") from None
        # Part names compare case-insensitively (ECMA-376 Part 2, M1.12).
        self._parts = {
            info.filename.lower(): info
            for info in self._zip.infolist()
            if not info.filename.endswith("/")
        }

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def infos(self) -> list[zipfile.ZipInfo]:
        """The directory entries of the parts (folders left out), as the archive gives them."""
        return list(self._parts.values())

    def check_directory(self) -> None:
        """Hold every part's directory entry to the limits, before anything is inflated:
        also the parts nobody reads, such as an archive embedded in the document."""
        for info in self._parts.values():
            self._check_declared(info)

    def _check_declared(self, info: zipfile.ZipInfo, *, whole: bool = False) -> None:
        limit = self.max_part_bytes // WHOLE_PART_SHARE if whole else self.max_part_bytes
        if info.file_size > limit:
            raise zip_part_too_large(info.filename, info.file_size, limit, whole=whole)
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > self.max_ratio * max(
            info.compress_size, 1
        ):
            raise zip_ratio_too_high(
                info.filename, info.file_size, info.compress_size, self.max_ratio
            )

    # --- parts -----------------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name.lower() in self._parts

    def open(self, name: str, *, whole: bool = False) -> BinaryIO:
        """The part's bytes, through a reader that stops where the directory says the part
        ends. Its directory entry is checked first (also when ``check_directory`` was not
        called); ``whole``: the part is to be parsed whole, and held to the lower limit."""
        info = self._parts.get(name.lower())
        if info is None:
            raise PackageError(f"no part {name}")
        self._check_declared(info, whole=whole)
        return _BoundedPart(self._zip, info)

    def read(self, name: str) -> bytes:
        with self.open(name) as part:
            return part.read()

    def parse(self, name: str) -> etree._Element:
        """The part's XML, parsed whole (for the small parts: relationships, styles...).
        Entities are not resolved, so a DTD is refused after the parse, at no cost."""
        with self.open(name, whole=True) as part:
            try:
                root = etree.parse(part, _PARSER).getroot()
            except etree.XMLSyntaxError as exc:
                raise PackageError(f"part {name} is not well-formed XML: {exc}") from None
        if root is None:
            raise PackageError(f"part {name} is empty")
        refuse_dtd(root)
        return root

    # --- relationships ---------------------------------------------------------------------------

    def relationships(self, source: str | None = None) -> list[Relationship]:
        """The internal relationships of part ``source`` (None: of the package itself)."""
        if source is None:
            rels, base = "_rels/.rels", ""
        else:
            folder, name = posixpath.split(source)
            rels, base = posixpath.join(folder, "_rels", name + ".rels"), folder
        if not self.has(rels):
            return []
        found = []
        for element in self.parse(rels):
            if _local(element) != "Relationship" or element.get("TargetMode") == "External":
                continue
            kind = (element.get("Type") or "").rsplit("/", 1)[-1]
            target = unquote(element.get("Target") or "")
            if target.startswith("/"):
                name = posixpath.normpath(target.lstrip("/"))
            else:
                name = posixpath.normpath(posixpath.join(base, target))
            found.append(Relationship(kind=kind, target=name))
        return found

    def related(self, source: str | None, kind: str) -> list[str]:
        """The parts ``source`` relates to with ``kind``, in the order listed, that exist.
        Strict OOXML's relationship types differ only before the last segment."""
        return [
            rel.target
            for rel in self.relationships(source)
            if rel.kind == kind and self.has(rel.target)
        ]

    def main_document(self) -> str | None:
        parts = self.related(None, "officeDocument")
        return parts[0] if parts else None

    def content_type(self, name: str) -> str | None:
        """The part's content type from ``[Content_Types].xml``: its Override, else the
        Default for its extension."""
        if not self.has("[Content_Types].xml"):
            return None
        part_name = "/" + name.lower()
        extension = posixpath.splitext(name)[1].lstrip(".").lower()
        default = None
        for element in self.parse("[Content_Types].xml"):
            kind = _local(element)
            if kind == "Override" and (element.get("PartName") or "").lower() == part_name:
                return element.get("ContentType")
            if kind == "Default" and (element.get("Extension") or "").lower() == extension:
                default = element.get("ContentType")
        return default


def word_main_document(package: Package) -> str | None:
    """The main part of a Word package, or None when the package is something else (a
    spreadsheet, a presentation, any ZIP)."""
    main = package.main_document()
    if main is None or package.content_type(main) not in WORD_MAIN_TYPES:
        return None
    return main


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def xml_events(stream: BinaryIO, **kwargs) -> etree.iterparse:
    """An iterparse over a part. Entities are not resolved, and nothing is fetched; the
    caller refuses a DTD at the first event with ``refuse_dtd``."""
    return etree.iterparse(stream, resolve_entities=False, no_network=True, **kwargs)


def refuse_dtd(element) -> None:
    """Packages may not declare DTDs (ECMA-376 Part 2, M1.18: they are how XML entity
    expansion exhausts a reader, and a reader must treat one as an error)."""
    if element.getroottree().docinfo.internalDTD is not None:
        raise DtdDeclared("a part declares a DTD")


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


class _BoundedPart(io.RawIOBase):
    """A part's inflated bytes, held to the size its directory entry gives (and so to the
    budgets that entry was checked against) whatever the compressed data holds: a part that
    inflates past it is refused a read later. zipfile alone does not do this: asked for a
    whole part it inflates all the compressed data, then cuts it to the declared size and
    only then complains about the CRC. It is handed a copy of the entry claiming a margin
    more, and the bytes are counted here, read by read."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo):
        super().__init__()
        self._info = info
        probe = copy.copy(info)
        probe.file_size = info.file_size + 2 * _READ_PIECE
        try:
            self._stream = archive.open(probe)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            raise PackageError(f"part {info.filename} cannot be opened: {exc}") from None
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), _READ_PIECE)
        try:
            data = self._stream.read(want)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise PackageError(f"part {self._info.filename} is damaged: {exc}") from None
        self._count += len(data)
        declared = self._info.file_size
        if self._count > declared or (not data and self._count != declared):
            # The directory lied (a bomb declared small to pass the budgets), or the data is
            # damaged: either way the archive is not what it says.
            raise DirectoryMismatch(self._info.filename, self._count, declared, ended=not data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
