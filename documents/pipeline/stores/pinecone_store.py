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
from documents.pipeline.types import DeleteCheck, Match, VectorRecord

# Pinecone's documented limits (docs/external-services.md).
MAX_UPSERT_RECORDS = 1000  # records per upsert request
MAX_UPSERT_BYTES = 2_000_000  # "2 MB" per request, read as the smaller decimal value
MAX_METADATA_BYTES = 40_960  # "40 KB" of metadata per record
MAX_IDS_PER_DELETE = 1000
MAX_IDS_PER_FETCH = 1000
MAX_TOP_K = 10_000
LIST_PAGE_SIZE = 100  # the largest page list() allows

# Our targets, under those limits. Our size estimate is compact JSON like the SDK sends, but
# the service measures its own way; 10 % of room costs a few more requests, a 413 costs a retry.
UPSERT_BYTES_BUDGET = 1_800_000
METADATA_BYTES_BUDGET = 38_000
_BODY_OVERHEAD = 64  # {"vectors":[...],"namespace":"..."} around the records

# Values in a $in filter of the verification query; the docs cap $in at 10,000 values and
# a filter's size too, so a purge of many documents is checked in slices.
_DOCUMENTS_PER_PROBE = 100

_DIMENSION_MESSAGE = re.compile(r"dimension (\d+) does not match the dimension of the index (\d+)")
_NAMESPACE_LIMIT = re.compile(r"max namespaces per index limit \((\d[\d,]*)\)", re.IGNORECASE)

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


def float32_wire(values) -> list[float]:
    """The values as the shortest decimals that still read back as the same float32.

    The index stores float32, and JSON carries decimal text: a float32 widened to float64
    prints 17 significant digits ("0.0045407614670693874"), where 6 to 9 identify it
    ("0.0045407615"). That is about 9.5 KB of JSON per 768-d vector instead of 16 KB, so an
    upsert request holds about 70 % more records. Each value gets the fewest digits (6..9;
    9 always suffice for float32) that round-trip, found with numpy on the whole row."""
    x32 = np.asarray(values, dtype=np.float32)
    x = x32.astype(np.float64)
    out = x.copy()
    magnitude = np.abs(x)
    # powers of ten are exact in float64 up to 1e22: keep to values that need no more
    scalable = (magnitude > 1e-12) & (magnitude < 1e12)
    done = ~scalable  # zeros and extreme values travel as they are
    exponent = np.floor(np.log10(np.where(scalable, magnitude, 1.0)))
    for digits in (6, 7, 8, 9):
        factor = 10.0 ** (digits - 1 - exponent)
        rounded = np.round(x * factor) / factor  # the float64 nearest that decimal
        fits = ~done & (rounded.astype(np.float32) == x32)
        out[fits] = rounded[fits]
        done |= fits
    return out.tolist()


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
    # Reads lag writes (docs "Check data freshness"): see check_deleted.
    consistent = False

    def __init__(self, *, host: str, api_key: str, timeout_seconds: float = 30.0) -> None:
        # host must carry its scheme: the SDK turns "localhost:5081" into https:// (B.5)
        self._index = Index(host=host, api_key=api_key, timeout=timeout_seconds)
        self.host = host
        self._dimension: int | None = None

    def dimension(self) -> int | None:
        stats = self._call("reading the index statistics", self._index.describe_index_stats)
        self._dimension = stats.dimension or None
        return self._dimension

    def upsert(
        self,
        namespace: str,
        records: Sequence[VectorRecord],
        *,
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> int | None:
        """Write the records in requests within Pinecone's limits; returns the highest log
        sequence number the service reported for them (``x-pinecone-request-lsn``)."""
        if not records:
            return None
        payload = []
        for r in records:
            metadata = fit_metadata(r.metadata) if r.metadata else {}
            item: dict = {"id": r.id, "values": float32_wire(r.values)}
            if metadata:
                item["metadata"] = metadata
            payload.append(item)
        namespace = self._namespace(namespace)
        highest: int | None = None
        written = 0
        # Each batch is its own request; a retry rewrites the same ids, so a failure half-way
        # leaves nothing a rerun does not overwrite.
        for batch in upsert_batches(payload):
            response = self._call(
                "writing vectors",
                lambda b=batch: self._index.upsert(vectors=b, namespace=namespace),
            )
            lsn = _committed_lsn(response)
            highest = _max_lsn(highest, lsn)
            written += len(batch)
            if on_batch is not None:
                on_batch(written, lsn)
        return highest

    def upsert_replacing(
        self,
        namespace: str,
        prefix: str,
        records: Sequence[VectorRecord],
        *,
        stale_ids: Sequence[str] = (),
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> int | None:
        # The stale ids come from the database: a listing right after the upsert would show
        # none of what was just written, nor reliably what was written shortly before.
        lsn = self.upsert(namespace, records, on_batch=on_batch)
        kept = {r.id for r in records}
        stale = [i for i in dict.fromkeys(stale_ids) if i not in kept]
        if stale:
            self.delete_ids(namespace, stale)
        return lsn

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
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), MAX_IDS_PER_DELETE):
            batch = ids[start : start + MAX_IDS_PER_DELETE]
            self._call(
                "deleting vectors",
                lambda b=batch: self._index.delete(ids=b, namespace=self._namespace(namespace)),
            )

    def check_deleted(
        self, namespace: str, ids: Sequence[str], *, written_lsn: int | None
    ) -> DeleteCheck:
        """Fetch the ids, and ask the search side whether it still holds any vector of
        their documents.

        Pinecone's ``Index.delete`` returns nothing, so the delete's own LSN is out of
        reach; the LSN of the last *write* of these ids is known. A search whose
        ``x-pinecone-max-indexed-lsn`` is at least that one reflects the write, so if it
        finds none of the documents' vectors, a later operation -- the delete -- removed them;
        before that, finding nothing proves nothing. Fetch responses carry no LSN, so a fetch
        alone can only say "still there"."""
        namespace = self._namespace(namespace)
        ids = list(dict.fromkeys(ids))
        present = 0
        for start in range(0, len(ids), MAX_IDS_PER_FETCH):
            batch = ids[start : start + MAX_IDS_PER_FETCH]
            fetched = self._call(
                "checking a delete",
                lambda b=batch: self._index.fetch(ids=b, namespace=namespace),
            )
            present += len(fetched.vectors or {})
        documents = sorted({i.split("#", 1)[0] for i in ids if "#" in i})
        slices = [
            documents[i : i + _DOCUMENTS_PER_PROBE]
            for i in range(0, len(documents), _DOCUMENTS_PER_PROBE)
        ] or [[]]
        proven = written_lsn is not None
        for documents_slice in slices:
            found, reconciled = self._probe(namespace, documents_slice)
            present += found
            proven = proven and reconciled is not None and reconciled >= written_lsn
        return DeleteCheck(present=present, proven=proven)

    def _probe(self, namespace: str, document_ids: list[str]) -> tuple[int, int | None]:
        """(vectors of these documents the search side still returns, its indexed LSN)."""
        dimension = self._dimension or self.dimension() or 1
        probe = [1.0] + [0.0] * (dimension - 1)  # any non-zero vector: only the filter matters
        kwargs: dict = {}
        if document_ids:
            kwargs["filter"] = {"document_id": {"$in": document_ids}}
        response = self._call(
            "checking a delete",
            lambda: self._index.query(vector=probe, top_k=1, namespace=namespace, **kwargs),
        )
        found = len(response.matches) if document_ids else 0
        info = getattr(response, "response_info", None)
        return found, getattr(info, "lsn_reconciled", None)

    def delete_namespace(self, namespace: str) -> None:
        try:
            self._call(
                "deleting a namespace",
                lambda: self._index.delete_namespace(name=self._namespace(namespace)),
            )
        except PermanentError as exc:
            if not isinstance(exc.__cause__, pinecone.NotFoundError):
                raise  # a namespace that was never created (or is gone) is what we want

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


def _committed_lsn(response) -> int | None:
    info = getattr(response, "response_info", None)
    return getattr(info, "lsn_committed", None)


def _max_lsn(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _quota_error(message: str, action: str) -> PermanentError:
    """Pinecone's 403 QUOTA_EXCEEDED: a plan's object limit, named for staff."""
    found = _NAMESPACE_LIMIT.search(message)
    if found:
        limit = found.group(1)
        return PermanentError(
            f"Pinecone refused to create this tenant's namespace: the index has reached its "
            f"plan's limit of {limit} namespaces (each tenant has one). Delete the tenants "
            "(and so the namespaces) that are no longer needed, or move the index to a larger "
            "Pinecone plan, then retry the document.",
            FailureKind.QUOTA_EXCEEDED,
        )
    return PermanentError(
        f"Pinecone refused the request while {action} because a limit of the plan was "
        f"reached: {message} Free room or move to a larger Pinecone plan, then retry the "
        "document.",
        FailureKind.QUOTA_EXCEEDED,
    )


def _translate(exc: pinecone.PineconeError, action: str) -> ApplicationError:
    """One place that turns SDK errors into ours. The SDK has already retried 429/5xx and
    connection errors (3 retries) when one of those reaches here."""
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
    if isinstance(exc, pinecone.ForbiddenError) and (
        getattr(exc, "error_code", None) == "QUOTA_EXCEEDED" or "QUOTA_EXCEEDED" in str(exc)
    ):
        return _quota_error(message, action)
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
