"""The indexing stage (documents/pipeline/vectors.py) on a real LanceDB directory."""

from __future__ import annotations

import numpy as np
import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.stores.lancedb_store import LanceDBStore
from documents.pipeline.types import TextChunk
from documents.pipeline.vectors import (
    check_dimension,
    delete_document_vectors,
    upsert_chunks,
    vector_id,
)

DIM = 8


@pytest.fixture
def store(tmp_path):
    s = LanceDBStore(str(tmp_path / "vectors"), DIM)
    yield s
    s.close()


def chunks(count: int) -> list[TextChunk]:
    return [
        TextChunk(
            index=i,
            text=f"chunk {i}",
            token_count=3,
            page_start=i + 1,
            page_end=i + 2,
            char_start=10 * i,
            char_end=10 * i + 7,
        )
        for i in range(count)
    ]


def vectors(count: int) -> np.ndarray:
    rows = np.random.default_rng(count).normal(size=(count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_one_vector_per_chunk_with_its_metadata(store):
    upsert_chunks(
        store,
        namespace="t",
        document_id="d1",
        metadata={"title": "T"},
        chunks=chunks(3),
        vectors=vectors(3),
    )
    assert store.list_ids("t", "d1#") == ["d1#0", "d1#1", "d1#2"]
    (best,) = store.query("t", vectors(3)[1], top_k=1)
    assert best.id == "d1#1"
    assert best.metadata == {
        "title": "T",
        "chunk_index": 1,
        "page_start": 2,
        "page_end": 3,
        "text": "chunk 1",
    }


def test_a_shorter_rewrite_drops_the_chunks_that_no_longer_exist_and_nothing_else(store):
    upsert_chunks(
        store, namespace="t", document_id="d1", metadata={}, chunks=chunks(5), vectors=vectors(5)
    )
    upsert_chunks(
        store, namespace="t", document_id="d10", metadata={}, chunks=chunks(2), vectors=vectors(2)
    )
    upsert_chunks(
        store, namespace="t", document_id="d1", metadata={}, chunks=chunks(2), vectors=vectors(2)
    )
    assert store.list_ids("t", "d1#") == ["d1#0", "d1#1"]
    assert store.list_ids("t", "d10#") == ["d10#0", "d10#1"]


def test_deleting_a_documents_vectors_leaves_its_neighbours_and_other_namespaces(store):
    for namespace in ("t", "u"):
        upsert_chunks(
            store,
            namespace=namespace,
            document_id="d1",
            metadata={},
            chunks=chunks(3),
            vectors=vectors(3),
        )
    upsert_chunks(
        store, namespace="t", document_id="d2", metadata={}, chunks=chunks(1), vectors=vectors(1)
    )
    assert delete_document_vectors(store, namespace="t", document_id="d1") == 3
    assert store.list_ids("t", "") == ["d2#0"]
    assert len(store.list_ids("u", "d1#")) == 3


def test_an_index_of_another_dimension_is_refused_before_any_work(store):
    upsert_chunks(
        store, namespace="t", document_id="d1", metadata={}, chunks=chunks(1), vectors=vectors(1)
    )
    check_dimension(store, DIM)
    with pytest.raises(PermanentError) as caught:
        check_dimension(store, 384)
    assert caught.value.kind == FailureKind.DIMENSION_MISMATCH
    assert "8" in caught.value.message and "384" in caught.value.message


def test_vector_ids_are_the_document_and_the_chunk_position():
    assert vector_id("abc", 7) == "abc#7"
