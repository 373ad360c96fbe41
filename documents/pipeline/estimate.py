"""What a document will cost before it is processed: pages to OCR, tokens, chunks, embedding
requests, the price of those tokens, and how long each stage will take.

Two kinds of rates go in, both plain values:

* ``TokenRates`` turn characters into the configured embedder's tokens and chunks. They were
  measured on the shared corpus by bench/bench_preflight.py, counting each extracted page with
  the embedder's own counter and chunking it with the production chunker.
* ``StageRates`` turn pages, tokens and chunks into seconds. ``measure_stage_rates`` computes
  them from documents this system processed recently (their stage timings and what they
  turned out to contain), so the expected time follows the machine it runs on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .preflight import FULL, STRUCTURE, Preflight

# A token sample smaller than this (a title page, a short form) says little about the rest of
# a longer text: the measured rate of the kind of text is used instead.
MIN_SAMPLE_CHARS = 400

# The order the stages run in, as they are named in Document.stage_timings.
TIMED_STAGES = ("downloading", "estimating", "extracting", "chunking", "embedding", "indexing")


@dataclass(frozen=True)
class TokenRates:
    """Tokens per character of each kind of text, for one embedder's counter and chunk size."""

    text_layer: float  # a PDF's text layer
    ocr: float  # text read by OCR
    docx: float  # a Word document's text
    plain: float  # a text or Markdown file
    # characters OCR reads from a page (there is no text to count before OCR runs)
    ocr_chars_per_page: float
    # billed tokens (the sum over chunks) per token of text: overlap and sentence ends
    chunk_overhead: float
    # tokens in a chunk, on average
    tokens_per_chunk: float
    batch_size: int
    # US dollars per million input tokens; None when the embedder is not billed (local)
    price_per_million: float | None = None
    # At structure depth no text is counted: a PDF text page holds this many characters (as
    # the full pass counts them), and a Word file this many per uncompressed byte of its
    # text parts' XML. Independent of the embedder.
    text_chars_per_page: float = 0.0
    docx_chars_per_xml_byte: float = 0.0


@dataclass(frozen=True)
class StageRates:
    """Seconds per unit of work for each stage."""

    downloading_per_mb: float
    estimating_per_page: float
    extracting_per_text_page: float
    extracting_per_ocr_page: float
    chunking_per_1k_tokens: float
    embedding_per_chunk: float
    indexing_per_chunk: float
    # how many processed documents the rates come from (0: the defaults)
    documents: int = 0


@dataclass(frozen=True)
class Estimate:
    complete: bool
    # "structure": from the file's structure at upload; "full": from every page's text layer
    depth: str
    pages: int | None
    pages_to_ocr: int | None
    chars: int | None
    tokens: int | None
    chunks: int | None
    requests: int | None
    cost_usd: float | None
    seconds: float | None
    stage_seconds: dict = field(default_factory=dict)
    rates_from_documents: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def estimate(
    preflight: Preflight,
    tokens: TokenRates,
    stages: StageRates,
    *,
    estimating_done: bool | None = None,
) -> Estimate:
    """The estimate for a document. With an incomplete preflight (the file's structure
    could not be judged, or the file could not be opened) only the page count is given; the
    rest waits for the ``estimating`` stage. ``estimating_done``: whether the time of that
    stage is already spent (default: when the preflight is complete and read every page)."""
    if not preflight.complete:
        return Estimate(
            complete=False,
            depth=preflight.depth,
            pages=preflight.pages,
            pages_to_ocr=None,
            chars=None,
            tokens=None,
            chunks=None,
            requests=None,
            cost_usd=None,
            seconds=None,
            rates_from_documents=stages.documents,
        )
    pages_to_ocr = preflight.pages_to_ocr or 0
    text_chars = (
        preflight.text_chars if preflight.text_chars is not None else _text_chars(preflight, tokens)
    )
    ocr_chars = pages_to_ocr * tokens.ocr_chars_per_page
    per_char = {
        "pdf": tokens.text_layer,
        "docx": tokens.docx,
        "text": tokens.plain,
        "image": tokens.ocr,
    }.get(preflight.kind, tokens.plain)
    sample = preflight.sample_chars
    # A sample is trusted when it is large enough, or when it is the whole text.
    if sample and (sample >= MIN_SAMPLE_CHARS or sample >= text_chars):
        per_char = preflight.sample_tokens / sample
    text_tokens = text_chars * per_char + ocr_chars * tokens.ocr
    billed = math.ceil(text_tokens * tokens.chunk_overhead)
    chunks = math.ceil(billed / tokens.tokens_per_chunk) if billed else 0
    requests = math.ceil(chunks / max(1, tokens.batch_size)) if chunks else 0
    cost = (
        billed * tokens.price_per_million / 1_000_000
        if tokens.price_per_million is not None
        else None
    )
    stage_seconds = _stage_seconds(
        preflight,
        stages,
        pages_to_ocr=pages_to_ocr,
        tokens=billed,
        chunks=chunks,
        estimating_done=preflight.depth == FULL if estimating_done is None else estimating_done,
    )
    return Estimate(
        complete=True,
        depth=preflight.depth,
        pages=preflight.pages,
        pages_to_ocr=pages_to_ocr,
        chars=round(text_chars + ocr_chars),
        tokens=billed,
        chunks=chunks,
        requests=requests,
        cost_usd=cost,
        seconds=round(sum(stage_seconds.values()), 1),
        stage_seconds=stage_seconds,
        rates_from_documents=stages.documents,
    )


def _text_chars(preflight: Preflight, tokens: TokenRates) -> float:
    """The characters of a structure-depth preflight, which counted none."""
    if preflight.depth != STRUCTURE:
        return 0
    if preflight.kind == "pdf":
        return (preflight.pages_with_text or 0) * tokens.text_chars_per_page
    if preflight.kind == "docx":
        return (preflight.docx_xml_bytes or 0) * tokens.docx_chars_per_xml_byte
    return 0


def _stage_seconds(preflight, rates: StageRates, *, pages_to_ocr, tokens, chunks, estimating_done):
    pages = preflight.pages or 0
    work = {
        "downloading": preflight.size_bytes / 1_000_000 * rates.downloading_per_mb,
        "extracting": max(0, pages - pages_to_ocr) * rates.extracting_per_text_page
        + pages_to_ocr * rates.extracting_per_ocr_page,
        "chunking": tokens / 1000 * rates.chunking_per_1k_tokens,
        "embedding": chunks * rates.embedding_per_chunk,
        "indexing": chunks * rates.indexing_per_chunk,
    }
    if not estimating_done and preflight.kind in ("pdf", "docx"):
        work["estimating"] = pages * rates.estimating_per_page
    return {stage: round(work.get(stage, 0.0), 2) for stage in TIMED_STAGES}


# --- the rates, from documents processed here ---------------------------------------------------


@dataclass(frozen=True)
class Processed:
    """What one processed document turned out to be, and the seconds each stage took."""

    size_bytes: int
    pages: int
    ocr_pages: int
    tokens: int
    chunks: int
    stage_seconds: dict


# The work each stage does, in the unit of its rate.
_WORK = {
    "downloading": lambda s: s.size_bytes / 1_000_000,
    "estimating": lambda s: s.pages,
    "chunking": lambda s: s.tokens / 1000,
    "embedding": lambda s: s.chunks,
    "indexing": lambda s: s.chunks,
}


def measure_stage_rates(samples: Iterable[Processed], defaults: StageRates) -> StageRates:
    """Seconds per unit for each stage: the total time of that stage over the total work of
    the documents that ran it -- a ratio of sums, so the large documents that make up most
    of the time decide it, and one tiny document timed at a few milliseconds cannot swing
    it. A stage no sample measured keeps its default. (A fixed cost per document on top,
    fitted as the median excess, was tried on the corpus: it halved no error and made the
    smallest documents' estimates worse; bench/bench_preflight.py.)

    Extraction mixes two very different costs; the text-page rate comes from documents read
    without OCR, and the OCR rate from the rest, once their text pages are paid for."""
    samples = [s for s in samples if s.stage_seconds]
    if not samples:
        return defaults
    rates = {
        stage: _ratio_of_sums(
            (float(s.stage_seconds[stage]), work(s)) for s in samples if _timed(s, stage)
        )
        for stage, work in _WORK.items()
    }
    text_page = _ratio_of_sums(
        (float(s.stage_seconds["extracting"]), s.pages)
        for s in samples
        if _timed(s, "extracting") and s.ocr_pages == 0
    )
    text_page = defaults.extracting_per_text_page if text_page is None else text_page
    ocr_page = _ratio_of_sums(
        (
            max(0.0, float(s.stage_seconds["extracting"]) - (s.pages - s.ocr_pages) * text_page),
            s.ocr_pages,
        )
        for s in samples
        if s.ocr_pages and _timed(s, "extracting")
    )

    def pick(stage, default):
        return default if rates.get(stage) is None else rates[stage]

    return StageRates(
        downloading_per_mb=pick("downloading", defaults.downloading_per_mb),
        estimating_per_page=pick("estimating", defaults.estimating_per_page),
        extracting_per_text_page=text_page,
        extracting_per_ocr_page=defaults.extracting_per_ocr_page if ocr_page is None else ocr_page,
        chunking_per_1k_tokens=pick("chunking", defaults.chunking_per_1k_tokens),
        embedding_per_chunk=pick("embedding", defaults.embedding_per_chunk),
        indexing_per_chunk=pick("indexing", defaults.indexing_per_chunk),
        documents=len(samples),
    )


def _timed(sample: Processed, stage: str) -> bool:
    return isinstance(sample.stage_seconds.get(stage), int | float)


def _ratio_of_sums(pairs) -> float | None:
    rows = [(float(t), w) for t, w in pairs if t is not None and w]
    total = sum(w for _, w in rows)
    return sum(t for t, _ in rows) / total if total else None
