"""The rates the estimate starts from.

Token rates: fitted on every readable file of the shared corpus by bench/bench_preflight.py
(docs/measurements.md, "Tokens per character"), with each embedder's own counter at the
production chunk sizes. The per-kind rates matter only when the preflight has no token sample
of the document itself (OCR pages always; a PDF whose sampled pages hold under
MIN_SAMPLE_CHARS); the corpus has no plain-text file, so text files use the PDF text-layer
rate until their sample replaces it.

Structure rates (``TEXT_CHARS_PER_PAGE``, ``DOCX_CHARS_PER_XML_BYTE``): the same bench's ratio of
sums over the corpus PDFs and Word files whose structure pass succeeded -- the characters the
full pass counts over the text pages the structure pass finds, and over the uncompressed bytes
of the Word text parts (README, "The preflight estimate against what processing found").

Stage rates: used until this system has completed documents of its own to measure
(documents/estimates.py); from the benchmark figures in the README (bench_extract.py,
bench_chunk_embed.py, bench_end_to_end.py on this 2-core machine).
"""

from __future__ import annotations

from .estimate import StageRates, TokenRates

# The chunk sizes the token rates were measured at (the production defaults).
MEASURED_CHUNK_TOKENS = {"local": 256, "gemini": 1024}

# What the structure-depth estimate turns text pages and Word XML into (not the embedder's, so
# one value for both).
TEXT_CHARS_PER_PAGE = 1948.0
DOCX_CHARS_PER_XML_BYTE = 0.0244

MEASURED_TOKEN_RATES = {
    "local": TokenRates(
        text_layer=0.2692,
        ocr=0.2401,
        docx=0.714,
        plain=0.2692,
        ocr_chars_per_page=2242,
        chunk_overhead=1.0586,
        tokens_per_chunk=220.5,
        batch_size=16,
        text_chars_per_page=TEXT_CHARS_PER_PAGE,
        docx_chars_per_xml_byte=DOCX_CHARS_PER_XML_BYTE,
    ),
    "gemini": TokenRates(
        text_layer=0.3428,
        ocr=0.3365,
        docx=0.7208,
        plain=0.3428,
        ocr_chars_per_page=2242,
        chunk_overhead=1.0626,
        tokens_per_chunk=937.1,
        batch_size=100,
        price_per_million=0.15,
        text_chars_per_page=TEXT_CHARS_PER_PAGE,
        docx_chars_per_xml_byte=DOCX_CHARS_PER_XML_BYTE,
    ),
}

DEFAULT_STAGE_RATES = StageRates(
    downloading_per_mb=0.01,
    # the full preflight: about what reading the text layers costs
    estimating_per_page=0.003,
    extracting_per_text_page=0.0025,
    # two pages at a time (OCR_PARALLEL_PAGES), 200 DPI
    extracting_per_ocr_page=0.94,
    chunking_per_1k_tokens=0.004,
    # MiniLM, batches of 16 (a Gemini request of 100 texts takes about as long per chunk)
    embedding_per_chunk=0.04,
    indexing_per_chunk=0.0005,
)
