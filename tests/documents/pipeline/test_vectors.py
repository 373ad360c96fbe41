"""The indexing stage (documents/pipeline/vectors.py) on a real LanceDB directory, and on the
Pinecone double with reads that lag writes."""

from __future__ import annotations

import numpy as np
import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.stores.lancedb_store import LanceDBStore
from documents.pipeline.stores.pinecone_store import PineconeStore
from documents.pipeline.types import TextChunk
from documents.pipeline.vectors import (
    check_dimension,
    delete_document_vectors,
    upsert_chunks,
    vector_id,
    vector_ids,
    wait_until_deleted,
)
from tests.doubles.base import ManualClock
from tests.doubles.pinecone import PineconeDouble

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
        store,
        namespace="t",
        document_id="d1",
        metadata={},
        chunks=chunks(2),
        vectors=vectors(2),
        previous_high=5,
    )
    assert store.list_ids("t", "d1#") == ["d1#0", "d1#1"]
    assert store.list_ids("t", "d10#") == ["d10#0", "d10#1"]


@pytest.fixture
def lagging():
    """The Pinecone double whose reads see a write 2-3 s after it, on a clock moved by hand."""
    clock = ManualClock()
    with PineconeDouble(dimension=DIM, lag_seconds=2.0, lag_jitter=1.0, seed=5, clock=clock) as d:
        store = PineconeStore(host=d.url, api_key=PineconeDouble.API_KEY)
        yield d, store, clock
        store.close()


def test_a_rewrite_right_after_a_write_drops_the_stale_chunks_under_lag(lagging):
    double, store, clock = lagging
    write = {"namespace": "t", "document_id": "d1", "metadata": {"document_id": "d1"}}
    upsert_chunks(store, chunks=chunks(5), vectors=vectors(5), **write)
    # reprocessed at once: a listing would show nothing yet, the high-water mark knows 5
    upsert_chunks(store, chunks=chunks(2), vectors=vectors(2), previous_high=5, **write)
    clock.advance(3.0)
    assert double.ids("t") == ["d1#0", "d1#1"]
    assert double.visible_ids("t", "list") == ["d1#0", "d1#1"]


def test_a_purge_right_after_a_write_deletes_everything_and_waits_until_it_shows(lagging):
    double, store, clock = lagging
    write = {"namespace": "t", "metadata": {"document_id": "d1"}, "document_id": "d1"}
    lsn = upsert_chunks(store, chunks=chunks(4), vectors=vectors(4), **write)
    deleted = delete_document_vectors(store, namespace="t", document_id="d1", high=4)
    assert deleted == vector_ids("d1", 4)
    assert double.ids("t") == []  # the index has the delete...
    seen = {"written_lsn": lsn, "clock": clock, "sleep": clock.advance, "interval": 0.25}
    assert wait_until_deleted(store, "t", deleted, timeout=10, **seen)  # ...and reads show it
    assert double.visible_ids("t", "query") == [] and double.visible_ids("t", "fetch") == []


def test_without_a_log_sequence_number_absence_must_hold_for_the_settle_time(lagging):
    double, store, clock = lagging
    upsert_chunks(
        store,
        namespace="t",
        document_id="d1",
        metadata={"document_id": "d1"},
        chunks=chunks(2),
        vectors=vectors(2),
    )
    seen = {"written_lsn": None, "clock": clock, "sleep": clock.advance, "interval": 0.5}
    # nothing was deleted: the write just is not visible yet; unproven absence must not pass
    assert not wait_until_deleted(store, "t", vector_ids("d1", 2), timeout=4, settle=5, **seen)


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
    deleted = delete_document_vectors(store, namespace="t", document_id="d1", high=2)
    assert deleted == ["d1#0", "d1#1", "d1#2"]  # the high-water mark, and what a listing adds
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
