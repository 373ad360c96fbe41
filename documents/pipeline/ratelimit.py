"""One request and token budget per minute shared by every worker process.

Gemini's quotas are per project and per minute, and a batch costs one request per text in it
(docs/external-services.md), so each batch takes ``len(texts)`` from the request budget and its
estimated tokens from the token budget before it is sent. The counters live in Redis when the
broker is Redis (the ``limits`` library's moving window), so four processes on two machines
share one budget; on the embedded defaults they live in the process.

The budgets are the quotas less a headroom (``GEMINI_QUOTA_HEADROOM``): our window starts its
clock when a batch is sent, Google's when it arrives, and our token count is a model of
Gemini's tokenizer. A batch is split so that no request costs more than an eighth of the
per-minute token budget: one above the whole budget would be refused every time, and smaller
requests fit into the room the moving window frees as it moves, which keeps the quota used.

Two clocks never agree exactly: a request held up on its way (a busy machine) can reach
Google after the next one and land in the same minute, and get a per-minute 429. Such a 429
is waited out here, inside the embedding stage, for the delay the service gives (plus a
second: its RetryInfo is rounded down), up to ``PER_MINUTE_RETRIES`` times, with the claim
kept alive -- so it never ends the attempt or reaches the document's attempt log. A per-day
429 (hours away) and a 429 that keeps coming go up to the runner, which parks or retries.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from documents.errors import FailureKind, PermanentError, TransientError

logger = logging.getLogger(__name__)

# Called while a batch waits for room in the budget, so the runner's claim stays alive.
_while_waiting: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "while_waiting", default=None
)
# Longest pause between two looks at the budget: room appears as the window moves, and four
# processes waiting on it should notice within a fraction of a second.
_MAX_PAUSE = 0.5
# A request takes at most this share of the per-minute token budget.
_REQUEST_SHARE = 8
# Per-minute 429s waited out in the stage before the attempt gives up on the batch.
PER_MINUTE_RETRIES = 3
_PER_MINUTE = 60.0


@contextlib.contextmanager
def while_waiting(callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` between looks at the budget while a batch waits in this block."""
    token = _while_waiting.set(callback)
    try:
        yield
    finally:
        _while_waiting.reset(token)


class QuotaLimiter:
    def __init__(
        self,
        *,
        storage_uri: str,
        name: str,
        requests_per_minute: int,
        tokens_per_minute: int,
        headroom: float = 0.0,
        max_wait: float = 600.0,
    ):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._name = name
        self.max_wait = max_wait
        self.requests_per_minute = int(requests_per_minute * (1.0 - headroom))
        self.tokens_per_minute = int(tokens_per_minute * (1.0 - headroom))
        self._budgets = [
            (kind, RateLimitItemPerMinute(limit), limit)
            for kind, limit in (
                ("requests", self.requests_per_minute),
                ("tokens", self.tokens_per_minute),
            )
            if limit > 0
        ]

    def acquire(self, *, requests: int, tokens: int, max_wait: float | None = None) -> float:
        """Block until both budgets have room, then take from them; returns seconds waited.
        Waiting longer than ``max_wait`` raises a rate-limit TransientError instead.

        The limiter only spares us 429s: when its storage (Redis) cannot be reached it lets
        the request through rather than failing the document, and the provider's own 429s
        are still handled by the retry and parking logic."""
        max_wait = self.max_wait if max_wait is None else max_wait
        try:
            return self._acquire(requests=requests, tokens=tokens, max_wait=max_wait)
        except (TransientError, PermanentError):
            raise
        except Exception as exc:  # noqa: BLE001 - a limiter outage must not stop ingestion
            logger.warning("rate limiter unavailable, request let through: %s", exc)
            return 0.0

    def _acquire(self, *, requests: int, tokens: int, max_wait: float) -> float:
        waited = 0.0
        keep_alive = _while_waiting.get()
        for kind, item, limit in self._budgets:
            cost = requests if kind == "requests" else tokens
            if cost > limit:
                # never fits, however long we wait; the caller splits batches so it cannot
                raise PermanentError(
                    f"A request of {cost} {kind} is more than the {kind} per minute quota "
                    f"({limit} after headroom) can ever admit.",
                    FailureKind.REJECTED,
                )
            while not self._limiter.hit(item, self._name, kind, cost=cost):
                stats = self._limiter.get_window_stats(item, self._name, kind)
                pause = min(max(stats.reset_time - time.time(), 0.05), _MAX_PAUSE)
                if waited + pause > max_wait:
                    raise TransientError(
                        f"The {kind} per minute quota for {self._name} is used up; "
                        "processing will resume when it frees.",
                        FailureKind.RATE_LIMITED,
                        retry_after=max(stats.reset_time - time.time(), 1.0),
                    )
                time.sleep(pause)
                waited += pause
                if keep_alive is not None:
                    keep_alive()
        return waited


def _pause(seconds: float) -> None:
    """Sleep, calling the while_waiting hook about once a second."""
    keep_alive = _while_waiting.get()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        if keep_alive is not None:
            keep_alive()


class RateLimitedEmbedder:
    """Wraps an embedder so every request first takes its share of the shared quota."""

    def __init__(self, embedder, limiter: QuotaLimiter):
        self._embedder = embedder
        self._limiter = limiter

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    @property
    def limiter(self) -> QuotaLimiter:
        return self._limiter

    def embed_documents(self, texts: Sequence[str], *, title: str = "") -> list[list[float]]:
        # The title is sent with every text; counting it too errs on the safe side.
        extra = self._embedder.count_tokens(title) if title else 0
        costs = [self._embedder.count_tokens(t) + extra for t in texts]
        vectors: list[list[float]] = []
        for start, end in self.request_groups(costs):
            self._limiter.acquire(requests=end - start, tokens=sum(costs[start:end]))
            vectors.extend(self._send(texts[start:end], title=title))
        return vectors

    def _send(self, texts: Sequence[str], *, title: str) -> list[list[float]]:
        for attempt in range(PER_MINUTE_RETRIES + 1):
            try:
                return self._embedder.embed_documents(texts, title=title)
            except TransientError as exc:
                per_minute = (
                    exc.kind == FailureKind.RATE_LIMITED
                    and exc.retry_after is not None
                    and exc.retry_after <= _PER_MINUTE
                )
                if not per_minute or attempt == PER_MINUTE_RETRIES:
                    raise
                logger.info("per-minute 429; waiting %.1f s inside the stage", exc.retry_after)
                _pause(exc.retry_after + 1.0)
        raise AssertionError("unreachable")

    def request_groups(self, costs: Sequence[int]) -> list[tuple[int, int]]:
        """Consecutive (start, end) groups of texts, one request each: at most the
        embedder's batch size and the request budget in texts, and at most an eighth of the
        token budget in tokens (a single text over that goes alone)."""
        most_texts = self._embedder.batch_size
        if self._limiter.requests_per_minute:
            most_texts = min(most_texts, self._limiter.requests_per_minute)
        most_tokens = self._limiter.tokens_per_minute // _REQUEST_SHARE or None
        groups, start, tokens = [], 0, 0
        for i, cost in enumerate(costs):
            full = i - start >= most_texts or (
                most_tokens is not None and i > start and tokens + cost > most_tokens
            )
            if full:
                groups.append((start, i))
                start, tokens = i, 0
            tokens += cost
        if start < len(costs):
            groups.append((start, len(costs)))
        return groups

    def embed_query(self, text: str) -> list[float]:
        self._limiter.acquire(requests=1, tokens=self._embedder.count_tokens(text))
        return self._embedder.embed_query(text)
