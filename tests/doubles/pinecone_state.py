"""The records of the Pinecone double: a write log per namespace, with log sequence numbers,
read by views that lag behind it.

Pinecone is eventually consistent ("there can be a slight delay before new or changed records
are visible to queries", docs "Check data freshness"). Each accepted write (upsert, delete)
gets the namespace's next log sequence number (LSN): "monotonically increasing", counting
"upserts as well as updates and deletes to that namespace", and "writes to one namespace do
not increase the LSN for other namespaces". A read reflects a *prefix* of that log: the docs
promise that a read whose LSN is above a write's "also reflects subsequent operations", so a
view never shows a later write without the earlier ones.

Each kind of read (query, fetch, list, describe_index_stats) has its own view, caught up on
its own schedule: pinecone 10.2.0 warns that "fetch and search see a new write at different
times" (``ResponseInfo`` docstring), and the reference notes that stats "counts lag writes".
How late each view sees each write is drawn from a ``random.Random(seed)``, so a run with the
same seed and the same order of requests sees the same lags.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

READ_KINDS = ("query", "fetch", "list", "stats")

Record = tuple[list[float], dict]  # values, metadata; never mutated once stored
Records = dict[str, Record]
WriteOp = Callable[[Records], None]


class NamespaceLimitExceeded(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


@dataclass(frozen=True)
class _Write:
    lsn: int
    op: WriteOp
    visible_at: dict[str, float]  # read kind -> clock time from which that kind sees it


class _Namespace:
    def __init__(self) -> None:
        self.records: Records = {}  # every accepted write applied: what the index converges to
        self.lsn = 0
        self.log: list[_Write] = []
        self.views: dict[str, Records] = {kind: {} for kind in READ_KINDS}
        self.applied: dict[str, int] = dict.fromkeys(READ_KINDS, 0)  # log entries in the view
        self.view_lsn: dict[str, int] = dict.fromkeys(READ_KINDS, 0)
        self.last_visible: dict[str, float] = dict.fromkeys(READ_KINDS, -math.inf)

    def catch_up(self, kind: str, now: float) -> None:
        view, i = self.views[kind], self.applied[kind]
        while i < len(self.log) and self.log[i].visible_at[kind] <= now:
            self.log[i].op(view)
            self.view_lsn[kind] = self.log[i].lsn
            i += 1
        self.applied[kind] = i
        if all(n == len(self.log) for n in self.applied.values()):
            self.log.clear()  # every view has it; keep memory flat over a long session
            self.applied = dict.fromkeys(READ_KINDS, 0)


class IndexState:
    """Thread-safe: the HTTP server answers on many threads at once."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        lag_seconds: float = 0.0,
        lag_jitter: float = 0.0,
        seed: int = 0,
        max_namespaces: int | None = None,
    ) -> None:
        if lag_seconds < 0 or lag_jitter < 0:
            raise ValueError("lag_seconds and lag_jitter must not be negative")
        if max_namespaces is not None and max_namespaces < 1:
            raise ValueError("max_namespaces must be at least 1 (or None for no limit)")
        self._clock = clock
        self.lag_seconds = lag_seconds
        self.lag_jitter = lag_jitter
        self.max_namespaces = max_namespaces
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._namespaces: dict[str, _Namespace] = {}

    # writes ------------------------------------------------------------------------------
    def write(self, namespace: str, op: WriteOp, *, creates: bool) -> int | None:
        """Log ``op`` and return its LSN. ``creates``: an upsert makes the namespace when it
        does not exist yet (and may hit the namespace limit); a delete in a namespace that
        does not exist changes nothing and gets no LSN."""
        with self._lock:
            ns = self._namespaces.get(namespace)
            if ns is None:
                if not creates:
                    return None
                if self.max_namespaces is not None and len(self._namespaces) >= self.max_namespaces:
                    raise NamespaceLimitExceeded(self.max_namespaces)
                ns = self._namespaces[namespace] = _Namespace()
            op(ns.records)
            ns.lsn += 1
            now = self._clock()
            visible_at = {}
            for kind in READ_KINDS:
                lag = self.lag_seconds
                if self.lag_jitter:
                    lag += self._rng.uniform(0.0, self.lag_jitter)
                # never before an earlier write: views apply the log in order
                visible_at[kind] = max(ns.last_visible[kind], now + lag)
                ns.last_visible[kind] = visible_at[kind]
            ns.log.append(_Write(ns.lsn, op, visible_at))
            for kind in READ_KINDS:
                ns.catch_up(kind, now)  # with no lag, visible at once
            return ns.lsn

    def delete_namespace(self, namespace: str) -> bool:
        with self._lock:
            return self._namespaces.pop(namespace, None) is not None

    def seed(self, namespace: str, records: Iterable[tuple[str, list[float], dict]]) -> None:
        """Put records in at once, visible to every read, with no LSN: test set-up."""
        with self._lock:
            ns = self._namespaces.setdefault(namespace, _Namespace())
            for vid, values, md in records:
                record = (list(values), dict(md))
                ns.records[vid] = record
                for view in ns.views.values():
                    view[vid] = record

    # reads -------------------------------------------------------------------------------
    def read(self, namespace: str, kind: str) -> tuple[Records, int]:
        """A copy of what a ``kind`` read sees in ``namespace`` now, and the highest LSN that
        view reflects (0 when it reflects no write)."""
        with self._lock:
            ns = self._namespaces.get(namespace)
            if ns is None:
                return {}, 0
            ns.catch_up(kind, self._clock())
            return dict(ns.views[kind]), ns.view_lsn[kind]

    def counts(self) -> dict[str, int]:
        """Record counts per namespace as describe_index_stats sees them."""
        with self._lock:
            now = self._clock()
            out = {}
            for name, ns in self._namespaces.items():
                ns.catch_up("stats", now)
                out[name] = len(ns.views["stats"])
            return out

    # the converged truth, for assertions -------------------------------------------------
    def records(self, namespace: str) -> Records:
        with self._lock:
            ns = self._namespaces.get(namespace)
            return dict(ns.records) if ns else {}

    def namespace_names(self) -> list[str]:
        with self._lock:
            return sorted(self._namespaces)

    def lsn(self, namespace: str) -> int:
        with self._lock:
            ns = self._namespaces.get(namespace)
            return ns.lsn if ns else 0
