"""The shared Gemini quota (documents/pipeline/ratelimit.py): requests split to fit the
per-minute token budget, the headroom, and a claim kept alive while a batch waits."""

from __future__ import annotations

import pytest

from documents.errors import FailureKind, PermanentError, TransientError
from documents.pipeline.embedders.gemini import GeminiEmbedder
from documents.pipeline.ratelimit import QuotaLimiter, RateLimitedEmbedder, while_waiting
from tests.doubles.gemini import GeminiDouble


def limiter(**kwargs) -> QuotaLimiter:
    options = {"requests_per_minute": 3000, "tokens_per_minute": 1_000_000}
    options.update(kwargs)
    return QuotaLimiter(storage_uri="memory://", name="test", **options)


def test_the_budgets_are_the_quotas_less_the_headroom():
    quota = limiter(requests_per_minute=3000, tokens_per_minute=300_000, headroom=0.03)
    assert (quota.requests_per_minute, quota.tokens_per_minute) == (2910, 291_000)


def test_a_batch_over_the_per_minute_token_budget_goes_out_in_requests_that_fit():
    embedder = RateLimitedEmbedder(GeminiEmbedder(api_key="k"), limiter(tokens_per_minute=8000))
    costs = [900] * 30  # 27,000 tokens: the whole batch could never be admitted
    groups = embedder.request_groups(costs)
    assert [g for g in groups if sum(costs[g[0] : g[1]]) > 1000] == []  # an eighth: 1,000
    assert groups[0] == (0, 1) and groups[-1] == (29, 30)
    assert [i for g in groups for i in range(*g)] == list(range(30))  # in order, none lost


def test_requests_hold_at_most_the_batch_size_and_the_request_budget():
    embedder = RateLimitedEmbedder(GeminiEmbedder(api_key="k"), limiter(requests_per_minute=40))
    groups = embedder.request_groups([10] * 100)
    assert {end - start for start, end in groups} == {40, 20}
    embedder = RateLimitedEmbedder(GeminiEmbedder(api_key="k", batch_size=25), limiter())
    assert len(embedder.request_groups([10] * 100)) == 4


def test_split_requests_stay_within_the_doubles_token_quota(gemini_double):
    double = GeminiDouble(tokens_per_minute=2000)
    with double:
        gemini = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=double.url)
        embedder = RateLimitedEmbedder(gemini, limiter(tokens_per_minute=2000, headroom=0.03))
        texts = [f"Chunk {i}: the harbour tide table for week {i} of 2026." for i in range(40)]
        vectors = embedder.embed_documents(texts, title="Tides")
    assert len(vectors) == 40
    assert len(double.batch_sizes()) > 1 and all(r.status == 200 for r in double.embed_requests)


def test_a_text_that_no_budget_can_ever_admit_is_a_permanent_failure():
    with pytest.raises(PermanentError) as caught:
        limiter(tokens_per_minute=100).acquire(requests=1, tokens=500)
    assert caught.value.kind == FailureKind.REJECTED and "500 tokens" in caught.value.message


def test_a_batch_waiting_for_room_keeps_the_claim_alive_then_gives_up_at_max_wait():
    quota = limiter(requests_per_minute=2)
    quota.acquire(requests=2, tokens=10)
    beats = []
    with while_waiting(lambda: beats.append(1)), pytest.raises(TransientError) as caught:
        quota.acquire(requests=1, tokens=10, max_wait=1.2)
    assert caught.value.kind == FailureKind.RATE_LIMITED and 50 <= caught.value.retry_after <= 61
    assert len(beats) >= 2
    quota.acquire(requests=0, tokens=10)  # outside the block: nothing to call, nothing breaks
