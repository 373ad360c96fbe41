"""The preflight estimate of a document, from settings and from what this system measured.

The pure parts are in ``documents/pipeline/preflight.py`` (what a file is made of) and
``documents/pipeline/estimate.py`` (what that will cost). This module supplies what they
need from Django: the configured embedder's token counter, chunk and batch sizes and price
(``GEMINI_PRICE_PER_MILLION_TOKENS``), and the seconds per page and per chunk each stage took
on the documents completed most recently (their ``stage_timings`` and ``actuals``), so the
expected time follows the machines the workers run on.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from documents.clients import extract_options, get_embedder
from documents.models import Document, Stage, Status
from documents.pipeline import preflight as preflight_pass
from documents.pipeline.estimate import (
    Processed,
    StageRates,
    TokenRates,
    estimate,
    measure_stage_rates,
)
from documents.pipeline.estimate_rates import (
    DEFAULT_STAGE_RATES,
    MEASURED_CHUNK_TOKENS,
    MEASURED_TOKEN_RATES,
)
from documents.pipeline.preflight import Preflight

_STAGE_RATES_CACHE_KEY = "documents:estimate:stage-rates"


def token_rates() -> TokenRates:
    """The measured rates of the configured embedder, at the configured chunk size, batch
    size and price."""
    kind = settings.EMBEDDER
    measured = MEASURED_TOKEN_RATES[kind]
    chunk_tokens = settings.CHUNK_TOKENS[kind]
    if kind == "gemini":
        batch, price = measured.batch_size, settings.GEMINI_PRICE_PER_MILLION_TOKENS
    else:
        batch, price = settings.LOCAL_EMBEDDING_BATCH_SIZE, None
    return replace(
        measured,
        # Chunks fill to about the same share of their limit whatever the limit is.
        tokens_per_chunk=measured.tokens_per_chunk * chunk_tokens / MEASURED_CHUNK_TOKENS[kind],
        batch_size=batch,
        price_per_million=price,
    )


def stage_rates() -> StageRates:
    """Seconds per unit of each stage, from the last ``ESTIMATE_RECENT_DOCUMENTS`` completed
    documents; recomputed at most once a minute per process."""
    rates = cache.get(_STAGE_RATES_CACHE_KEY)
    if rates is None:
        rates = measure_stage_rates(recent_processed(), DEFAULT_STAGE_RATES)
        cache.set(_STAGE_RATES_CACHE_KEY, rates, 60)
    return rates


def recent_processed(limit: int | None = None) -> list[Processed]:
    # Newest uploads first, through the created_at index: the completed documents among the
    # latest uploads, without sorting every completed document by its finish time.
    rows = (
        Document.objects.filter(status=Status.COMPLETED)
        .exclude(actuals={})
        .order_by("-created_at")
        .values("size_bytes", "actuals", "stage_timings")[
            : limit or settings.ESTIMATE_RECENT_DOCUMENTS
        ]
    )
    samples = []
    for row in rows:
        actuals, timings = row["actuals"] or {}, row["stage_timings"] or {}
        seconds = {
            stage: t["seconds"]
            for stage, t in timings.items()
            if isinstance(t, dict) and isinstance(t.get("seconds"), int | float)
        }
        try:
            samples.append(
                Processed(
                    size_bytes=row["size_bytes"],
                    pages=int(actuals.get("pages") or 0),
                    ocr_pages=int(actuals.get("ocr_pages") or 0),
                    tokens=int(actuals.get("tokens") or 0),
                    chunks=int(actuals.get("chunks") or 0),
                    stage_seconds=seconds,
                )
            )
        except (TypeError, ValueError):
            continue
    return samples


def inspect(source, *, content_type: str, size_bytes: int, depth: str) -> Preflight:
    """The preflight of a file with the configured embedder's counter for the token sample."""
    return preflight_pass.inspect(
        source,
        content_type=content_type,
        size_bytes=size_bytes,
        depth=depth,
        max_pages=settings.PIPELINE_MAX_PAGES,
        counter=get_embedder(),
        budgets=extract_options(),
    )


def preflight_record(facts: Preflight, *, estimating_done: bool | None = None) -> dict:
    """What is stored in ``Document.preflight``: the facts, the estimate made from them and
    when."""
    guess = estimate(facts, token_rates(), stage_rates(), estimating_done=estimating_done)
    return {
        "facts": facts.as_dict(),
        "estimate": guess.as_dict(),
        "estimated_at": timezone.now().isoformat(),
    }


def actuals(*, pages, chunks, ocr_pages: int, timings: dict) -> dict:
    """What processing found, in the estimate's units."""
    tokens = sum(c.token_count for c in chunks)
    rates = token_rates()
    seconds = sum(t["seconds"] for t in timings.values() if isinstance(t, dict) and "seconds" in t)
    return {
        "pages": len(pages),
        "ocr_pages": ocr_pages,
        "chars": sum(len(p.text) for p in pages),
        "tokens": tokens,
        "chunks": len(chunks),
        "requests": math.ceil(len(chunks) / max(1, rates.batch_size)),
        "cost_usd": tokens * rates.price_per_million / 1_000_000
        if rates.price_per_million is not None
        else None,
        "seconds": round(seconds, 2),
    }


def expected_finish(document: Document, *, now=None):
    """When a processing document should be done: its start (or now, while it waits in the
    queue) plus the estimated seconds. None when it is not processing, is held, or has no
    complete estimate yet. The wait in the queue behind other documents is not counted."""
    seconds = document.estimate.get("seconds")
    if document.status != Status.PROCESSING or document.stage == Stage.HELD or seconds is None:
        return None
    if document.stage in (Stage.QUEUED, Stage.WAITING) or document.started_at is None:
        start = now or timezone.now()
    else:
        start = document.started_at
    return start + timedelta(seconds=seconds)


COST_LABEL = "Cost (USD)"
# The quantities the admin compares, in order, with their labels.
COMPARED = [
    ("pages", "Pages"),
    ("pages_to_ocr", "Pages read with OCR"),
    ("tokens", "Tokens"),
    ("chunks", "Chunks"),
    ("requests", "Embedding requests"),
    ("cost_usd", COST_LABEL),
    ("seconds", "Processing seconds"),
]


def comparison(document: Document) -> list[tuple[str, object, object]]:
    """(label, estimated, actual) for each compared quantity."""
    guess = document.estimate
    actual = dict(document.actuals or {})
    actual.setdefault("pages_to_ocr", actual.get("ocr_pages"))
    return [(label, guess.get(key), actual.get(key)) for key, label in COMPARED]


def totals(documents) -> dict:
    """The sums of the estimates of ``documents`` (a queryset), and how many had none yet."""
    keys = ["pages", "pages_to_ocr", "tokens", "chunks", "requests", "cost_usd", "seconds"]
    sums = dict.fromkeys(keys, 0)
    counted = estimating = 0
    for preflight in documents.values_list("preflight", flat=True).iterator():
        guess = (preflight or {}).get("estimate") or {}
        if not guess.get("complete"):
            estimating += 1
            continue
        counted += 1
        for key in keys:
            value = guess.get(key)
            if isinstance(value, int | float):
                sums[key] += value
    sums["cost_usd"] = round(sums["cost_usd"], 4) if token_rates().price_per_million else None
    return {"documents": counted, "estimating": estimating, **sums}
