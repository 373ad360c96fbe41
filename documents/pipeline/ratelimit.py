"""One request and token budget per minute shared by every worker process.

Gemini's quotas are per project and per minute (reference A.3), and a batch costs one request
per text in it (A.2), so each batch takes ``len(texts)`` from the request budget and its
estimated tokens from the token budget before it is sent. The counters live in Redis when the
broker is Redis (the ``limits`` library's moving window), so four processes on two machines
share one budget; on the embedded defaults they live in the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from documents.errors import FailureKind, TransientError

logger = logging.getLogger(__name__)


class QuotaLimiter:
    def __init__(
        self, *, storage_uri: str, name: str, requests_per_minute: int, tokens_per_minute: int
    ):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._name = name
        self._budgets = [
            ("requests", RateLimitItemPerMinute(requests_per_minute), requests_per_minute),
            ("tokens", RateLimitItemPerMinute(tokens_per_minute), tokens_per_minute),
        ]

    def acquire(self, *, requests: int, tokens: int, max_wait: float = 60.0) -> float:
        """Block until both budgets have room, then take from them; returns seconds waited.
        Waiting longer than ``max_wait`` raises a rate-limit TransientError instead.

        The limiter only spares us 429s: when its storage (Redis) cannot be reached it lets
        the request through rather than failing the document, and the provider's own 429s
        are still handled by the retry and parking logic."""
        try:
            return self._acquire(requests=requests, tokens=tokens, max_wait=max_wait)
        except TransientError:
            raise
        except Exception as exc:  # noqa: BLE001 - a limiter outage must not stop ingestion
            logger.warning("rate limiter unavailable, request let through: %s", exc)
            return 0.0

    def _acquire(self, *, requests: int, tokens: int, max_wait: float) -> float:
        waited = 0.0
        for kind, item, limit in self._budgets:
            if not limit:
                continue
            cost = min(limit, requests if kind == "requests" else tokens)
            while not self._limiter.hit(item, self._name, kind, cost=cost):
                stats = self._limiter.get_window_stats(item, self._name, kind)
                pause = min(max(stats.reset_time - time.time(), 0.05), 5.0)
                if waited + pause > max_wait:
                    raise TransientError(
                        f"The {kind} per minute quota for {self._name} is used up; "
                        "processing will resume when it frees.",
                        FailureKind.RATE_LIMITED,
                        retry_after=max(stats.reset_time - time.time(), 1.0),
                    )
                time.sleep(pause)
                waited += pause
        return waited


class RateLimitedEmbedder:
    """Wraps an embedder so every batch first takes its share of the shared quota."""

    def __init__(self, embedder, limiter: QuotaLimiter):
        self._embedder = embedder
        self._limiter = limiter

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_documents(self, texts: Sequence[str], *, title: str = "") -> list[list[float]]:
        tokens = sum(self._embedder.count_tokens(t) for t in texts)
        self._limiter.acquire(requests=len(texts), tokens=tokens)
        return self._embedder.embed_documents(texts, title=title)

    def embed_query(self, text: str) -> list[float]:
        self._limiter.acquire(requests=1, tokens=self._embedder.count_tokens(text))
        return self._embedder.embed_query(text)
