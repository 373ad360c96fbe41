"""PineconeStore against the Pinecone double, through the real pinecone SDK (REST)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from documents.errors import FailureKind, PermanentError, TransientError
from documents.pipeline.stores.pinecone_store import PineconeStore, fit_metadata, float32_wire
from documents.pipeline.types import Match, VectorRecord
from documents.pipeline.vectors import delete_document_vectors, wait_until_deleted
from tests.doubles.base import ManualClock
from tests.doubles.pinecone import MAX_METADATA_BYTES, PineconeDouble, metadata_size


@pytest.fixture
def store(pinecone_double):
    s = PineconeStore(host=pinecone_double.url, api_key=PineconeDouble.API_KEY)
    yield s
    s.close()


def records(n, *, prefix="doc1#", dim=768, seed=0, metadata=None):
    # float32 values, as the embedding stage stores them: their JSON is ~20 chars per float
    matrix = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return [
        VectorRecord(f"{prefix}{i}", matrix[i].tolist(), dict(metadata or {"chunk_index": i}))
        for i in range(n)
    ]


def test_2500_records_are_split_into_requests_within_pinecones_limits(store, pinecone_double):
    recs = records(2500)
    store.upsert("tenant-a", recs)

    upserts = pinecone_double.upsert_requests()
    assert all(r.status == 200 for r in upserts)  # the double refuses >1000 or >2 MB
    assert all(len(r.body["vectors"]) <= 1000 and r.raw_size <= 2_000_000 for r in upserts)
    assert sum(len(r.body["vectors"]) for r in upserts) == 2500
    # ~8.4 KB of JSON per 768-d float32 record: bytes decide, not count (1.8 MB / 8.4 KB ≈ 213;
    # widened to float64 text they were ~15.7 KB, 114 a request)
    assert 12 <= len(upserts) <= 14
    assert 180 < max(len(r.body["vectors"]) for r in upserts) < 250
    # our size estimate matches what the SDK encodes: no request passed our 1.8 MB budget
    assert max(r.raw_size for r in upserts) <= 1_800_000
    stored = pinecone_double.vectors("tenant-a")
    assert len(stored) == 2500
    values, metadata = stored["doc1#1234"]
    assert metadata == {"chunk_index": 1234}
    # the same float32 values arrive, written with the fewest digits that identify them
    assert np.array_equal(np.float32(values), np.float32(recs[1234].values))


def test_vectors_travel_as_the_shortest_decimals_that_read_back_as_the_same_float32():
    row = np.random.default_rng(3).standard_normal(768).astype(np.float32)
    row[:4] = [0.0, 1e-30, 1.0, -0.1]
    wire = float32_wire(row)
    assert np.array_equal(np.float32(wire), row)
    assert wire[:4] == [0.0, np.float64(np.float32(1e-30)), 1.0, -0.1]
    widened = json.dumps(row.astype(np.float64).tolist())
    assert len(json.dumps(wire)) < 0.65 * len(widened)
    assert max(len(repr(v).lstrip("-0.")) for v in wire[4:]) <= 9  # significant digits


def test_small_records_are_split_by_count(pinecone_double):
    pinecone_double.dimension = 2
    store = PineconeStore(host=pinecone_double.url, api_key=PineconeDouble.API_KEY)
    store.upsert("t", [VectorRecord(f"v{i}", [1.0, float(i)]) for i in range(2500)])
    assert [len(r.body["vectors"]) for r in pinecone_double.upsert_requests()] == [1000, 1000, 500]


def test_list_ids_follows_pages_and_keeps_to_the_prefix(store, pinecone_double):
    pinecone_double.seed("t", [(f"doc1#{i}", [1.0] * 768, {}) for i in range(250)])
    pinecone_double.seed("t", [(f"doc10#{i}", [1.0] * 768, {}) for i in range(5)])

    ids = store.list_ids("t", "doc1#")
    assert sorted(ids) == sorted(f"doc1#{i}" for i in range(250))
    lists = [r for r in pinecone_double.requests if r.path == "/vectors/list"]
    assert len(lists) == 3
    assert store.list_ids("t", "nothing#") == []


def test_delete_ids_sends_at_most_1000_per_request(store, pinecone_double):
    pinecone_double.seed("t", [(f"d#{i}", [1.0] * 768, {}) for i in range(1500)])
    store.delete_ids("t", [f"d#{i}" for i in range(1200)])

    deletes = [r for r in pinecone_double.requests if r.path == "/vectors/delete"]
    assert [len(r.body["ids"]) for r in deletes] == [1000, 200]
    assert len(pinecone_double.ids("t")) == 300


def test_upsert_replacing_deletes_the_stale_ids_it_is_given_without_listing(store, pinecone_double):
    pinecone_double.seed("t", [(f"a#{i}", [1.0] * 768, {}) for i in range(10)])
    pinecone_double.seed("t", [(f"ab#{i}", [1.0] * 768, {}) for i in range(5)])
    pinecone_double.seed("u", [(f"a#{i}", [1.0] * 768, {}) for i in range(10)])

    stale = [f"a#{i}" for i in range(2, 10)]  # what the database says the document had
    store.upsert_replacing("t", "a#", records(4, prefix="a#"), stale_ids=stale)

    assert sorted(pinecone_double.ids("t")) == sorted(
        [f"a#{i}" for i in range(4)] + [f"ab#{i}" for i in range(5)]
    )
    assert len(pinecone_double.ids("u")) == 10
    deletes = [r for r in pinecone_double.requests if r.path == "/vectors/delete"]
    # the ids just written are never deleted, even when named stale
    assert [sorted(r.body["ids"]) for r in deletes] == [sorted(f"a#{i}" for i in range(4, 10))]
    assert not [r for r in pinecone_double.requests if r.path == "/vectors/list"]


def test_an_upsert_returns_the_log_sequence_number_it_was_committed_at(store, pinecone_double):
    assert store.upsert("t", records(3)) == 1
    batches = []
    lsn = store.upsert("t", records(300, seed=1), on_batch=lambda n, lsn: batches.append((n, lsn)))
    assert lsn == pinecone_double.lsn("t") == 3  # two requests after the first write
    assert batches == [(batches[0][0], 2), (300, 3)]
    assert store.upsert("t", []) is None


def test_a_delete_is_confirmed_only_once_the_search_side_has_caught_up_with_it():
    clock = ManualClock()
    with PineconeDouble(lag_seconds=3.0, clock=clock) as double:
        store = PineconeStore(host=double.url, api_key=PineconeDouble.API_KEY)
        try:
            recs = records(5, metadata={"document_id": "doc1"})
            lsn = store.upsert("t", recs)
            clock.advance(10)  # written long ago: every read sees it
            ids = [r.id for r in recs]
            store.delete_ids("t", ids)
            check = store.check_deleted("t", ids, written_lsn=lsn)
            assert check.present > 0 and not check.confirmed  # the delete is not visible yet
            clock.advance(3.0)
            assert store.check_deleted("t", ids, written_lsn=lsn).confirmed
        finally:
            store.close()


def test_absence_right_after_a_write_is_not_taken_for_a_delete():
    clock = ManualClock()
    with PineconeDouble(lag_seconds=3.0, clock=clock) as double:
        store = PineconeStore(host=double.url, api_key=PineconeDouble.API_KEY)
        try:
            recs = records(5, metadata={"document_id": "doc1"})
            lsn = store.upsert("t", recs)
            ids = [r.id for r in recs]
            # nothing is visible yet, but the search side has not reached the write's LSN
            check = store.check_deleted("t", ids, written_lsn=lsn)
            assert check.present == 0 and not check.proven
            clock.advance(3.0)
            check = store.check_deleted("t", ids, written_lsn=lsn)
            assert check.present > 0 and check.proven
        finally:
            store.close()


def test_waiting_for_a_delete_is_bounded_and_reports_what_it_saw():
    clock = ManualClock()
    with PineconeDouble(lag_seconds=5.0, lag_jitter=2.0, seed=4, clock=clock) as double:
        store = PineconeStore(host=double.url, api_key=PineconeDouble.API_KEY)
        try:
            recs = records(4, metadata={"document_id": "doc1"})
            lsn = store.upsert("t", recs)
            ids = [r.id for r in recs]
            store.delete_ids("t", ids)
            wait = {"written_lsn": lsn, "interval": 0.5, "clock": clock, "sleep": clock.advance}
            assert not wait_until_deleted(store, "t", ids, timeout=2.0, **wait)
            assert wait_until_deleted(store, "t", ids, timeout=30.0, **wait)
            assert double.visible_ids("t", "query") == [] and double.ids("t") == []
        finally:
            store.close()


def test_a_namespace_is_deleted_and_one_that_never_existed_is_no_error(store, pinecone_double):
    store.upsert("t", records(2))
    store.delete_namespace("t")
    store.delete_namespace("never-created")
    assert pinecone_double.namespace_count() == 0


def test_the_namespace_limit_is_its_own_failure_with_the_limit_named(pinecone_double):
    pinecone_double.state.max_namespaces = 2
    store = PineconeStore(host=pinecone_double.url, api_key=PineconeDouble.API_KEY)
    store.upsert("tenant-1", records(1))
    store.upsert("tenant-2", records(1))
    with pytest.raises(PermanentError) as caught:
        store.upsert("tenant-3", records(1))
    assert caught.value.kind == FailureKind.QUOTA_EXCEEDED
    assert "limit of 2 namespaces" in caught.value.message
    assert "API key" not in caught.value.message
    store.upsert("tenant-1", records(2))  # an existing namespace still takes writes


def test_namespaces_are_isolated(store, pinecone_double):
    store.upsert("tenant-a", records(3, metadata={"tenant": "a"}))
    store.upsert("tenant-b", records(3, seed=1, metadata={"tenant": "b"}))
    store.delete_ids("tenant-a", store.list_ids("tenant-a", "doc1#"))

    assert pinecone_double.ids("tenant-a") == []
    assert len(pinecone_double.ids("tenant-b")) == 3
    matches = store.query("tenant-b", records(1)[0].values, top_k=10)
    assert {m.metadata["tenant"] for m in matches} == {"b"}
    with pytest.raises(ValueError):
        store.list_ids("", "doc1#")  # never the shared default namespace


def test_query_returns_matches_best_first(store):
    recs = records(20)
    store.upsert("t", recs)
    matches = store.query("t", recs[7].values, top_k=3)

    assert len(matches) == 3 and all(isinstance(m, Match) for m in matches)
    assert matches[0].id == "doc1#7" and matches[0].score == pytest.approx(1.0, abs=1e-6)
    assert matches[0].metadata == {"chunk_index": 7}
    assert matches[0].score >= matches[1].score >= matches[2].score


def test_dimension_comes_from_the_index(store):
    assert store.dimension() == 768


def test_long_text_metadata_is_cut_to_fit_40_kb(store, pinecone_double):
    # multi-byte characters, quotes and newlines: the JSON is bigger than the characters
    text = ('Résumé "quoted"\n文字テキスト ' * 5000)[:60_000]
    [rec] = records(1, metadata={"document_id": "d1", "text": text, "title": None})
    store.upsert("t", [rec])

    _, stored = pinecone_double.vectors("t")["doc1#0"]
    assert metadata_size(stored) <= MAX_METADATA_BYTES
    assert text.startswith(stored["text"]) and len(stored["text"]) > 10_000
    assert stored["text_truncated"] is True and "title" not in stored


def test_fit_metadata_keeps_short_text_and_drops_nones():
    md = {"text": "short", "page": 3, "title": None}
    assert fit_metadata(md) == {"text": "short", "page": 3}


def test_fit_metadata_cuts_on_characters_measured_after_json_escaping():
    md = fit_metadata({"text": "\n" * 30_000 + "€" * 30_000}, budget=40_000)
    encoded = json.dumps(md, separators=(",", ":"), ensure_ascii=False).encode()
    assert 39_990 <= len(encoded) <= 40_000
    # {"text":"","text_truncated":true} is 33 bytes; each newline is 2 once escaped
    assert md["text"] == "\n" * ((40_000 - 33) // 2)


def test_a_429_after_the_sdks_retries_is_rate_limited(
    store, pinecone_double, fast_pinecone_retries
):
    pinecone_double.fail_next(429, times=4, retry_after="7")
    with pytest.raises(TransientError) as caught:
        store.upsert("t", records(2))

    err = caught.value
    assert err.kind == FailureKind.RATE_LIMITED and err.retry_after == 7.0
    assert "rate limiting" in err.message and "{" not in err.message
    assert pinecone_double.request_count == 4  # 1 + the SDK's 3 retries
    rebuilt = type(err)(*err.args)  # as Celery's JSON result backend does
    assert (rebuilt.kind, rebuilt.retry_after) == (FailureKind.RATE_LIMITED, 7.0)


def test_a_503_after_the_sdks_retries_is_unavailable(store, pinecone_double, fast_pinecone_retries):
    pinecone_double.fail_next(503, times=4)
    with pytest.raises(TransientError) as caught:
        store.query("t", [1.0] * 768, top_k=5)
    assert caught.value.kind == FailureKind.UNAVAILABLE


def test_dropped_connections_after_the_sdks_retries_are_unavailable(
    store, pinecone_double, fast_pinecone_retries
):
    pinecone_double.drop_next(times=4)
    with pytest.raises(TransientError) as caught:
        store.list_ids("t", "doc1#")
    assert caught.value.kind == FailureKind.UNAVAILABLE
    assert caught.value.message.startswith("Could not reach Pinecone while listing vector ids")
    pinecone_double.drop_next(times=2)
    assert store.list_ids("t", "doc1#") == []  # two drops are absorbed by the SDK's retries


def test_a_slow_index_is_unavailable(pinecone_double, fast_pinecone_retries):
    pinecone_double.set_delay(2.0)
    slow = PineconeStore(
        host=pinecone_double.url, api_key=PineconeDouble.API_KEY, timeout_seconds=0.2
    )
    with pytest.raises(TransientError) as caught:
        slow.dimension()
    assert caught.value.kind == FailureKind.UNAVAILABLE


def test_a_wrong_dimension_is_permanent_and_names_both_numbers(store):
    with pytest.raises(PermanentError) as caught:
        store.upsert("t", records(2, dim=384))
    assert caught.value.kind == FailureKind.DIMENSION_MISMATCH
    assert caught.value.message == (
        "The vectors have dimension 384 but the Pinecone index has dimension 768; "
        "configure a matching embedding model or index."
    )


def test_a_wrong_api_key_is_permanent(pinecone_double):
    store = PineconeStore(host=pinecone_double.url, api_key="wrong")
    with pytest.raises(PermanentError) as caught:
        store.dimension()
    assert caught.value.kind == FailureKind.REJECTED and "API key" in caught.value.message


def test_an_id_the_sdk_refuses_is_permanent(store, pinecone_double):
    with pytest.raises(PermanentError) as caught:
        store.upsert("t", [VectorRecord("doc#é", [1.0] * 768)])
    assert caught.value.kind == FailureKind.REJECTED and "ASCII" in caught.value.message
    assert pinecone_double.request_count == 0


def test_a_documents_vectors_deleted_right_after_writing_are_gone_once_the_index_catches_up():
    clock = ManualClock()
    with PineconeDouble(lag_seconds=3.0, clock=clock) as double:
        store = PineconeStore(host=double.url, api_key=PineconeDouble.API_KEY)
        try:
            store.upsert_replacing("t", "doc1#", records(5))
            # the database knows the document wrote chunk indexes 0..4
            delete_document_vectors(store, namespace="t", document_id="doc1", high=5)
            clock.advance(3.0)
            assert double.visible_ids("t", "query") == []
            assert double.ids("t") == []
        finally:
            store.close()
