"""The embedding stage: vectors for chunk texts, batch by batch, through the configured
embedder, and through an embedding cache when one is given."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from documents.errors import FailureKind, PermanentError
from documents.pipeline.types import Embedder


class VectorCache(Protocol):
    """Vectors by key, shared by every worker (``documents/embedding_cache.py``)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None: ...


def cache_key(
    *, scope: str, model: str, dimension: int, task_type: str, title: str, text: str
) -> str:
    """The key of one embedding request: everything that decides the vector, hashed. The
    title is part of it when the embedder sends one (Gemini conditions a RETRIEVAL_DOCUMENT
    vector on it); ``scope`` keeps tenants apart, so a tenant's cached vectors go with it."""
    parts = (scope, model, str(dimension), task_type, title, text)
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def document_keys(embedder: Embedder, texts: Sequence[str], *, title: str, scope: str) -> list[str]:
    """The cache key of each text as ``embed_documents`` would send it."""
    task_type = getattr(embedder, "document_task_type", "")
    sent_title = title if getattr(embedder, "sends_title", False) else ""
    return [
        cache_key(
            scope=scope,
            model=embedder.model_name,
            dimension=embedder.dimension,
            task_type=task_type,
            title=sent_title,
            text=text,
        )
        for text in texts
    ]


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # float32, one row per text, in the order of the texts
    from_cache: int  # rows that cost no embedding request


def embed_chunks(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    title: str = "",
    on_batch: Callable[[int], None] | None = None,
    token_counts: Sequence[int] | None = None,
    on_vectors: Callable[[list[int], np.ndarray], None] | None = None,
) -> np.ndarray:
    """Embed ``texts`` in the embedder's batch size; returns a float32 matrix, one row per text.

    ``on_batch(done)`` is called after each batch so the runner can report progress and
    keep its claim alive; ``on_vectors(rows, vectors)`` with each batch's rows (indexes into
    ``texts``) and their vectors, so they can be kept before the next batch is sent.

    Texts are sent longest first, by ``token_counts`` when given (the chunks' own counts),
    else by characters: a batch is padded to its longest text, so texts of similar length
    should share one. On the end-to-end bench set (1,426 MiniLM chunks in 49 documents,
    304,897 real tokens, batches of 16) the batches padded to 317,228 tokens sorted by token
    count within each document, 341,640 sorted by characters, 348,198 for all chunks in one
    sentence-transformers ``encode`` (which sorts by characters). The rows of the result are
    in the order of ``texts``."""
    matrix = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    lengths = token_counts if token_counts is not None else [len(text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
    step = max(1, embedder.batch_size)
    for start in range(0, len(order), step):
        rows = order[start : start + step]
        vectors = embedder.embed_documents([texts[i] for i in rows], title=title)
        for row, vector in zip(rows, vectors, strict=True):
            if len(vector) != embedder.dimension:
                raise PermanentError(
                    f"The embedder returned vectors of dimension {len(vector)}, "
                    f"but {embedder.dimension} was configured.",
                    FailureKind.DIMENSION_MISMATCH,
                )
            matrix[row] = vector
        if on_vectors:
            on_vectors(rows, matrix[rows])
        if on_batch:
            on_batch(start + len(rows))
    return matrix


def embed_chunks_cached(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    cache: VectorCache,
    scope: str,
    title: str = "",
    on_batch: Callable[[int], None] | None = None,
    token_counts: Sequence[int] | None = None,
) -> Embedded:
    """``embed_chunks`` for the texts the cache does not hold; each batch's vectors are put
    in the cache as soon as they arrive, so an attempt that fails half-way (or at indexing)
    leaves its work for the next one. Identical texts in one document are sent once."""
    part = Part(texts=texts, cache=cache, scope=scope, title=title, token_counts=token_counts)
    return embed_parts(
        embedder, [part], on_batch=(lambda done: on_batch(done[0])) if on_batch else None
    )[0]


@dataclass(frozen=True)
class Part:
    """One document's texts in an embedding shared by several documents."""

    texts: Sequence[str]
    cache: VectorCache
    scope: str
    title: str = ""
    token_counts: Sequence[int] | None = None


def embed_parts(
    embedder: Embedder,
    parts: Sequence[Part],
    *,
    on_batch: Callable[[list[int]], None] | None = None,
) -> list[Embedded]:
    """The vectors of several documents' texts, embedded together: the texts no cache holds
    are pooled and sent in full batches, longest first across all the documents, so a
    batch mixes documents and only the pool's last batch is part-filled. Texts are pooled
    only with texts sent under the same title (an embedder that sends one, Gemini, takes
    one title per request), so for such an embedder each title is a pool of its own.

    ``on_batch(done)`` after each batch, with the rows done so far in each part. Each
    batch's vectors go into their own document's cache as they arrive. Identical texts in
    one document are sent once."""
    keys = [document_keys(embedder, p.texts, title=p.title, scope=p.scope) for p in parts]
    matrices = [np.zeros((len(p.texts), embedder.dimension), dtype=np.float32) for p in parts]
    done = [0] * len(parts)
    first_of: list[dict[str, int]] = []  # per part: key -> the row sent for it
    pools: dict[str, list[tuple[int, int]]] = {}  # title as sent -> (part, row) to send
    sends_title = getattr(embedder, "sends_title", False)
    for n, part in enumerate(parts):
        cached = part.cache.get_many(list(dict.fromkeys(keys[n])))
        firsts: dict[str, int] = {}
        for row, key in enumerate(keys[n]):
            vector = cached.get(key)
            if vector is not None and len(vector) == embedder.dimension:
                matrices[n][row] = vector
                done[n] += 1
            elif key not in firsts:
                firsts[key] = row
                pools.setdefault(part.title if sends_title else "", []).append((n, row))
        first_of.append(firsts)
    hits = list(done)
    if on_batch and any(hits):
        on_batch(list(done))

    for title, pool in pools.items():

        def keep(rows: list[int], vectors: np.ndarray, pool=pool) -> None:
            fresh: dict[int, dict[str, np.ndarray]] = {}
            for i, r in enumerate(rows):
                n, row = pool[r]
                matrices[n][row] = vectors[i]
                fresh.setdefault(n, {})[keys[n][row]] = vectors[i]
                done[n] += 1
            for n, vectors_of in fresh.items():
                parts[n].cache.put_many(vectors_of)
            if on_batch:
                on_batch(list(done))

        embed_chunks(
            embedder,
            [parts[n].texts[row] for n, row in pool],
            title=title,
            token_counts=[_length(parts[n], row) for n, row in pool],
            on_vectors=keep,
        )
    for n, firsts in enumerate(first_of):  # repeats of a text sent once in its document
        for row, key in enumerate(keys[n]):
            if key in firsts and firsts[key] != row:
                matrices[n][row] = matrices[n][firsts[key]]
    return [Embedded(vectors=m, from_cache=h) for m, h in zip(matrices, hits, strict=True)]


def _length(part: Part, row: int) -> int:
    if part.token_counts is not None:
        return part.token_counts[row]
    return len(part.texts[row])
