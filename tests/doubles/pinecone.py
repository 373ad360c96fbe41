"""A loopback double of a Pinecone index's data plane (the Vectors API of a dense, cosine
"legacy vector index"), as pinecone 10.2.0 calls it (reference B.4, F).

Point the SDK at it with ``pinecone.Index(host=double.url, api_key=PineconeDouble.API_KEY)``.
Limits are Pinecone's documented ones (B.2). Where the documentation leaves a choice the
double takes the stricter reading: 2 MB is 2,000,000 bytes of uncompressed JSON, and a null
metadata value is refused (the SDK's source says the service strips nulls instead; a client
that sends none passes either way).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterable, Mapping

import numpy as np

from .base import DoubleServer, Fault, RecordedRequest, Reply

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2_000_000
MAX_METADATA_BYTES = 40_960  # "40 KB per record"
MAX_ID_LENGTH = 512
MAX_TOP_K = 10_000
MAX_IDS = 1000  # fetch and delete by ids
MAX_LIST_LIMIT = 100
DEFAULT_NAMESPACE = "__default__"


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


_COMPARE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def matches_filter(md: Mapping, flt: Mapping) -> bool:
    """Pinecone's Mongo-like filter: top-level keys are AND-ed, a bare value means $eq, and a
    list-of-strings field matches $eq/$in when any of its elements does."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches_filter(md, c) for c in cond):
                return False
            continue
        if key == "$or":
            if not any(matches_filter(md, c) for c in cond):
                return False
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        present = key in md
        value = md.get(key)
        values = value if isinstance(value, list) else [value]
        for op, arg in ops.items():
            if op == "$exists":
                ok = present == bool(arg)
            elif op == "$eq":
                ok = present and arg in values
            elif op == "$ne":
                ok = not present or arg not in values
            elif op == "$in":
                ok = present and any(v in arg for v in values)
            elif op == "$nin":
                ok = not present or not any(v in arg for v in values)
            elif op in _COMPARE:
                ok = present and isinstance(value, int | float) and _COMPARE[op](value, arg)
            else:
                raise ValueError(f"unsupported filter operator {op}")
            if not ok:
                return False
    return True


class PineconeDouble(DoubleServer):
    API_KEY = "test-pinecone-key"

    def __init__(self, *, dimension: int = 768, api_key: str = API_KEY) -> None:
        super().__init__()
        self.dimension = dimension
        self.api_key = api_key
        self._state_lock = threading.RLock()
        # namespace -> id -> (values, metadata); an RLock so helpers can nest
        self._data: dict[str, dict[str, tuple[list[float], dict]]] = {}

    # inspection and seeding ------------------------------------------------------------------
    def ids(self, namespace: str = "") -> list[str]:
        with self._state_lock:
            return sorted(self._data.get(_ns(namespace), {}))

    def vectors(self, namespace: str = "") -> dict[str, tuple[list[float], dict]]:
        """A copy of a namespace: id -> (values, metadata)."""
        with self._state_lock:
            ns = self._data.get(_ns(namespace), {})
            return {k: (list(v), dict(m)) for k, (v, m) in ns.items()}

    def namespaces(self) -> list[str]:
        with self._state_lock:
            return sorted(n for n, recs in self._data.items() if recs)

    def seed(self, namespace: str, records: Iterable[tuple[str, list[float], dict]]) -> None:
        """Put records in directly, without the HTTP limits (for setting up a test)."""
        with self._state_lock:
            ns = self._data.setdefault(_ns(namespace), {})
            for vid, values, md in records:
                ns[vid] = (list(values), dict(md))

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
        with self._state_lock:
            self._data.setdefault(_ns(rec.body.get("namespace")), {}).update(staged)
        return Reply(200, {"upsertedCount": len(vectors)})

    def _query(self, rec: RecordedRequest) -> Reply:
        body = rec.body
        top_k = body.get("topK")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            return _bad(f"topK must be between 1 and {MAX_TOP_K}, got {top_k}")
        ns_name = _ns(body.get("namespace"))
        with self._state_lock:
            ns = dict(self._data.get(ns_name, {}))
        if ("vector" in body) == ("id" in body):
            return _bad("Exactly one of 'vector' or 'id' must be provided")
        if "id" in body:
            if body["id"] not in ns:
                return Reply(200, {"matches": [], "namespace": body.get("namespace", "")})
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
                match["values"] = values if body.get("includeValues") else []
                if body.get("includeMetadata"):
                    match["metadata"] = md
                matches.append(match)
        return Reply(
            200,
            {"matches": matches, "namespace": body.get("namespace", ""), "usage": {"readUnits": 5}},
        )

    def _delete(self, rec: RecordedRequest) -> Reply:
        body = rec.body
        selectors = [k for k in ("ids", "deleteAll", "filter") if body.get(k)]
        if len(selectors) != 1:
            return _bad("Exactly one of 'ids', 'deleteAll' or 'filter' must be provided")
        with self._state_lock:
            ns = self._data.setdefault(_ns(body.get("namespace")), {})
            if "ids" in selectors:
                ids = body["ids"]
                if len(ids) > MAX_IDS:
                    return _bad(f"Cannot delete more than {MAX_IDS} ids at once, got {len(ids)}")
                for vid in ids:
                    ns.pop(vid, None)
            elif "deleteAll" in selectors:
                ns.clear()
            else:
                try:
                    doomed = [k for k, (_, m) in ns.items() if matches_filter(m, body["filter"])]
                except ValueError as exc:
                    return _bad(str(exc))
                for vid in doomed:
                    del ns[vid]
        return Reply(200, {})

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
        with self._state_lock:
            ids = sorted(
                k
                for k in self._data.get(_ns(q.get("namespace")), {})
                if k.startswith(prefix) and k > after
            )
        page = ids[:limit]
        body: dict = {
            "vectors": [{"id": vid} for vid in page],
            "namespace": q.get("namespace", ""),
            "usage": {"readUnits": 1},
        }
        if len(ids) > limit:
            body["pagination"] = {"next": base64.urlsafe_b64encode(page[-1].encode()).decode()}
        return Reply(200, body)

    def _fetch(self, rec: RecordedRequest) -> Reply:
        ids = rec.query.get("ids", [])
        if not ids:
            return _bad("At least one id must be provided")
        if len(ids) > MAX_IDS:
            return _bad(f"Cannot fetch more than {MAX_IDS} ids at once, got {len(ids)}")
        namespace = (rec.query.get("namespace") or [""])[0]
        with self._state_lock:
            ns = self._data.get(_ns(namespace), {})
            found = {
                vid: {"id": vid, "values": list(ns[vid][0]), "metadata": dict(ns[vid][1])}
                for vid in ids
                if vid in ns
            }
        return Reply(200, {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}})

    def _stats(self, rec: RecordedRequest) -> Reply:
        if rec.body.get("filter"):
            return _bad("describe_index_stats does not support a metadata filter on this index")
        with self._state_lock:
            counts = {n: len(recs) for n, recs in self._data.items() if recs}
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
