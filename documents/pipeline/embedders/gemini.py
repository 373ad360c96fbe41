"""Embeddings from the Gemini Developer API (google-genai SDK), behind the ``Embedder`` protocol.

Everything comes in through the constructor; nothing here reads Django settings. The SDK's own
retries are switched off: Celery owns retries, so backoff and worker slots are governed in one
place, and every failure leaves as a ``TransientError`` or ``PermanentError`` whose message a
staff member can read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import httpx
import numpy as np
from google import genai
from google.genai import errors, types

from documents.errors import ApplicationError, FailureKind, PermanentError, TransientError

try:  # google-genai 3.x prefers httpx2 (pydantic's fork, its own namespace) when installed
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the environment
    _TRANSPORT_ERRORS = (httpx.TransportError,)

# The service's limits (reference A.1/A.2): 100 texts per batchEmbedContents call (more is a 400
# the SDK does not split for you), 2,048 tokens per text, 128..3072 output dimensions.
MAX_BATCH_SIZE = 100
MAX_INPUT_TOKENS = 2048
MIN_DIMENSION, FULL_DIMENSION = 128, 3072

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


# A word, or a single punctuation mark or symbol: each is at least one token.
_WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")


class GeminiEmbedder:
    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gemini-embedding-001",
        dimension: int = 768,
        base_url: str | None = None,
        api_version: str | None = None,
        timeout_seconds: float = 60.0,
        batch_size: int = MAX_BATCH_SIZE,
        chunk_tokens: int = 1024,
        chunk_overlap: int = 100,
    ) -> None:
        if not MIN_DIMENSION <= dimension <= FULL_DIMENSION:
            raise ValueError(
                f"dimension must be {MIN_DIMENSION}..{FULL_DIMENSION}, got {dimension}"
            )
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}, got {batch_size}")
        if not 0 <= chunk_overlap < chunk_tokens <= MAX_INPUT_TOKENS:
            raise ValueError(
                f"need 0 <= chunk_overlap < chunk_tokens <= {MAX_INPUT_TOKENS}, "
                f"got {chunk_overlap} and {chunk_tokens}"
            )
        self.model_name = model
        self.dimension = dimension
        self.max_input_tokens = MAX_INPUT_TOKENS
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.batch_size = batch_size
        self.timeout_seconds = timeout_seconds
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version=api_version,
                # milliseconds; the SDK's default is no timeout, which would let a hung
                # connection hold a worker forever (reference A.7)
                timeout=int(timeout_seconds * 1000),
                # one attempt; Celery retries (the SDK's retries ignore RetryInfo anyway)
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    # Embedder protocol -------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """A conservative estimate: the larger of ceil(UTF-8 bytes / 3) and the number of
        words plus punctuation marks.

        There is no local tokenizer for gemini-embedding-001 (the SDK's LocalTokenizer maps only
        the generative models and downloads its model at first use) and a countTokens call per
        chunk would cost a request each. Bytes / 3 over-counts ordinary text: English averages
        about 4 characters (= 4 bytes) per token, and CJK characters are 3 bytes each and come
        out at about 1 token per character. It under-counts text made of isolated symbols --
        the dot leaders of a table of contents, the cells of a numeric table -- where nearly
        every mark is a token of its own, hence the second count. Chunks also target
        ``chunk_tokens`` (half the 2,048 limit by default), not the limit itself."""
        return max(
            math.ceil(len(text.encode("utf-8")) / 3),
            len(_WORD_OR_MARK.findall(text)),
        )

    def embed_documents(self, texts: Sequence[str], *, title: str = "") -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(self._embed(batch, "RETRIEVAL_DOCUMENT", title or None, start))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], "RETRIEVAL_QUERY", None, 0)[0]

    def close(self) -> None:
        self._client.close()

    # internals ---------------------------------------------------------------------------
    def _embed(
        self, texts: Sequence[str], task_type: str, title: str | None, offset: int
    ) -> list[list[float]]:
        for i, text in enumerate(texts):
            if not text.strip():
                # the service refuses an empty part with an unhelpful proto error
                raise PermanentError(
                    f"Text {offset + i + 1} is empty; Gemini cannot embed an empty text.",
                    FailureKind.REJECTED,
                )
        # One Content per text: for models other than gemini-embedding-001/-exp the SDK merges
        # a list of plain strings into ONE content and returns ONE vector (reference A.1).
        contents = [types.Content(parts=[types.Part(text=t)], role="user") for t in texts]
        config = types.EmbedContentConfig(
            task_type=task_type, title=title, output_dimensionality=self.dimension
        )
        try:
            response = self._client.models.embed_content(
                model=self.model_name, contents=contents, config=config
            )
        except errors.APIError as exc:
            raise _from_api_error(exc) from exc
        except _TRANSPORT_ERRORS as exc:
            raise _from_transport_error(exc, self.timeout_seconds) from exc
        except errors.UnknownApiResponseError as exc:
            raise TransientError(
                "Gemini sent an answer that is not JSON (a proxy or an outage page?).",
                FailureKind.UNAVAILABLE,
            ) from exc
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            raise TransientError(
                f"Gemini returned {len(embeddings)} vectors for {len(texts)} texts.",
                FailureKind.INTERNAL,
            )
        return [self._finish(e.values or []) for e in embeddings]

    def _finish(self, values: list[float]) -> list[float]:
        if len(values) != self.dimension:
            raise PermanentError(
                f"Gemini returned vectors of dimension {len(values)}, but {self.dimension} "
                f"was requested from model {self.model_name}.",
                FailureKind.DIMENSION_MISMATCH,
            )
        if self.dimension == FULL_DIMENSION:
            return list(values)  # the service normalises only its full-size output (A.1)
        vector = np.asarray(values, dtype=np.float64)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise TransientError("Gemini returned an all-zero vector.", FailureKind.INTERNAL)
        return (vector / norm).tolist()


def _plain(message: str | None, limit: int = 300) -> str:
    """The service's message as one readable sentence: no field-path bullets, no newlines."""
    text = " ".join((message or "").replace("* ", " ").split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    if text and text[-1] not in ".…":
        text += "."
    return text


def _retry_delay(exc: errors.APIError) -> float | None:
    """Seconds from the RetryInfo detail (a protobuf duration such as "38s" or "12.5s"),
    else from the "Please retry in Ns" sentence of the message."""
    body = exc.details if isinstance(exc.details, dict) else {}
    for detail in (body.get("error") or {}).get("details") or []:
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    match = _RETRY_IN.search(exc.message or "")
    return float(match.group(1)) if match else None


def _from_api_error(exc: errors.APIError) -> ApplicationError:
    code, message = exc.code, _plain(exc.message)
    if code == 429:
        delay = _retry_delay(exc)
        when = f" Gemini asked to wait {delay:g} s." if delay is not None else ""
        return TransientError(
            f"Gemini is rate limiting our requests (quota exceeded).{when}",
            FailureKind.RATE_LIMITED,
            retry_after=delay,
        )
    if code >= 500 or code == 408:
        return TransientError(
            f"Gemini is unavailable right now ({code} {exc.status or 'error'}): {message}",
            FailureKind.UNAVAILABLE,
        )
    return PermanentError(f"Gemini refused the request: {message}", FailureKind.REJECTED)


def _from_transport_error(exc: Exception, timeout_seconds: float) -> TransientError:
    if "Timeout" in type(exc).__name__:
        text = f"Gemini did not answer within {timeout_seconds:g} seconds."
    else:
        text = f"Could not reach Gemini ({type(exc).__name__}: {exc or 'connection failed'})."
    return TransientError(text, FailureKind.UNAVAILABLE)
