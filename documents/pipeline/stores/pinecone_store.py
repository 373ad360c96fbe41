"""A Pinecone index (dense, cosine; the "Vectors API") behind the ``VectorStore`` protocol.

Only the data plane is used, through the SDK's REST ``Index(host=...)``: no control-plane call
(the index host is configuration) and no gRPC (an HTTP double can stand in for REST in tests).
Everything comes in through the constructor; nothing here reads Django settings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pinecone
from pinecone import Index

from documents.errors import ApplicationError, FailureKind, PermanentError, TransientError
from documents.pipeline.stores.strays import delete_strays
from documents.pipeline.types import Match, VectorRecord

# Pinecone's documented limits ("Database limits", reference B.2).
MAX_UPSERT_RECORDS = 1000  # records per upsert request
MAX_UPSERT_BYTES = 2_000_000  # "2 MB" per request, read as the smaller decimal value
MAX_METADATA_BYTES = 40_960  # "40 KB" of metadata per record
MAX_IDS_PER_DELETE = 1000
MAX_TOP_K = 10_000
LIST_PAGE_SIZE = 100  # the largest page list() allows

# Our targets, under those limits. Our size estimate is compact JSON like the SDK sends, but
# the service measures its own way; 10 % of room costs a few more requests, a 413 costs a retry.
UPSERT_BYTES_BUDGET = 1_800_000
METADATA_BYTES_BUDGET = 38_000
_BODY_OVERHEAD = 64  # {"vectors":[...],"namespace":"..."} around the records

_DIMENSION_MESSAGE = re.compile(r"dimension (\d+) does not match the dimension of the index (\d+)")

T = TypeVar("T")


def _json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def fit_metadata(metadata: dict, *, budget: int = METADATA_BYTES_BUDGET) -> dict:
    """Pinecone-ready metadata: None values dropped (the service does not store nulls) and
    the ``text`` field cut so the whole record's metadata stays within ``budget`` bytes of
    JSON. The cut is made on characters, so it never splits a UTF-8 sequence, and measured
    after JSON escaping (a newline or quote costs two bytes there). A cut text is flagged
    with ``text_truncated``."""
    clean = {k: v for k, v in metadata.items() if v is not None}
    text = clean.get("text")
    if isinstance(text, str):
        # lone surrogates (from broken PDF text layers) cannot be encoded as UTF-8 at all
        text = text.encode("utf-8", "replace").decode("utf-8")
        clean["text"] = text
    if _json_size(clean) <= budget:
        return clean
    if not isinstance(text, str):
        raise PermanentError(
            f"The chunk's metadata is {_json_size(clean)} bytes, more than the "
            f"{MAX_METADATA_BYTES} bytes Pinecone stores per record.",
            FailureKind.REJECTED,
        )
    clean["text_truncated"] = True
    clean["text"] = ""
    if _json_size(clean) > budget:
        raise PermanentError(
            "The chunk's metadata leaves no room for its text within the "
            f"{MAX_METADATA_BYTES} bytes Pinecone stores per record.",
            FailureKind.REJECTED,
        )
    lo, hi = 0, len(text)  # the longest prefix that fits; the size grows with the prefix
    while lo < hi:
        mid = (lo + hi + 1) // 2
        clean["text"] = text[:mid]
        if _json_size(clean) <= budget:
            lo = mid
        else:
            hi = mid - 1
    clean["text"] = text[:lo]
    return clean


def upsert_batches(
    records: Sequence[dict],
    *,
    max_records: int = MAX_UPSERT_RECORDS,
    max_bytes: int = UPSERT_BYTES_BUDGET,
) -> list[list[dict]]:
    """Group records into requests of at most ``max_records`` records and ``max_bytes`` of
    JSON. A 768-d vector alone is 8-16 KB of JSON, so bytes, not count, usually decide."""
    batches: list[list[dict]] = []
    current: list[dict] = []
    size = _BODY_OVERHEAD
    for record in records:
        record_size = _json_size(record) + 1  # the comma between records
        if current and (len(current) >= max_records or size + record_size > max_bytes):
            batches.append(current)
            current, size = [], _BODY_OVERHEAD
        current.append(record)
        size += record_size
    if current:
        batches.append(current)
    return batches


class PineconeStore:
    def __init__(self, *, host: str, api_key: str, timeout_seconds: float = 30.0) -> None:
        # host must carry its scheme: the SDK turns "localhost:5081" into https:// (B.5)
        self._index = Index(host=host, api_key=api_key, timeout=timeout_seconds)
        self.host = host

    def dimension(self) -> int | None:
        stats = self._call("reading the index statistics", self._index.describe_index_stats)
        return stats.dimension or None

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        payload = []
        for r in records:
            metadata = fit_metadata(r.metadata) if r.metadata else {}
            item: dict = {"id": r.id, "values": np.asarray(r.values, dtype=np.float64).tolist()}
            if metadata:
                item["metadata"] = metadata
            payload.append(item)
        namespace = self._namespace(namespace)
        # Each batch is its own request; a retry of the whole task rewrites the same ids, so a
        # failure half-way leaves nothing a rerun does not overwrite.
        for batch in upsert_batches(payload):
            self._call(
                "writing vectors",
                lambda b=batch: self._index.upsert(vectors=b, namespace=namespace),
            )

    def upsert_replacing(
        self, namespace: str, prefix: str, records: Sequence[VectorRecord]
    ) -> None:
        self.upsert(namespace, records)
        delete_strays(self, namespace, prefix, {r.id for r in records})

    def list_ids(self, namespace: str, prefix: str) -> list[str]:
        def collect() -> list[str]:
            ids: list[str] = []
            # pinecone>=10 yields ListResponse pages and follows pagination.next itself
            for page in self._index.list(
                prefix=prefix or None, limit=LIST_PAGE_SIZE, namespace=self._namespace(namespace)
            ):
                ids.extend(v.id for v in page.vectors)
            return ids

        return self._call("listing vector ids", collect)

    def delete_ids(self, namespace: str, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), MAX_IDS_PER_DELETE):
            batch = ids[start : start + MAX_IDS_PER_DELETE]
            self._call(
                "deleting vectors",
                lambda b=batch: self._index.delete(ids=b, namespace=self._namespace(namespace)),
            )

    def query(self, namespace: str, vector: Sequence[float], top_k: int) -> list[Match]:
        response = self._call(
            "searching the index",
            lambda: self._index.query(
                vector=[float(v) for v in vector],
                top_k=max(1, min(top_k, MAX_TOP_K)),
                namespace=self._namespace(namespace),
                include_metadata=True,
            ),
        )
        return [
            Match(id=m.id, score=m.score, metadata=dict(m.metadata or {})) for m in response.matches
        ]

    def close(self) -> None:
        self._index.close()

    @staticmethod
    def _namespace(namespace: str) -> str:
        # "" would silently mean the shared default namespace; tenants must never land there.
        # A ValueError, not an ApplicationError: it is a bug in the caller, for Sentry.
        if not namespace:
            raise ValueError("a Pinecone namespace is required")
        return namespace

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except pinecone.PineconeError as exc:
            raise _translate(exc, action) from exc


def _translate(exc: pinecone.PineconeError, action: str) -> ApplicationError:
    """One place that turns SDK errors into ours. The SDK has already retried 429/5xx and
    connection errors (3 retries, reference B.6) when one of those reaches here."""
    message = " ".join(str(getattr(exc, "message", "") or exc).split())
    if isinstance(exc, pinecone.RateLimitError):
        wait = f" Pinecone asked to wait {exc.retry_after:g} s." if exc.retry_after else ""
        return TransientError(
            f"Pinecone is rate limiting our requests while {action}.{wait}",
            FailureKind.RATE_LIMITED,
            retry_after=exc.retry_after,
        )
    if isinstance(exc, pinecone.PineconeTimeoutError):
        return TransientError(f"Pinecone did not answer in time while {action}.")
    if isinstance(exc, pinecone.PineconeConnectionError | pinecone.ResponseParsingError):
        return TransientError(f"Could not reach Pinecone while {action}: {message}")
    if isinstance(exc, pinecone.ServiceError) or (
        isinstance(exc, pinecone.ApiError) and exc.status_code == 408
    ):
        return TransientError(
            f"Pinecone is unavailable ({exc.status_code}) while {action}: {message}"
        )
    if isinstance(exc, pinecone.UnauthorizedError | pinecone.ForbiddenError):
        return PermanentError(
            f"Pinecone refused our API key while {action} ({exc.status_code}: {message}).",
            FailureKind.REJECTED,
        )
    if isinstance(exc, pinecone.NotFoundError):
        return PermanentError(
            f"Pinecone has no index at the configured host ({message}).", FailureKind.REJECTED
        )
    if isinstance(exc, pinecone.PineconeValueError | pinecone.PineconeTypeError):
        # the SDK checks ids and metadata before sending
        return PermanentError(
            f"The data is not valid for Pinecone while {action}: {message}", FailureKind.REJECTED
        )
    found = _DIMENSION_MESSAGE.search(message)
    if found:
        return PermanentError(
            f"The vectors have dimension {found.group(1)} but the Pinecone index has "
            f"dimension {found.group(2)}; configure a matching embedding model or index.",
            FailureKind.DIMENSION_MISMATCH,
        )
    return PermanentError(
        f"Pinecone refused the request while {action}: {message}", FailureKind.REJECTED
    )
