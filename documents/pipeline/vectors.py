"""The indexing stage: write a document's vectors to its tenant's namespace, delete the ones
it no longer has, and wait until the index shows a delete.

Ids are ``<document uuid>#<chunk index>`` (DESIGN invariant 3), so writing the same document
twice overwrites instead of duplicating. Which ids a document ever had is known from the
database (a high-water mark of chunk indexes, ``vector_ids``), not from listing the index:
on Pinecone reads lag writes, and a listing made shortly after a write misses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from documents.errors import FailureKind, PermanentError
from documents.pipeline.types import Match, TextChunk, VectorRecord, VectorStore


def vector_id(document_id, index: int) -> str:
    return f"{document_id}#{index}"


def vector_ids(document_id, high: int, *, start: int = 0) -> list[str]:
    """The ids of chunk indexes ``start`` .. ``high - 1``."""
    return [vector_id(document_id, i) for i in range(start, high)]


def check_dimension(store: VectorStore, dimension: int) -> None:
    """Fail before any work is spent when the index was built for another dimension."""
    index_dimension = store.dimension()
    if index_dimension is not None and index_dimension != dimension:
        raise PermanentError(
            f"The vector index has dimension {index_dimension} but the embedding model "
            f"produces {dimension}; configure a matching model or index.",
            FailureKind.DIMENSION_MISMATCH,
        )


def upsert_chunks(
    store: VectorStore,
    *,
    namespace: str,
    document_id,
    metadata: dict,
    chunks: Sequence[TextChunk],
    vectors: np.ndarray,
    previous_high: int = 0,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> int | None:
    """Write one vector per chunk, then delete this document's ids of chunks that no longer
    exist: every index from the new chunk count up to ``previous_high``, the high-water mark
    of what was ever written for it. Returns the highest LSN the store reported."""
    records = [
        VectorRecord(
            id=vector_id(document_id, chunk.index),
            values=vectors[i],  # a row of the float32 matrix; each store converts it once
            metadata={
                **metadata,
                "chunk_index": chunk.index,
                "page_start": chunk.page_start,
                "page_end": chunk.page_end,
                "text": chunk.text,
            },
        )
        for i, chunk in enumerate(chunks)
    ]
    return store.upsert_replacing(
        namespace,
        f"{document_id}#",
        records,
        stale_ids=vector_ids(document_id, previous_high, start=len(chunks)),
        on_batch=on_batch,
    )


def delete_document_vectors(
    store: VectorStore, *, namespace: str, document_id, high: int, listed: bool = True
) -> list[str]:
    """Delete every vector a document may have: the ids below its high-water mark, plus --
    when ``listed`` -- whatever a listing of its prefix shows now (vectors written before
    the high-water mark was kept). Returns the ids the delete was sent for."""
    ids = vector_ids(document_id, high)
    if listed:
        known = set(ids)
        ids += [i for i in store.list_ids(namespace, f"{document_id}#") if i not in known]
    if ids:
        store.delete_ids(namespace, ids)
    return ids


class DeletionWatch:
    """Follows one delete until the index's reads show it (``DeleteCheck``).

    Proven absence (the reads reflect the ids' last write) ends the watch at once. When
    nothing can prove it -- the LSN of the last write is unknown, or the service sends none --
    absence must hold for ``settle`` seconds in a row, long enough for a write that was not
    visible yet to show up."""

    def __init__(
        self,
        store: VectorStore,
        namespace: str,
        ids: Sequence[str],
        *,
        written_lsn: int | None,
        settle: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.namespace = namespace
        self.ids = list(dict.fromkeys(ids))
        self.written_lsn = written_lsn
        self.settle = settle
        self._clock = clock
        self._absent_since: float | None = None
        self.done = not self.ids
        self.present = 0

    def look(self) -> bool:
        if self.done:
            return True
        check = self.store.check_deleted(self.namespace, self.ids, written_lsn=self.written_lsn)
        now = self._clock()
        self.present = check.present
        if check.confirmed:
            self.done = True
        elif check.present:
            self._absent_since = None
        else:
            self._absent_since = now if self._absent_since is None else self._absent_since
            self.done = now - self._absent_since >= self.settle
        return self.done


def wait_until_all_deleted(
    watches: Sequence[DeletionWatch],
    *,
    timeout: float,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Look at every watched delete, again every ``interval`` seconds, until all are shown or
    ``timeout`` seconds have passed; returns how many are. ``on_progress(done)`` after each
    round, for a progress bar."""
    started = clock()
    while True:
        done = sum(watch.look() for watch in watches)
        if on_progress is not None:
            on_progress(done)
        elapsed = clock() - started
        if done == len(watches) or elapsed >= timeout:
            return done
        sleep(max(0.0, min(interval, timeout - elapsed)))


def wait_until_deleted(
    store: VectorStore,
    namespace: str,
    ids: Sequence[str],
    *,
    written_lsn: int | None,
    timeout: float,
    interval: float = 0.5,
    settle: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Look at the index until it shows that ``ids`` are gone, for at most ``timeout``
    seconds; True when it does (see ``DeletionWatch``)."""
    watch = DeletionWatch(
        store, namespace, ids, written_lsn=written_lsn, settle=settle, clock=clock
    )
    return bool(
        wait_until_all_deleted(
            [watch], timeout=timeout, interval=interval, clock=clock, sleep=sleep
        )
    )


def search(store: VectorStore, *, namespace: str, vector, top_k: int) -> list[Match]:
    return store.query(namespace, vector, top_k)
