"""The indexing stage: write a document's vectors to its tenant's namespace, remove strays.

Ids are ``<document uuid>#<chunk index>`` (DESIGN invariant 3), so writing the same document
twice overwrites instead of duplicating, and every vector of a document can be found by prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from documents.errors import FailureKind, PermanentError
from documents.pipeline.types import Match, TextChunk, VectorRecord, VectorStore


def vector_id(document_id, index: int) -> str:
    return f"{document_id}#{index}"


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
) -> None:
    """Write one vector per chunk, then delete this document's vectors of chunks that no
    longer exist (a reprocess that produced fewer chunks)."""
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
    store.upsert_replacing(namespace, f"{document_id}#", records)


def delete_document_vectors(store: VectorStore, *, namespace: str, document_id) -> int:
    """Remove every vector of one document (list by id prefix, delete by ids)."""
    ids = store.list_ids(namespace, f"{document_id}#")
    if ids:
        store.delete_ids(namespace, ids)
    return len(ids)


def search(store: VectorStore, *, namespace: str, vector, top_k: int) -> list[Match]:
    return store.query(namespace, vector, top_k)
