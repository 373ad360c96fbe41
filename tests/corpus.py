"""The shared corpus of real documents (../shared/corpus/MANIFEST.tsv) and how each file
should end. Tests that use it are marked ``corpus`` and skip when the folder is absent; the
folder can be moved with CORPUS_DIR."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from documents.errors import FailureKind

CORPUS = Path(
    os.environ.get("CORPUS_DIR") or Path(__file__).resolve().parents[1] / "../shared/corpus"
).resolve()
AVAILABLE = (CORPUS / "MANIFEST.tsv").exists()


def manifest() -> dict[str, dict]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


# Files whose manifest kind alone does not say how they end, with the reason.
EXCEPTIONS = {
    # "corrupt" files PDFium repairs on opening: judged by what is left in them.
    "zen_of_python_corrupted.pdf": "text",  # broken xref, text intact
    "malformed-from-issue-932.pdf": "text",  # 9 characters of text layer, the rest OCR
    "PDFBOX-3148-2-fuzzed.pdf": FailureKind.EMPTY,  # opens, but its one page is empty
    # A Word document named .pdf: the type comes from the bytes, so it is read as a DOCX.
    "synthetic-not-a-pdf.pdf": "text",
    # The "no text" vector.pdf draws its letters as vector paths: OCR reads them.
    "vector.pdf": "text",
    # Word documents with no text at all: every table cell is empty / only pictures.
    "tbl-having-tables.docx": FailureKind.EMPTY,
    "having-images.docx": FailureKind.EMPTY,
    "empty.docx": FailureKind.EMPTY,
}


def expected_outcome(row: dict) -> str:
    """ "text" for a file that must end with text, else the failure kind it must end with."""
    if row["file"] in EXCEPTIONS:
        return EXCEPTIONS[row["file"]]
    kind = row["kind"]
    if kind == "encrypted":
        return FailureKind.ENCRYPTED
    if kind.startswith("corrupt"):
        return FailureKind.CORRUPT
    if kind in ("no-text-pdf", "docx-empty"):
        return FailureKind.EMPTY
    return "text"
