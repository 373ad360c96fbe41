"""A loopback double of the Gemini Developer API's embedding endpoints.

It speaks the wire format google-genai 3.6.1 was seen sending (reference A.5) and refuses what
the real service refuses (A.2, F). Point the SDK at it with
``genai.Client(api_key=GeminiDouble.API_KEY, http_options=HttpOptions(base_url=double.url))``.

Error wording: the 100-item limit and the key messages are the service's own words; the
wording for dimension, token-limit and empty-text errors is modelled on the service's
``* Request.field: reason`` style but was not captured from it.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading

import numpy as np

from .base import DoubleServer, Fault, RecordedRequest, Reply

MAX_BATCH = 100
MAX_INPUT_TOKENS = 2048
MIN_DIMENSION, MAX_DIMENSION = 128, 3072
TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "RETRIEVAL_DOCUMENT",
        "RETRIEVAL_QUERY",
        "CODE_RETRIEVAL_QUERY",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
    }
)
_PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):(batchEmbedContents|embedContent|countTokens)$")
_WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """The double's token estimate: the larger of (words + punctuation marks) and
    ceil(UTF-8 bytes / 4).

    Neither alone is close to the real tokenizer: words+marks badly undercounts CJK (no
    spaces), bytes/4 undercounts text made of short words and symbols. A real SentencePiece
    tokenizer gives every word and most marks at least one token and averages ~4 bytes per
    token on English, so the maximum of the two stays at or below the real count for ordinary
    text: the double refuses only what the service would refuse too, and a client that passes
    here has not been let off lightly by a generous estimate."""
    return max(len(_WORD_OR_MARK.findall(text)), math.ceil(len(text.encode()) / 4))


def fake_vector(text: str, task_type: str, dimension: int) -> list[float]:
    """Deterministic per (text, task type). The full 3072-d vector has unit length and
    smaller dimensions are its prefix (Matryoshka truncation), so -- like the real
    service -- only the 3072-d output comes back normalised."""
    digest = hashlib.sha256(f"{task_type}\x00{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    full = rng.standard_normal(MAX_DIMENSION)
    full /= np.linalg.norm(full)
    return full[:dimension].tolist()


def _error(code: int, status: str, message: str, details: list | None = None) -> Reply:
    err: dict = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return Reply(code, {"error": err})


class GeminiDouble(DoubleServer):
    API_KEY = "test-gemini-key"

    def __init__(
        self, *, api_key: str = API_KEY, models: tuple[str, ...] = ("gemini-embedding-001",)
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = frozenset(models)
        self._counter_lock = threading.Lock()
        self._texts_embedded = 0
        # Set to answer with vectors of this length whatever outputDimensionality asked for,
        # like a model that does not support it; exercises the client's dimension check.
        self.force_dimension: int | None = None

    # inspection --------------------------------------------------------------------------
    @property
    def texts_embedded(self) -> int:
        """Texts turned into vectors by successful (200) answers."""
        with self._counter_lock:
            return self._texts_embedded

    @property
    def embed_requests(self) -> list[RecordedRequest]:
        """Every embedding request received (faulted and refused ones included)."""
        return [r for r in self.requests if "Embed" in r.path]

    @property
    def last_body(self) -> object:
        reqs = self.embed_requests
        return reqs[-1].body if reqs else None

    def batch_sizes(self, *, ok_only: bool = True) -> list[int]:
        """Number of texts in each batchEmbedContents request, in arrival order."""
        return [
            len(r.body["requests"])
            for r in self.embed_requests
            if r.path.endswith(":batchEmbedContents")
            and isinstance(r.body, dict)
            and (r.status == 200 or not ok_only)
        ]

    # faults ------------------------------------------------------------------------------
    def fault_reply(self, fault: Fault) -> Reply:
        status = fault.status
        if status == 429:
            # Shape of reference A.3. retry_delay "" leaves RetryInfo out entirely.
            delay = "38s" if fault.retry_delay is None else fault.retry_delay
            details: list = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": (
                                "generativelanguage.googleapis.com/embed_content_free_tier_requests"
                            ),
                            "quotaId": "EmbedContentRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaValue": "100",
                        }
                    ],
                }
            ]
            if delay:
                details.append(
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
                )
            message = (
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits."
            )
            if delay:
                message += f" Please retry in {delay}."
            return _error(429, "RESOURCE_EXHAUSTED", message, details)
        if status == 500:
            return _error(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        if status == 503:
            return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if status == 504:
            return _error(
                504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
            )
        return _error(status, "UNKNOWN", f"Injected failure {status}.")

    # the service -------------------------------------------------------------------------
    def route(self, rec: RecordedRequest, raw: bytes) -> Reply:
        match = _PATH.match(rec.path)
        if rec.method != "POST" or not match:
            return _error(404, "NOT_FOUND", f"Method not found: {rec.method} {rec.path}")
        version, model, method = match.groups()
        key = rec.headers.get("x-goog-api-key") or (rec.query.get("key") or [""])[0]
        if not key:
            return _error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            return _error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if model not in self.models:
            return _error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version {version}, or is not supported "
                f"for {method}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        if not isinstance(rec.body, dict):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if method == "countTokens":
            texts = [p.get("text", "") for c in rec.body.get("contents", []) for p in c["parts"]]
            return Reply(200, {"totalTokens": sum(estimate_tokens(t) for t in texts)})
        if method == "embedContent":
            items, where = [rec.body], "EmbedContentRequest"
        else:
            items = rec.body.get("requests")
            where = "BatchEmbedContentsRequest"
            if not isinstance(items, list) or not items:
                return _error(400, "INVALID_ARGUMENT", f"* {where}.requests: must not be empty\n")
            if len(items) > MAX_BATCH:
                # the service's own words (reference A.2 / F), trailing newline included
                return _error(
                    400,
                    "INVALID_ARGUMENT",
                    f"* {where}.requests: at most {MAX_BATCH} requests can be in one batch\n",
                )
        vectors = []
        for i, item in enumerate(items):
            field = f"{where}.requests[{i}]" if method != "embedContent" else where
            problem, vector = self._embed_one(item, field)
            if problem:
                return _error(400, "INVALID_ARGUMENT", problem)
            vectors.append({"values": vector})
        with self._counter_lock:
            self._texts_embedded += len(vectors)
        if method == "embedContent":
            return Reply(200, {"embedding": vectors[0]})
        return Reply(200, {"embeddings": vectors})

    def _embed_one(self, item: dict, field: str) -> tuple[str | None, list[float] | None]:
        parts = (item.get("content") or {}).get("parts") or []
        if not parts:
            return f"* {field}.content.parts: contents.parts must not be empty.\n", None
        texts = []
        for j, part in enumerate(parts):
            text = part.get("text")
            if not text:
                # proto3 drops "" so the service sees a part with no data at all
                return (
                    f"* {field}.content.parts[{j}].data: required oneof field 'data' must "
                    "have one initialized field\n",
                    None,
                )
            texts.append(text)
        text = "".join(texts)
        task_type = item.get("taskType", "TASK_TYPE_UNSPECIFIED")
        if task_type not in TASK_TYPES:
            return f"Invalid value at '{field}.task_type', \"{task_type}\"", None
        dim = item.get("outputDimensionality", MAX_DIMENSION)
        if not isinstance(dim, int) or not MIN_DIMENSION <= dim <= MAX_DIMENSION:
            return (
                f"* {field}.output_dimensionality: must be between {MIN_DIMENSION} and "
                f"{MAX_DIMENSION}, got {dim}\n",
                None,
            )
        tokens = estimate_tokens(text)
        if tokens > MAX_INPUT_TOKENS:
            return (
                f"* {field}.content: the input has about {tokens} tokens, more than the "
                f"{MAX_INPUT_TOKENS} tokens this model accepts\n",
                None,
            )
        return None, fake_vector(text, task_type, self.force_dimension or dim)
