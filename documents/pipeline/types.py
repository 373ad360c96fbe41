"""Typed values passed between the pipeline stages, and the interfaces of the pluggable parts.

The stages are plain functions; only ``run.py`` touches the database. Everything here is
free of Django so that the stages can be tested and benchmarked on their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Page:
    """The text of one page (1-based ``number``); DOCX and plain text are a single page.

    Quality signals (documents/pipeline/quality.py): ``ocr_confidence`` is Tesseract's mean
    word confidence (0-100) for a page read with OCR; ``garbage_score`` is how garbled the
    PDF's text layer looked (0-1), set for PDF pages, including those then read with OCR;
    ``flagged`` marks a page a person should check, ``flag_reason`` says why."""

    number: int
    text: str
    ocr: bool = False
    ocr_confidence: float | None = None
    garbage_score: float | None = None
    flagged: bool = False
    flag_reason: str = ""


@dataclass
class Extraction:
    """A document opened for reading: its page count is known before the pages are read,
    so progress can be reported, and ``pages`` yields them one at a time (bounded memory)."""

    page_count: int
    pages: Iterator[Page]


@dataclass(frozen=True)
class ExtractOptions:
    max_pages: int = 2000
    ocr_languages: str = "eng"
    ocr_dpi: int = 200
    ocr_parallel_pages: int = 2
    tesseract_cmd: str = "tesseract"
    # a page whose text layer has fewer visible characters than this is read with OCR
    ocr_min_chars: int = 16
    # wordfreq language codes a text layer's words are checked against (quality.py); a page
    # in none of them scores high on non-words and is confirmed by OCR before it is kept
    word_languages: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "pt")
    # read PDF pages that hold ruled tables again with pdfplumber, tables as Markdown rows
    # (tables.py); off, every PDF page is read with pypdfium2 alone
    tables: bool = True
    password: str = ""


@dataclass(frozen=True)
class TextChunk:
    """A piece of the document's text that fits the embedder's input limit.

    ``char_start``/``char_end`` are offsets into the document text, which is the pages' text
    joined with ``PAGE_SEPARATOR``; pages are 1-based and inclusive. A chunk that continues
    a table starts with the table's header again (``repeated_header``, then a newline),
    which the offsets do not cover."""

    index: int
    text: str
    token_count: int
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    repeated_header: str = ""


PAGE_SEPARATOR = "\n\n"


class TokenCounter(Protocol):
    def count_tokens(self, text: str) -> int: ...


class Embedder(TokenCounter, Protocol):
    """Turns texts into vectors. ``max_input_tokens`` is the hard limit measured with
    ``count_tokens``; ``chunk_tokens``/``chunk_overlap`` are the chunker's targets."""

    model_name: str
    dimension: int
    max_input_tokens: int
    chunk_tokens: int
    chunk_overlap: int
    batch_size: int

    def embed_documents(self, texts: Sequence[str], *, title: str = "") -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class VectorRecord:
    id: str
    values: Sequence[float]  # a list, or a row of a numpy matrix
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    id: str
    score: float
    metadata: dict = field(default_factory=dict)


class VectorStore(Protocol):
    """A vector index partitioned into namespaces; a call never crosses namespaces."""

    def dimension(self) -> int | None:
        """The index's dimension, or None when it has none yet (an empty local store)."""
        ...

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None: ...

    def upsert_replacing(
        self, namespace: str, prefix: str, records: Sequence[VectorRecord]
    ) -> None:
        """Write ``records``, then delete every other vector whose id starts with ``prefix``
        (a document's vectors of chunks that no longer exist)."""
        ...

    def list_ids(self, namespace: str, prefix: str) -> list[str]: ...

    def delete_ids(self, namespace: str, ids: Sequence[str]) -> None: ...

    def query(self, namespace: str, vector: Sequence[float], top_k: int) -> list[Match]: ...
