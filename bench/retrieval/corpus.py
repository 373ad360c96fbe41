"""The benchmark's documents: which corpus files, their text, and the re-uploaded copies.

Both the set builder and the benchmark read the files through the project's own extraction
(``extract_text`` with default ``ExtractOptions``), so the sentences the queries come from are
the text the pipeline would chunk. The benchmark corpus is every text-layer PDF and Word file
of the corpus manifest whose extraction yields text; scans are left out (OCR would make each
run much longer and their text is not what is being measured), and so is the synthetic
607-page concatenation (it repeats three of the books, which the re-uploads below cover in a
controlled way).

Re-uploads: a tenant that uploads the same document twice holds the same chunks twice, and
copies of one wrong chunk then take several of the top five places. The benchmark adds such
copies: some files again unchanged (identical chunks), and some "revised" with one line put
before the first page, which moves the chunk boundaries, so their chunks are near-identical
rather than identical. Which files are copied is decided by the set builder (seeded) and read
back from the sets' manifest, so both scripts see the same corpus.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from documents.errors import PermanentError
from documents.pipeline.extract import DOCX, PDF, extract_text
from documents.pipeline.types import ExtractOptions, Page

OPTIONS = ExtractOptions()
LEFT_OUT = {
    "synthetic-concat-607p.pdf": "concatenation of freeculture, GeoTopo and ISO-IEC-29500-2",
}
# Put before the first page of a "revised" re-upload.
REVISION_LINE = "Revised copy, uploaded again after review; it replaces the earlier upload."

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: how queries are made and hits are judged, on every side."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Document:
    """One uploaded document of the benchmark tenant. ``source`` is the corpus file it was
    read from; a re-upload has the same source as the original and a different ``doc_id``."""

    doc_id: str
    source: str
    pages: list[Page]

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)


def manifest_rows(corpus: Path) -> list[dict]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        return list(csv.DictReader(manifest, delimiter="\t"))


def content_type(path: Path) -> str:
    return PDF if path.suffix.lower() == ".pdf" else DOCX


def read_corpus(corpus: Path) -> tuple[list[Document], dict[str, str]]:
    """Every benchmark file, in manifest order, read with the project's extraction; and the
    reason each other text-layer candidate was left out."""
    documents: list[Document] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for row in manifest_rows(corpus):
        name, kind = row["file"], row["kind"]
        if name in seen or not (kind.startswith("text-pdf") or kind.startswith("docx")):
            continue
        seen.add(name)
        if name in LEFT_OUT:
            skipped[name] = LEFT_OUT[name]
            continue
        path = corpus / name
        try:
            extraction = extract_text(path, content_type=content_type(path), options=OPTIONS)
            pages = list(extraction.pages)
        except PermanentError as exc:
            skipped[name] = f"{exc.kind}: {exc}"
            continue
        documents.append(Document(doc_id=name, source=name, pages=pages))
    return documents, skipped


def with_reuploads(documents: list[Document], reuploads: dict[str, str]) -> list[Document]:
    """``documents`` plus a copy of each file named in ``reuploads`` (name -> "identical" or
    "revised"), appended after the originals."""
    by_name = {d.doc_id: d for d in documents}
    copies = []
    for name, how in reuploads.items():
        original = by_name[name]
        pages = list(original.pages)
        if how == "revised":
            first = pages[0]
            pages[0] = Page(first.number, f"{REVISION_LINE}\n{first.text}", first.ocr)
        elif how != "identical":
            raise ValueError(f"unknown re-upload kind {how!r} for {name}")
        copies.append(Document(doc_id=f"{name} ({how} re-upload)", source=name, pages=pages))
    return documents + copies


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_against_manifest(
    corpus: Path, documents: Iterable[Document], manifest: dict
) -> list[str]:
    """Differences between what the sets were built from and what is read now: a changed
    corpus file or a changed extractor can move the sentences the queries point at."""
    problems = []
    current = {d.doc_id: d for d in documents}
    for entry in manifest["files"]:
        name = entry["file"]
        document = current.get(name)
        if document is None:
            problems.append(f"{name}: in the sets' manifest but not read now")
            continue
        if sha256_file(corpus / name) != entry["sha256"]:
            problems.append(f"{name}: the file differs from the one the sets were built from")
        elif sha256_text(document.text) != entry["text_sha256"]:
            problems.append(f"{name}: extraction now gives different text")
    extra = set(current) - {e["file"] for e in manifest["files"]}
    problems += [f"{name}: read now but not in the sets' manifest" for name in sorted(extra)]
    return problems
