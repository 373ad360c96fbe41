"""Embeddings from the Gemini Developer API (google-genai SDK), behind the ``Embedder`` protocol.

Everything comes in through the constructor; nothing here reads Django settings. The SDK's own
retries are switched off: Celery owns retries, so backoff and worker slots are governed in one
place, and every failure leaves as a ``TransientError`` or ``PermanentError`` whose message a
staff member can read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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

# The service's limits (docs/external-services.md): 100 texts per batchEmbedContents call
# (more is a 400 the SDK does not split for you), 2,048 tokens per text, 128..3072 dimensions.
MAX_BATCH_SIZE = 100
MAX_INPUT_TOKENS = 2048
MIN_DIMENSION, FULL_DIMENSION = 128, 3072

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


# The token model (the same one the test double counts with, tests/doubles/gemini_tokens.py;
# sources in docs/doubles.md): Gemini's SentencePiece vocabulary "splits digits", so every
# digit is a token of its own, as is every punctuation mark, symbol and CJK character; runs
# of other letters take about one token per 4 bytes ("a token is equivalent to about 4
# characters"); a single space before a piece is free, other whitespace runs one per 31.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_LETTER_RUN = re.compile(rf"(?:(?![{_CJK}])[^\W\d_])+")
_WHITESPACE_RUN = re.compile(r"\s+")
_BYTES_PER_LETTER_TOKEN = 4
_WHITESPACE_PER_TOKEN = 31

# Daily quotas reset at midnight Pacific time (docs/external-services.md); a per-day 429's
# RetryInfo still says "under a minute", so the wait is computed here.
_QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")
_AFTER_RESET = 60.0  # seconds past midnight before trying again: clocks differ


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
        # what the embedding cache keys a document vector by (documents/pipeline/embed.py)
        self.document_task_type = "RETRIEVAL_DOCUMENT"
        self.sends_title = True
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version=api_version,
                # milliseconds; the SDK's default is no timeout, which would let a hung
                # connection hold a worker forever
                timeout=int(timeout_seconds * 1000),
                # one attempt; Celery retries (the SDK's retries ignore RetryInfo anyway)
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    # Embedder protocol -------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """An estimate of Gemini's token count for ``text``, meant never to fall short.

        There is no local tokenizer for gemini-embedding-001 (the SDK's LocalTokenizer maps
        only the generative models and downloads its model at first use) and a countTokens
        call per chunk would cost a request each. What is documented: the tokenizer splits
        digits (so "2026" is four tokens, and a table of figures costs one token per digit
        and per separator), and ordinary text averages about 4 characters per token. So:
        one token per digit, punctuation mark, symbol and CJK character; one per 4 UTF-8
        bytes of each run of letters, rounded up; none for a single space, one per 31
        characters of any other whitespace. An estimate of bytes / 3 counted the 2,255 bytes
        of "1234567890 " x 205 as 752 tokens where they cost 2,050. Chunks target
        ``chunk_tokens`` (half the 2,048 limit by default): the margin for a real tokenizer
        that counts some rare words higher. The same count is charged to the shared quota."""
        letters = _LETTER_RUN.findall(text)
        spaces = _WHITESPACE_RUN.findall(text)
        per = _BYTES_PER_LETTER_TOKEN
        tokens = sum(-(-len(w.encode("utf-8", "surrogatepass")) // per) for w in letters)
        tokens += sum(0 if r == " " else -(-len(r) // _WHITESPACE_PER_TOKEN) for r in spaces)
        # every other character -- digit, mark, symbol, CJK -- is a token of its own
        tokens += len(text) - sum(map(len, letters)) - sum(map(len, spaces))
        return tokens

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(text) for text in texts]

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
        # a list of plain strings into ONE content and returns ONE vector.
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
            return list(values)  # the service normalises only its full-size output
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


def _quota_ids(exc: errors.APIError) -> list[str]:
    """The quotaId of each QuotaFailure violation ("EmbedContentRequestsPerDay..." etc.)."""
    body = exc.details if isinstance(exc.details, dict) else {}
    ids = []
    for detail in (body.get("error") or {}).get("details") or []:
        if isinstance(detail, dict) and detail.get("@type", "").endswith("rpc.QuotaFailure"):
            ids += [str(v.get("quotaId", "")) for v in detail.get("violations") or []]
    return ids


def _quota_names(quota_ids: list[str]) -> str:
    names = []
    for quota_id in quota_ids:
        what = "tokens" if "Tokens" in quota_id else "requests"
        per = "day" if "PerDay" in quota_id else "minute"
        name = f"{what} per {per}"
        if name not in names:
            names.append(name)
    return " and ".join(names)


def seconds_until_daily_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight Pacific time, when Gemini's daily quotas reset."""
    now = now or datetime.now(_QUOTA_RESET_ZONE)
    local = now.astimezone(_QUOTA_RESET_ZONE)
    midnight = datetime.combine(
        local.date() + timedelta(days=1), datetime.min.time(), tzinfo=_QUOTA_RESET_ZONE
    )
    return (midnight - local).total_seconds() + _AFTER_RESET


def _from_api_error(exc: errors.APIError) -> ApplicationError:
    code, message = exc.code, _plain(exc.message)
    if code == 429:
        quota_ids = _quota_ids(exc)
        if any("PerDay" in q for q in quota_ids):
            # Waiting the RetryInfo's "under a minute" cannot help: the document waits for the
            # reset, parked, instead of spending its retries.
            wait = seconds_until_daily_reset()
            resume = datetime.now(_QUOTA_RESET_ZONE) + timedelta(seconds=wait)
            return TransientError(
                f"Gemini's daily quota ({_quota_names(quota_ids)}) is used up; the document "
                f"waits until it resets at midnight Pacific time "
                f"({resume.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC).",
                FailureKind.RATE_LIMITED,
                retry_after=wait,
            )
        delay = _retry_delay(exc)
        when = f" Gemini asked to wait {delay:g} s." if delay is not None else ""
        which = f" ({_quota_names(quota_ids)})" if quota_ids else ""
        return TransientError(
            f"Gemini is rate limiting our requests (quota exceeded{which}).{when}",
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
