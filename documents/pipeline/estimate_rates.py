"""The rates the estimate starts from (placeholder, replaced by measured values)."""

from __future__ import annotations

from .estimate import StageRates, TokenRates

# The chunk sizes the token rates were measured at (the production defaults).
MEASURED_CHUNK_TOKENS = {"local": 256, "gemini": 1024}

MEASURED_TOKEN_RATES = {
    "local": TokenRates(
        text_layer=0.25,
        ocr=0.25,
        docx=0.25,
        plain=0.25,
        ocr_chars_per_page=1500,
        chunk_overhead=1.1,
        tokens_per_chunk=230,
        batch_size=16,
    ),
    "gemini": TokenRates(
        text_layer=0.3,
        ocr=0.3,
        docx=0.3,
        plain=0.3,
        ocr_chars_per_page=1500,
        chunk_overhead=1.1,
        tokens_per_chunk=900,
        batch_size=100,
        price_per_million=0.15,
    ),
}

DEFAULT_STAGE_RATES = StageRates(
    downloading_per_mb=0.0,
    estimating_per_page=0.003,
    extracting_per_text_page=0.003,
    extracting_per_ocr_page=1.0,
    chunking_per_1k_tokens=0.004,
    embedding_per_chunk=0.04,
    indexing_per_chunk=0.0005,
)
