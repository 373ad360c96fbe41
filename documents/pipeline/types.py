"""Typed values passed between the pipeline stages, and the interfaces of the pluggable parts.

The stages are plain functions; only ``run.py`` touches the database. Everything here is
free of Django so that the stages can be tested and benchmarked on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

    def close(self) -> None:
        """Stop reading: the Tesseract processes still running are killed and waited for,
        the temporary files removed, the file closed. Call it when not reading to the end
        (an error, a cancellation); reading to the end does it too."""
        close = getattr(self.pages, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class ExtractOptions:
    """How to read a document, and the budgets it is read within (budgets.py): a document
    over one fails at once with a ``BudgetExceeded`` of its own kind, never retried. The
    defaults leave every file of the shared corpus as it was (README: "Budgets")."""

    # PDF pages and TIFF frames per document
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
    # uncompressed bytes of any one part of a ZIP package (DOCX), from the archive directory
    # and again while inflating (the defaults against the corpus: docs/measurements.md)
    max_zip_part_bytes: int = 64_000_000
    # uncompressed / compressed size of a ZIP part of more than 1 MB
    max_zip_ratio: float = 200
    # inflated bytes of any one stream a PDF page draws (content, forms, fonts, patterns),
    # checked before PDFium parses the page; PDFium's own cap is 1 GiB
    max_pdf_stream_bytes: int = 100_000_000
    # pixels of an image file, a TIFF frame, or an image on a PDF page to OCR, from headers
    # before decoding. Image files also stop at Pillow's decompression-bomb warning (an
    # error here), whichever is lower.
    max_image_pixels: int = 100_000_000
    # pages read with OCR per document, counted before the first one is read
    max_ocr_pages: int = 300
    # characters of text per document
    max_chars: int = 10_000_000
    # wall time to extract one document, checked between pages and while OCR runs
    max_seconds: float = 1200


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


@dataclass(frozen=True)
class DeleteCheck:
    """One look at the index for ids that were deleted.

    ``present``: how many of them a read still returned. ``proven``: the reads are known to
    reflect the last write of those ids (a log sequence number at least the one that write
    was committed at), so their absence means the delete is applied, not that the write is
    not visible yet. A strongly consistent store is always proven."""

    present: int
    proven: bool

    @property
    def confirmed(self) -> bool:
        return self.present == 0 and self.proven


class VectorStore(Protocol):
    """A vector index partitioned into namespaces; a call never crosses namespaces.

    Writes return the highest log sequence number (LSN) the store reported for them, or None
    when it reports none. ``consistent`` is True when every read reflects every
    acknowledged write at once (LanceDB); Pinecone's reads lag its writes."""

    consistent: bool

    def dimension(self) -> int | None:
        """The index's dimension, or None when it has none yet (an empty local store)."""
        ...

    def upsert(
        self,
        namespace: str,
        records: Sequence[VectorRecord],
        *,
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> int | None:
        """Write ``records``; ``on_batch(written, lsn)`` after each request (records written
        so far, that request's LSN), so the caller can keep its claim alive between batches
        and record every LSN even if a later request fails."""
        ...

    def upsert_replacing(
        self,
        namespace: str,
        prefix: str,
        records: Sequence[VectorRecord],
        *,
        stale_ids: Sequence[str] = (),
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> int | None:
        """Write ``records``, then delete ``stale_ids`` (a document's ids of chunks that no
        longer exist, known from the database, never from a listing that may lag). A store
        whose listing is consistent may also drop any other id under ``prefix``."""
        ...

    def list_ids(self, namespace: str, prefix: str) -> list[str]: ...

    def delete_ids(self, namespace: str, ids: Sequence[str]) -> None: ...

    def check_deleted(
        self, namespace: str, ids: Sequence[str], *, written_lsn: int | None
    ) -> DeleteCheck:
        """Whether the reads still return any of ``ids``; ``written_lsn`` is the highest LSN
        any write of them was committed at (None when unknown)."""
        ...

    def delete_namespace(self, namespace: str) -> None:
        """Remove the namespace itself (a deleted tenant's), not only its records."""
        ...

    def query(self, namespace: str, vector: Sequence[float], top_k: int) -> list[Match]: ...
