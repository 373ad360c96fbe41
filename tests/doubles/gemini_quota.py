"""Per-minute and per-day quotas of the Gemini double, and the 429 body that reports them.

Gemini measures usage "across three dimensions: requests per minute (RPM), tokens per minute
(input) (TPM), requests per day (RPD)", and "other models might have a token per day limit
(TPD)"; "exceeding any of them will trigger a rate limit error" (docs "Rate limits").
batchEmbedContents charges one request per text in the batch (docs/external-services.md, measured by
users). The double keeps each budget as a moving window of 60 s or 24 h: the service resets
RPD at midnight Pacific time, and a moving window is the stricter of the two (no burst at
23:59 followed by another at 00:01).

The 429 body copies real ones (see docs/doubles.md): a ``google.rpc.Help`` link, one
``google.rpc.QuotaFailure`` listing every quota exceeded (``quotaMetric``, ``quotaId``,
``quotaDimensions``, ``quotaValue``), and a ``google.rpc.RetryInfo``. Two traits of the real
bodies are kept on purpose because clients trip on them: ``retryDelay`` is whole seconds
("57s") while the message says "Please retry in 57.219397761s" -- retrying after the
RetryInfo delay can be a fraction of a second early -- and a per-day violation comes with a
RetryInfo of under a minute too, although waiting that long does not help. Only the
``quotaId`` ("...PerDay..." / "...PerMinute...") tells the two apart.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = {"minute": 60.0, "day": 86_400.0}

HELP_DETAIL = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
    "To monitor your current usage, head to: https://ai.dev/rate-limit. "
)


@dataclass(frozen=True)
class Violation:
    kind: str  # "requests" | "tokens"
    period: str  # "minute" | "day"
    limit: int
    wait: float  # seconds until the charge would fit; math.inf when it never can

    def quota_id(self, free_tier: bool) -> str:
        what = "Requests" if self.kind == "requests" else "InputTokens"
        period = "PerMinute" if self.period == "minute" else "PerDay"
        return f"EmbedContent{what}{period}PerProjectPerModel" + ("-FreeTier" if free_tier else "")

    def metric(self, free_tier: bool) -> str:
        tier = "_free_tier" if free_tier else ""
        what = "requests" if self.kind == "requests" else "input_token_count"
        return f"generativelanguage.googleapis.com/embed_content{tier}_{what}"


class _MovingWindow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def _prune(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.seconds:
            self._total -= self._events.popleft()[1]

    def wait_for(self, now: float, amount: int, limit: int) -> float:
        """0 when ``amount`` fits now, else the seconds until enough of the window expires."""
        self._prune(now)
        if amount > limit:
            return math.inf
        excess = self._total + amount - limit
        for t, n in self._events:
            if excess <= 0:
                break
            excess -= n
            if excess <= 0:
                return t + self.seconds - now
        return 0.0

    def add(self, now: float, amount: int) -> None:
        if amount:
            self._events.append((now, amount))
            self._total += amount


class QuotaBook:
    """The budgets of one project and model. A charge that would exceed any budget is
    refused whole and costs nothing."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        requests_per_day: int | None = None,
        tokens_per_day: int | None = None,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        limits = {
            ("requests", "minute"): requests_per_minute,
            ("tokens", "minute"): tokens_per_minute,
            ("requests", "day"): requests_per_day,
            ("tokens", "day"): tokens_per_day,
        }
        for (kind, period), limit in limits.items():
            if limit is not None and limit < 1:
                raise ValueError(f"the {kind} per {period} quota must be at least 1")
        self._budgets = {
            key: (limit, _MovingWindow(WINDOW_SECONDS[key[1]]))
            for key, limit in limits.items()
            if limit is not None
        }

    def charge(self, requests: int, tokens: int) -> list[Violation]:
        """Charge the usage and return [], or charge nothing and return what it exceeds."""
        amounts = {"requests": requests, "tokens": tokens}
        with self._lock:
            now = self._clock()
            violations = []
            for (kind, period), (limit, window) in self._budgets.items():
                wait = window.wait_for(now, amounts[kind], limit)
                if wait > 0:
                    violations.append(Violation(kind, period, limit, wait))
            if not violations:
                for (kind, _), (_, window) in self._budgets.items():
                    window.add(now, amounts[kind])
            return violations

    def seconds_into_minute(self) -> float:
        return self._clock() % 60.0


def quota_failure_body(
    violations: list[Violation], *, model: str, free_tier: bool, seconds_into_minute: float
) -> dict:
    """The 429 RESOURCE_EXHAUSTED body for ``violations`` (at least one)."""
    per_minute = [v.wait for v in violations if v.period == "minute"]
    if per_minute:
        delay = min(max(per_minute), WINDOW_SECONDS["minute"])
    else:
        # a per-day quota still comes with a "retry in under a minute" (see module doc)
        delay = WINDOW_SECONDS["minute"] - seconds_into_minute
    lines = "".join(
        f"\n* Quota exceeded for metric: {v.metric(free_tier)}, limit: {v.limit}, model: {model}"
        for v in violations
    )
    return {
        "error": {
            "code": 429,
            "message": f"{QUOTA_MESSAGE}{lines}\nPlease retry in {delay:.9f}s.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                HELP_DETAIL,
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": v.metric(free_tier),
                            "quotaId": v.quota_id(free_tier),
                            "quotaDimensions": {"location": "global", "model": model},
                            "quotaValue": str(v.limit),
                        }
                        for v in violations
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{int(delay)}s",
                },
            ],
        }
    }
