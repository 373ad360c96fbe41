"""The estimate's arithmetic, and the stage rates measured from processed documents."""

from __future__ import annotations

import math

import pytest

from documents.pipeline.estimate import (
    MIN_SAMPLE_CHARS,
    Processed,
    StageRates,
    TokenRates,
    estimate,
    measure_stage_rates,
)
from documents.pipeline.preflight import FULL, STRUCTURE, Preflight

TOKENS = TokenRates(
    text_layer=0.25,
    ocr=0.5,
    docx=0.3,
    plain=0.2,
    ocr_chars_per_page=1000,
    chunk_overhead=1.1,
    tokens_per_chunk=200,
    batch_size=16,
    price_per_million=0.15,
    text_chars_per_page=2000,
    docx_chars_per_xml_byte=0.025,
)
STAGES = StageRates(
    downloading_per_mb=0.1,
    estimating_per_page=0.01,
    extracting_per_text_page=0.02,
    extracting_per_ocr_page=2.0,
    chunking_per_1k_tokens=0.5,
    embedding_per_chunk=0.04,
    indexing_per_chunk=0.001,
)


def pdf(**facts) -> Preflight:
    defaults = {
        "kind": "pdf",
        "size_bytes": 2_000_000,
        "depth": FULL,
        "complete": True,
        "pages": 10,
        "pages_with_text": 8,
        "pages_to_ocr": 2,
        "blank_pages": 0,
        "text_chars": 40_000,
    }
    return Preflight(**{**defaults, **facts})


def test_tokens_chunks_requests_and_cost_follow_from_the_characters():
    guess = estimate(pdf(), TOKENS, STAGES)
    text_tokens = 40_000 * 0.25 + 2 * 1000 * 0.5
    assert guess.tokens == math.ceil(text_tokens * 1.1)
    assert guess.chunks == math.ceil(guess.tokens / 200)
    assert guess.requests == math.ceil(guess.chunks / 16)
    assert guess.cost_usd == pytest.approx(guess.tokens * 0.15 / 1e6)
    assert guess.pages_to_ocr == 2 and guess.complete


def test_the_seconds_are_each_stages_work_times_its_rate():
    guess = estimate(pdf(), TOKENS, STAGES)
    stages = guess.stage_seconds
    assert stages["extracting"] == pytest.approx(8 * 0.02 + 2 * 2.0)
    assert stages["embedding"] == pytest.approx(guess.chunks * 0.04, abs=0.01)
    assert stages["downloading"] == pytest.approx(0.2)
    # A complete preflight has already been paid for: no estimating stage left.
    assert stages["estimating"] == 0
    assert guess.seconds == pytest.approx(sum(stages.values()), abs=0.1)
    later = estimate(pdf(), TOKENS, STAGES, estimating_done=False)
    assert later.stage_seconds["estimating"] == pytest.approx(0.1)


def test_a_local_embedder_has_no_cost():
    from dataclasses import replace

    assert estimate(pdf(), replace(TOKENS, price_per_million=None), STAGES).cost_usd is None


def test_an_incomplete_preflight_gives_the_pages_and_nothing_it_cannot_know():
    guess = estimate(pdf(depth=STRUCTURE, complete=False, pages_to_ocr=None), TOKENS, STAGES)
    assert guess.pages == 10
    assert not guess.complete and guess.depth == STRUCTURE
    assert (guess.tokens, guess.cost_usd, guess.seconds) == (None, None, None)


def test_a_structure_preflight_estimates_text_pages_at_the_measured_characters_per_page():
    facts = pdf(depth=STRUCTURE, text_chars=None)  # 8 text pages, 2 to OCR
    guess = estimate(facts, TOKENS, STAGES)
    assert guess.complete and guess.depth == STRUCTURE
    assert guess.chars == 8 * 2000 + 2 * 1000
    assert guess.tokens == math.ceil((8 * 2000 * 0.25 + 2 * 1000 * 0.5) * 1.1)
    assert guess.pages_to_ocr == 2
    assert guess.requests == math.ceil(guess.chunks / 16)
    assert guess.cost_usd == pytest.approx(guess.tokens * 0.15 / 1e6)
    # The estimating stage still runs in the worker, and is counted.
    assert guess.stage_seconds["estimating"] == pytest.approx(10 * 0.01)
    assert estimate(pdf(), TOKENS, STAGES).depth == FULL


def test_a_structure_preflight_of_a_word_file_estimates_from_its_xml_bytes():
    facts = Preflight(
        kind="docx",
        size_bytes=50_000,
        depth=STRUCTURE,
        complete=True,
        pages=1,
        pages_with_text=1,
        pages_to_ocr=0,
        docx_xml_bytes=400_000,
    )
    guess = estimate(facts, TOKENS, STAGES)
    assert guess.chars == 400_000 * 0.025
    assert guess.tokens == math.ceil(400_000 * 0.025 * 0.3 * 1.1)
    assert guess.pages_to_ocr == 0


def test_a_large_enough_token_sample_replaces_the_kinds_rate():
    sampled = pdf(pages_to_ocr=0, sample_chars=4000, sample_tokens=3000)  # 0.75 per char
    assert estimate(sampled, TOKENS, STAGES).tokens == math.ceil(40_000 * 0.75 * 1.1)
    tiny = pdf(pages_to_ocr=0, sample_chars=MIN_SAMPLE_CHARS - 1, sample_tokens=1000)
    assert estimate(tiny, TOKENS, STAGES).tokens == math.ceil(40_000 * 0.25 * 1.1)


def test_a_small_sample_that_is_the_whole_text_is_used():
    whole = pdf(pages_to_ocr=0, text_chars=100, sample_chars=100, sample_tokens=50)
    assert estimate(whole, TOKENS, STAGES).tokens == math.ceil(50 * 1.1)


def test_an_empty_document_costs_no_chunk_and_no_request():
    guess = estimate(pdf(pages_to_ocr=0, text_chars=0), TOKENS, STAGES)
    assert (guess.tokens, guess.chunks, guess.requests) == (0, 0, 0)


def sample(pages, ocr_pages, extracting, **more) -> Processed:
    return Processed(
        size_bytes=1_000_000,
        pages=pages,
        ocr_pages=ocr_pages,
        tokens=more.pop("tokens", 1000),
        chunks=more.pop("chunks", 10),
        stage_seconds={"extracting": extracting, **more},
    )


def test_stage_rates_are_ratios_of_sums_and_separate_ocr_from_text_pages():
    rates = measure_stage_rates(
        [
            sample(10, 0, 0.2, embedding=1.0),  # text pages at 0.02 s
            sample(30, 0, 0.6, embedding=3.0, chunks=30),
            sample(5, 2, 7.06),  # 3 text pages (0.06 s) + 2 OCR pages
        ],
        STAGES,
    )
    assert rates.extracting_per_text_page == pytest.approx(0.02)
    assert rates.extracting_per_ocr_page == pytest.approx((7.06 - 3 * 0.02) / 2)
    assert rates.embedding_per_chunk == pytest.approx(4.0 / 40)
    assert rates.documents == 3
    # No sample timed chunking: its default stays.
    assert rates.chunking_per_1k_tokens == STAGES.chunking_per_1k_tokens


def test_without_any_processed_document_the_defaults_are_used():
    assert measure_stage_rates([], STAGES) == STAGES


def test_one_tiny_document_cannot_swing_a_rate():
    samples = [sample(1, 0, 0.1, embedding=35.0, chunks=1)] + [
        sample(1, 0, 0.1, embedding=0.1 * n, chunks=n) for n in (500, 1000, 2000)
    ]
    # 35 s on one chunk (a model loading) against 350 s on 3,500 chunks.
    assert measure_stage_rates(samples, STAGES).embedding_per_chunk == pytest.approx(385 / 3501)
