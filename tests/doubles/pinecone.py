"""A loopback double of a Pinecone index's data plane (the Vectors API of a dense, cosine
"legacy vector index"), as pinecone 10.2.0 calls it (docs/doubles.md).

Point the SDK at it with ``pinecone.Index(host=double.url, api_key=PineconeDouble.API_KEY)``.
Limits are Pinecone's documented ones (B.2). Where the documentation leaves a choice the
double takes the stricter reading: 2 MB is 2,000,000 bytes of uncompressed JSON, and a null
metadata value is refused (the SDK's source says the service strips nulls instead; a client
that sends none passes either way).

Reads lag writes when ``lag_seconds``/``lag_jitter`` are set (see ``pinecone_state``); writes
answer with their log sequence number and queries with the highest one they reflect. Sources
for every header and error body are in docs/doubles.md.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote

import numpy as np

from .base import DoubleServer, Fault, RecordedRequest, Reply
from .pinecone_filter import matches_filter
from .pinecone_state import IndexState, NamespaceLimitExceeded, Records

__all__ = ["PineconeDouble", "matches_filter", "metadata_size"]

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2_000_000
MAX_METADATA_BYTES = 40_960  # "40 KB per record"
MAX_ID_LENGTH = 512
MAX_TOP_K = 10_000
MAX_IDS = 1000  # fetch and delete by ids
MAX_LIST_LIMIT = 100
DEFAULT_NAMESPACE = "__default__"
STARTER_NAMESPACES = 100  # "Namespaces per serverless index": Starter plan (object limits)

# The API versions the double serves. Stable versions come out quarterly and each is
# supported for at least 12 months (docs "API versioning"); pinecone 10.2.0 sends 2026-07.
# A request without the header is served as the oldest of these, as the service does.
SUPPORTED_API_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07")

# Log sequence numbers (docs "Check data freshness"): a write's response carries its LSN,
# a query's the highest LSN it reflects.
REQUEST_LSN_HEADER = "x-pinecone-request-lsn"
MAX_INDEXED_LSN_HEADER = "x-pinecone-max-indexed-lsn"


def _bad(message: str, status: int = 400) -> Reply:
    # the data plane answers in gRPC-gateway style; code 3 = INVALID_ARGUMENT
    return Reply(status, {"code": 3, "message": message, "details": []})


def metadata_size(metadata: Mapping) -> int:
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def _ns(value: object) -> str:
    return value if isinstance(value, str) and value else DEFAULT_NAMESPACE


def _check_id(vid: object) -> str | None:
    if not isinstance(vid, str) or not vid:
        return "Vector ID must be a non-empty string"
    if len(vid) > MAX_ID_LENGTH:
        return f"Vector ID must be at most {MAX_ID_LENGTH} characters, got {len(vid)}"
    if not vid.isascii() or "\x00" in vid:
        return f"Vector ID must be ASCII without NUL characters, got {vid!r}"
    return None


def _check_metadata(vid: str, md: object) -> str | None:
    if not isinstance(md, dict):
        return f"Metadata of vector {vid} must be an object"
    for key, value in md.items():
        if value is None:
            return (
                f"Metadata value for field '{key}' of vector {vid} is null, which is not supported"
            )
        ok = isinstance(value, str | bool | int | float) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if not ok:
            return (
                f"Metadata value for field '{key}' of vector {vid} must be a string, number, "
                "boolean or list of strings"
            )
    size = metadata_size(md)
    if size > MAX_METADATA_BYTES:
        return (
            f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} "
            "bytes per vector"
        )
    return None


class PineconeDouble(DoubleServer):
    API_KEY = "test-pinecone-key"

    def __init__(
        self,
        *,
        dimension: int = 768,
        api_key: str = API_KEY,
        lag_seconds: float = 0.0,
        lag_jitter: float = 0.0,
        seed: int = 0,
        max_namespaces: int | None = None,
        api_versions: Iterable[str] = SUPPORTED_API_VERSIONS,
        lsn_reads: Iterable[str] = ("query",),
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``lag_seconds`` + a uniform draw in [0, ``lag_jitter``] is how long after a write
        each kind of read (query, fetch, list, stats) starts to see it, drawn from
        ``random.Random(seed)``. ``max_namespaces``: the plan's namespace limit (Starter:
        ``STARTER_NAMESPACES``), None for none. ``lsn_reads``: the reads that report
        ``x-pinecone-max-indexed-lsn`` (the docs promise it on queries only)."""
        super().__init__(latency=latency, clock=clock)
        self.dimension = dimension
        self.api_key = api_key
        self.api_versions = tuple(api_versions)
        if not self.api_versions:
            raise ValueError("at least one API version must be served")
        self.lsn_reads = frozenset(lsn_reads)
        if not self.lsn_reads <= {"query", "fetch", "list"}:
            # describe_index_stats covers every namespace; a namespace's LSN means nothing there
            raise ValueError("lsn_reads may name query, fetch and list only")
        self.state = IndexState(
            clock=clock,
            lag_seconds=lag_seconds,
            lag_jitter=lag_jitter,
            seed=seed,
            max_namespaces=max_namespaces,
        )

    # inspection and seeding: the converged state, what every read shows once caught up -----
    def ids(self, namespace: str = "") -> list[str]:
        return sorted(self.state.records(_ns(namespace)))

    def vectors(self, namespace: str = "") -> dict[str, tuple[list[float], dict]]:
        """A copy of a namespace: id -> (values, metadata)."""
        return {k: (list(v), dict(m)) for k, (v, m) in self.state.records(_ns(namespace)).items()}

    def namespaces(self) -> list[str]:
        """Namespaces holding records (an emptied namespace still counts against the limit,
        see ``namespace_count``)."""
        return [n for n in self.state.namespace_names() if self.state.records(n)]

    def namespace_count(self) -> int:
        return len(self.state.namespace_names())

    def visible_ids(self, namespace: str = "", kind: str = "list") -> list[str]:
        """What a ``kind`` read (query, fetch, list, stats) would see now."""
        records, _ = self.state.read(_ns(namespace), kind)
        return sorted(records)

    def lsn(self, namespace: str = "") -> int:
        """The namespace's latest LSN (0 before its first write)."""
        return self.state.lsn(_ns(namespace))

    def seed(self, namespace: str, records: Iterable[tuple[str, list[float], dict]]) -> None:
        """Put records in directly, visible at once, without the HTTP limits (test set-up)."""
        self.state.seed(_ns(namespace), records)

    def upsert_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/vectors/upsert"]

    # faults ------------------------------------------------------------------------------
    def fault_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status == 429:
            body = {
                "error": {
                    "code": "RESOURCE_EXHAUSTED",
                    "message": "Request failed. You've reached the max upsert requests per "
                    "second limit (100) for this namespace. Learn more about rate limits at "
                    "https://docs.pinecone.io/reference/api/database-limits#rate-limits.",
                },
                "status": 429,
            }
            return Reply(429, body, headers)
        if fault.status == 503:
            return Reply(
                503, {"code": 14, "message": "Service unavailable", "details": []}, headers
            )
        return Reply(
            fault.status, {"code": 13, "message": "Internal error", "details": []}, headers
        )

    # the service -------------------------------------------------------------------------
    def decode_body(self, headers, raw: bytes) -> bytes:
        if headers.get("Content-Encoding", "").lower() == "gzip":
            return gzip.decompress(raw)
        return raw

    def route(self, rec: RecordedRequest, raw: bytes) -> Reply:
        if rec.headers.get("api-key") != self.api_key:
            return Reply(
                401,
                {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}, "status": 401},
            )
        version = rec.headers.get("x-pinecone-api-version")
        if version is None:
            # "If you don't [specify one], requests default to the oldest supported stable
            # version" (docs "API versioning"): served, not refused.
            version = self.api_versions[0]
        elif version not in self.api_versions:
            return Reply(
                400,
                {
                    "error": {
                        "code": "INVALID_ARGUMENT",
                        "message": f"Unsupported API version '{version}'. Supported versions: "
                        + ", ".join(self.api_versions),
                    },
                    "status": 400,
                },
            )
        rec.notes["api_version"] = version
        if rec.raw_size > MAX_REQUEST_BYTES:
            return Reply(
                413,
                {
                    "code": 3,
                    "message": f"Request size {rec.raw_size} bytes exceeds the maximum "
                    f"supported size of {MAX_REQUEST_BYTES} bytes",
                    "details": [],
                },
            )
        if rec.method == "DELETE" and rec.path.startswith("/namespaces/"):
            return self._delete_namespace(rec)
        handler = {
            ("POST", "/vectors/upsert"): self._upsert,
            ("POST", "/query"): self._query,
            ("POST", "/vectors/delete"): self._delete,
            ("GET", "/vectors/list"): self._list,
            ("GET", "/vectors/fetch"): self._fetch,
            ("POST", "/describe_index_stats"): self._stats,
        }.get((rec.method, rec.path))
        if handler is None:
            return Reply(404, {"code": 5, "message": f"Not found: {rec.path}", "details": []})
        if rec.method == "POST" and not isinstance(rec.body, dict):
            return _bad("The request body must be a JSON object")
        return handler(rec)

    def _read(self, namespace: str, kind: str) -> tuple[Records, dict[str, str]]:
        records, lsn = self.state.read(namespace, kind)
        headers = {MAX_INDEXED_LSN_HEADER: str(lsn)} if kind in self.lsn_reads else {}
        return records, headers

    def _write(self, namespace: str, op, *, creates: bool, body: dict) -> Reply:
        try:
            lsn = self.state.write(namespace, op, creates=creates)
        except NamespaceLimitExceeded as exc:
            return Reply(
                403,
                {
                    "error": {
                        "code": "QUOTA_EXCEEDED",
                        "message": f"Request failed. You've reached the max namespaces per "
                        f"index limit ({exc.limit}) for this index. Delete unused namespaces "
                        "or upgrade your plan to create more. Learn more about limits at "
                        "https://docs.pinecone.io/reference/api/database-limits/object-limits.",
                    },
                    "status": 403,
                },
            )
        return Reply(200, body, {REQUEST_LSN_HEADER: str(lsn)} if lsn is not None else {})

    def _check_values(self, values: object) -> str | None:
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            return "Vector values must be a list of numbers"
        if len(values) != self.dimension:
            return (
                f"Vector dimension {len(values)} does not match the dimension of the index "
                f"{self.dimension}"
            )
        if not any(values):
            return "Dense vectors must contain at least one non-zero value"
        return None

    def _upsert(self, rec: RecordedRequest) -> Reply:
        vectors = rec.body.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            return _bad("At least one vector must be provided")
        if len(vectors) > MAX_UPSERT_VECTORS:
            return _bad(
                f"Too many vectors in one upsert request: {len(vectors)}, the maximum is "
                f"{MAX_UPSERT_VECTORS}"
            )
        staged = {}
        for v in vectors:
            vid = v.get("id")
            problem = (
                _check_id(vid)
                or self._check_values(v.get("values"))
                or _check_metadata(vid, v.get("metadata", {}))
            )
            if problem:
                return _bad(problem)  # one bad record refuses the whole batch
            staged[vid] = (list(v["values"]), dict(v.get("metadata") or {}))
        return self._write(
            _ns(rec.body.get("namespace")),
            lambda records: records.update(staged),
            creates=True,
            body={"upsertedCount": len(vectors)},
        )

    def _query(self, rec: RecordedRequest) -> Reply:
        body = rec.body
        top_k = body.get("topK")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            return _bad(f"topK must be between 1 and {MAX_TOP_K}, got {top_k}")
        if ("vector" in body) == ("id" in body):
            return _bad("Exactly one of 'vector' or 'id' must be provided")
        ns, headers = self._read(_ns(body.get("namespace")), "query")
        if "id" in body:
            if body["id"] not in ns:
                return Reply(200, {"matches": [], "namespace": body.get("namespace", "")}, headers)
            query = ns[body["id"]][0]
        else:
            query = body["vector"]
            problem = self._check_values(query)
            if problem:
                return _bad(problem.replace("Vector dimension", "Query vector dimension"))
        flt = body.get("filter") or {}
        try:
            candidates = [(k, v, m) for k, (v, m) in ns.items() if matches_filter(m, flt)]
        except ValueError as exc:
            return _bad(str(exc))
        matches = []
        if candidates:
            q = np.asarray(query, dtype=float)
            mat = np.asarray([v for _, v, _ in candidates], dtype=float)
            scores = mat @ q / (np.linalg.norm(mat, axis=1) * np.linalg.norm(q))
            for i in np.argsort(-scores, kind="stable")[:top_k]:
                vid, values, md = candidates[i]
                match = {"id": vid, "score": float(scores[i])}
                match["values"] = list(values) if body.get("includeValues") else []
                if body.get("includeMetadata"):
                    match["metadata"] = md
                matches.append(match)
        return Reply(
            200,
            {"matches": matches, "namespace": body.get("namespace", ""), "usage": {"readUnits": 5}},
            headers,
        )

    def _delete(self, rec: RecordedRequest) -> Reply:
        body = rec.body
        selectors = [k for k in ("ids", "deleteAll", "filter") if body.get(k)]
        if len(selectors) != 1:
            return _bad("Exactly one of 'ids', 'deleteAll' or 'filter' must be provided")
        if "ids" in selectors:
            ids = list(body["ids"])
            if len(ids) > MAX_IDS:
                return _bad(f"Cannot delete more than {MAX_IDS} ids at once, got {len(ids)}")

            def op(records: Records) -> None:
                for vid in ids:
                    records.pop(vid, None)

        elif "deleteAll" in selectors:
            # the 2026-07 API keeps the emptied namespace; delete_namespace removes it
            op = dict.clear
        else:
            flt = body["filter"]
            try:
                matches_filter({}, flt)  # refuse an unknown operator now, not in the log
            except ValueError as exc:
                return _bad(str(exc))

            def op(records: Records) -> None:
                for vid in [k for k, (_, m) in records.items() if matches_filter(m, flt)]:
                    del records[vid]

        return self._write(_ns(body.get("namespace")), op, creates=False, body={})

    def _delete_namespace(self, rec: RecordedRequest) -> Reply:
        name = unquote(rec.path.removeprefix("/namespaces/"))
        if not self.state.delete_namespace(_ns(name)):
            return Reply(
                404,
                {
                    "error": {"code": "NOT_FOUND", "message": f"Namespace {name} not found"},
                    "status": 404,
                },
            )
        return Reply(202, {})

    def _list(self, rec: RecordedRequest) -> Reply:
        q = {k: v[0] for k, v in rec.query.items()}
        try:
            limit = int(q.get("limit", MAX_LIST_LIMIT))
        except ValueError:
            return _bad("limit must be an integer")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            return _bad(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        prefix = q.get("prefix", "")
        after = ""
        if q.get("paginationToken"):
            try:
                after = base64.urlsafe_b64decode(q["paginationToken"].encode()).decode()
            except ValueError:
                return _bad("Invalid pagination token")
        records, headers = self._read(_ns(q.get("namespace")), "list")
        ids = sorted(k for k in records if k.startswith(prefix) and k > after)
        page = ids[:limit]
        body: dict = {
            "vectors": [{"id": vid} for vid in page],
            "namespace": q.get("namespace", ""),
            "usage": {"readUnits": 1},
        }
        if len(ids) > limit:
            body["pagination"] = {"next": base64.urlsafe_b64encode(page[-1].encode()).decode()}
        return Reply(200, body, headers)

    def _fetch(self, rec: RecordedRequest) -> Reply:
        ids = rec.query.get("ids", [])
        if not ids:
            return _bad("At least one id must be provided")
        if len(ids) > MAX_IDS:
            return _bad(f"Cannot fetch more than {MAX_IDS} ids at once, got {len(ids)}")
        namespace = (rec.query.get("namespace") or [""])[0]
        records, headers = self._read(_ns(namespace), "fetch")
        found = {
            vid: {"id": vid, "values": list(records[vid][0]), "metadata": dict(records[vid][1])}
            for vid in ids
            if vid in records
        }
        return Reply(
            200, {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}}, headers
        )

    def _stats(self, rec: RecordedRequest) -> Reply:
        if rec.body.get("filter"):
            return _bad("describe_index_stats does not support a metadata filter on this index")
        counts = {n: c for n, c in self.state.counts().items() if c}
        return Reply(
            200,
            {
                "namespaces": {n: {"vectorCount": c} for n, c in counts.items()},
                "dimension": self.dimension,
                "indexFullness": 0.0,
                "totalVectorCount": sum(counts.values()),
                "metric": "cosine",
                "vectorType": "dense",
            },
        )
