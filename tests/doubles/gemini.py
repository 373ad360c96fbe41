"""A loopback double of the Gemini Developer API's embedding endpoints.

It speaks the wire format google-genai 3.6.1 was seen sending (docs/doubles.md) and refuses what
the real service refuses. Point the SDK at it with
``genai.Client(api_key=GeminiDouble.API_KEY, http_options=HttpOptions(base_url=double.url))``.

Behaviour and the source of each error's wording are listed in docs/doubles.md. In short:
tokens are counted with the model in ``gemini_tokens`` (every digit its own token); an input
over 2,048 tokens is refused or silently truncated (``overlong``); per-minute and per-day
budgets of requests (one per text) and input tokens answer 429 with the real body
(``gemini_quota``); ``title`` is refused unless the task type is RETRIEVAL_DOCUMENT; an
unknown JSON field is refused as Google's JSON front end refuses it; an unknown API version
in the path gets Google's HTML 404 page.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable

import numpy as np

from .base import DoubleServer, Fault, RecordedRequest, Reply
from .gemini_quota import QuotaBook, Violation, quota_failure_body
from .gemini_tokens import count_tokens, truncate

MAX_BATCH = 100
MAX_INPUT_TOKENS = 2048
MIN_DIMENSION, MAX_DIMENSION = 128, 3072
API_VERSIONS = ("v1", "v1beta")  # google-genai 3.x calls v1; the docs' examples v1beta
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
# The fields of EmbedContentRequest / Content / Part the service knows (REST reference).
_REQUEST_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
_CONTENT_FIELDS = frozenset({"parts", "role"})
_PART_FIELDS = frozenset({"text", "inlineData", "fileData", "thought", "thoughtSignature"})
_VERSION = re.compile(r"^/([^/]+)/")
_PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):(batchEmbedContents|embedContent|countTokens)$")
_NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    "  <title>Error 404 (Not Found)!!1</title>\n"
    "  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n"
    "  <p>The requested URL <code>{path}</code> was not found on this server.  "
    "<ins>That\u2019s all we know.</ins>\n"
)
TITLE_REFUSED = (
    "Unable to submit request because the model does not support the title parameter unless "
    "the task_type is RETRIEVAL_DOCUMENT. Learn more: "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings"
)


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


class _Refused(Exception):
    def __init__(self, message: str, details: list | None = None) -> None:
        super().__init__(message)
        self.reply = _error(400, "INVALID_ARGUMENT", message, details)


def _unknown_fields(obj: dict, known: frozenset, where: str) -> None:
    for name in obj:
        if name not in known:
            at = f" at '{where}'" if where else ""
            message = (
                f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
            )
            raise _Refused(
                message,
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": where, "description": message}],
                    }
                ],
            )


class GeminiDouble(DoubleServer):
    API_KEY = "test-gemini-key"

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        models: tuple[str, ...] = ("gemini-embedding-001",),
        overlong: str = "refuse",
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        requests_per_day: int | None = None,
        tokens_per_day: int | None = None,
        free_tier: bool = True,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``overlong``: "refuse" answers an input over 2,048 tokens with 400
        INVALID_ARGUMENT, "truncate" silently embeds its first 2,048 tokens. The quotas
        (None: unlimited) count one request per text and the input tokens of each text,
        over moving windows of 60 s and 24 h; ``free_tier`` picks the quota names the 429
        reports. ``latency`` delays every answer (seconds)."""
        super().__init__(latency=latency, clock=clock)
        if overlong not in ("refuse", "truncate"):
            raise ValueError('overlong must be "refuse" or "truncate"')
        self.api_key = api_key
        self.models = frozenset(models)
        self.overlong = overlong
        self.free_tier = free_tier
        self.quotas = QuotaBook(
            clock=clock,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            requests_per_day=requests_per_day,
            tokens_per_day=tokens_per_day,
        )
        self._counter_lock = threading.Lock()
        self._texts_embedded = 0
        self._tokens_embedded = 0
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
    def tokens_embedded(self) -> int:
        """Input tokens of those texts, after any truncation."""
        with self._counter_lock:
            return self._tokens_embedded

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
            # a per-minute request quota, as the service reports it; retry_delay "" leaves
            # RetryInfo (and the "Please retry in" sentence) out entirely
            delay = "38s" if fault.retry_delay is None else fault.retry_delay
            body = quota_failure_body(
                [Violation("requests", "minute", 100, 38.0)],
                model=next(iter(sorted(self.models))),
                free_tier=self.free_tier,
                seconds_into_minute=0.0,
            )
            err = body["error"]
            err["message"] = err["message"].rsplit("\nPlease retry in", 1)[0]
            if delay:
                err["details"][-1]["retryDelay"] = delay
                err["message"] += f"\nPlease retry in {delay}."
            else:
                err["details"].pop()
            return Reply(429, body)
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
        if status == 400:
            return _error(
                400, "INVALID_ARGUMENT", fault.message or "Request contains an invalid argument."
            )
        return _error(status, "UNKNOWN", fault.message or f"Injected failure {status}.")

    # the service -------------------------------------------------------------------------
    def route(self, rec: RecordedRequest, raw: bytes) -> Reply:
        version = _VERSION.match(rec.path)
        if version and version.group(1) not in API_VERSIONS:
            # Google's front end, not the API, answers a path under an unknown version
            page = _NOT_FOUND_PAGE.format(path=rec.path)
            return Reply(404, page, content_type="text/html; charset=UTF-8")
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
            return Reply(200, {"totalTokens": sum(count_tokens(t) for t in texts)})
        try:
            return self._embed(rec.body, method, model)
        except _Refused as refused:
            return refused.reply

    def _embed(self, body: dict, method: str, model: str) -> Reply:
        if method == "embedContent":
            _unknown_fields(body, _REQUEST_FIELDS, "")
            items, where = [body], ["EmbedContentRequest"]
        else:
            _unknown_fields(body, frozenset({"requests"}), "")
            items = body.get("requests")
            if not isinstance(items, list) or not items:
                raise _Refused("* BatchEmbedContentsRequest.requests: must not be empty\n")
            if len(items) > MAX_BATCH:
                # the service's own words (docs/doubles.md), trailing newline included
                raise _Refused(
                    "* BatchEmbedContentsRequest.requests: at most "
                    f"{MAX_BATCH} requests can be in one batch\n"
                )
            where = [f"BatchEmbedContentsRequest.requests[{i}]" for i in range(len(items))]
            for i, item in enumerate(items):
                _unknown_fields(item, _REQUEST_FIELDS, f"requests[{i}]")
        prepared = [self._prepare(item, field) for item, field in zip(items, where, strict=True)]
        tokens = sum(n for _, _, _, n in prepared)
        violations = self.quotas.charge(len(prepared), tokens)
        if violations:
            body = quota_failure_body(
                violations,
                model=model,
                free_tier=self.free_tier,
                seconds_into_minute=self.quotas.seconds_into_minute(),
            )
            return Reply(429, body)
        vectors = [
            {"values": fake_vector(text, task, self.force_dimension or dim)}
            for text, task, dim, _ in prepared
        ]
        with self._counter_lock:
            self._texts_embedded += len(vectors)
            self._tokens_embedded += tokens
        if method == "embedContent":
            return Reply(200, {"embedding": vectors[0]})
        return Reply(200, {"embeddings": vectors})

    def _prepare(self, item: dict, field: str) -> tuple[str, str, int, int]:
        """Check one request; return (the text embedded, task type, dimension, tokens)."""
        content = item.get("content") or {}
        _unknown_fields(content, _CONTENT_FIELDS, f"{field}.content")
        parts = content.get("parts") or []
        if not parts:
            raise _Refused(f"* {field}.content.parts: contents.parts must not be empty.\n")
        texts = []
        for j, part in enumerate(parts):
            _unknown_fields(part, _PART_FIELDS, f"{field}.content.parts[{j}]")
            text = part.get("text")
            if not text:
                # proto3 drops "" so the service sees a part with no data at all
                raise _Refused(
                    f"* {field}.content.parts[{j}].data: required oneof field 'data' must "
                    "have one initialized field\n"
                )
            texts.append(text)
        text = "".join(texts)
        task_type = item.get("taskType", "TASK_TYPE_UNSPECIFIED")
        if task_type not in TASK_TYPES:
            raise _Refused(f"Invalid value at '{field}.task_type', \"{task_type}\"")
        if "title" in item and task_type != "RETRIEVAL_DOCUMENT":
            raise _Refused(TITLE_REFUSED)
        dim = item.get("outputDimensionality", MAX_DIMENSION)
        if not isinstance(dim, int) or not MIN_DIMENSION <= dim <= MAX_DIMENSION:
            raise _Refused(
                f"* {field}.output_dimensionality: must be between {MIN_DIMENSION} and "
                f"{MAX_DIMENSION}, got {dim}\n"
            )
        tokens = count_tokens(text)
        if tokens > MAX_INPUT_TOKENS:
            if self.overlong == "refuse":
                raise _Refused(
                    f"The input token count ({tokens}) exceeds the maximum number of tokens "
                    f"allowed ({MAX_INPUT_TOKENS})."
                )
            text = truncate(text, MAX_INPUT_TOKENS)
            tokens = count_tokens(text)
        return text, task_type, dim, tokens
