"""The Pinecone double, driven by the official pinecone SDK (REST ``Index``): it behaves like a
cosine index's data plane and refuses what the service refuses. The few limits the SDK checks
itself before sending are shown against the double with plain HTTP."""

from __future__ import annotations

import httpx
import numpy as np
import pinecone
import pytest
from pinecone import Index

from tests.doubles.base import ManualClock
from tests.doubles.pinecone import STARTER_NAMESPACES, PineconeDouble, matches_filter


@pytest.fixture
def index(pinecone_double):
    idx = Index(host=pinecone_double.url, api_key=PineconeDouble.API_KEY)
    yield idx
    idx.close()


def unit(i, dim=768):
    v = [0.0] * dim
    v[i] = 1.0
    return v


def raw(double, method, path, **kwargs):
    headers = {"Api-Key": PineconeDouble.API_KEY, "X-Pinecone-Api-Version": "2026-07"}
    return httpx.request(method, double.url + path, headers=headers, **kwargs)


def test_it_upserts_fetches_and_queries_by_cosine(index, pinecone_double):
    index.upsert(
        vectors=[("a", unit(0), {"doc": "1"}), ("b", unit(1), {"doc": "2"})], namespace="t1"
    )
    near_a = unit(0)
    near_a[1] = 0.5  # cos(a) = 1/sqrt(1.25), cos(b) = 0.5/sqrt(1.25)
    r = index.query(vector=near_a, top_k=2, namespace="t1", include_metadata=True)

    assert [m.id for m in r.matches] == ["a", "b"]
    assert r.matches[0].score == pytest.approx(1 / np.sqrt(1.25))
    assert r.matches[1].score == pytest.approx(0.5 / np.sqrt(1.25))
    assert r.matches[0].metadata == {"doc": "1"}
    fetched = index.fetch(ids=["a", "missing"], namespace="t1").vectors
    assert list(fetched) == ["a"] and fetched["a"].values == unit(0)
    assert pinecone_double.vectors("t1")["b"] == (unit(1), {"doc": "2"})


def test_namespaces_are_hard_partitions(index, pinecone_double):
    index.upsert(vectors=[("x", unit(0), {"tenant": "one"})], namespace="one")
    index.upsert(vectors=[("x", unit(1), {"tenant": "two"})], namespace="two")

    r = index.query(vector=unit(0), top_k=10, namespace="two", include_metadata=True)
    assert [(m.id, m.metadata["tenant"]) for m in r.matches] == [("x", "two")]
    index.delete(delete_all=True, namespace="one")
    assert pinecone_double.ids("one") == [] and pinecone_double.ids("two") == ["x"]
    stats = index.describe_index_stats()
    assert stats.dimension == 768 and stats.total_vector_count == 1


def test_list_pages_through_sorted_ids_with_a_prefix(index, pinecone_double):
    pinecone_double.seed("t", [(f"doc1#{i:03}", unit(0), {}) for i in range(250)])
    pinecone_double.seed("t", [("doc2#0", unit(0), {})])

    pages = list(index.list(prefix="doc1#", limit=100, namespace="t"))
    ids = [v.id for page in pages for v in page.vectors]
    assert [len(p.vectors) for p in pages] == [100, 100, 50]
    assert ids == [f"doc1#{i:03}" for i in range(250)]


def test_delete_by_filter_understands_eq_and_in(index, pinecone_double):
    pinecone_double.seed(
        "t",
        [
            ("a", unit(0), {"doc": "1", "tags": ["x"]}),
            ("b", unit(0), {"doc": "2", "tags": ["y", "z"]}),
            ("c", unit(0), {"doc": "3"}),
        ],
    )
    index.delete(filter={"doc": {"$eq": "1"}}, namespace="t")
    assert pinecone_double.ids("t") == ["b", "c"]
    index.delete(filter={"tags": {"$in": ["z"]}}, namespace="t")
    assert pinecone_double.ids("t") == ["c"]


def test_filters_follow_pinecone_semantics():
    md = {"doc": "1", "year": 2021, "tags": ["a", "b"]}
    assert matches_filter(md, {"doc": "1", "year": {"$gte": 2020}})
    assert matches_filter(md, {"tags": "a"})  # a list matches when one element does
    assert not matches_filter(md, {"$or": [{"doc": "2"}, {"tags": {"$nin": ["a"]}}]})
    assert matches_filter(md, {"missing": {"$exists": False}})


def test_a_wrong_api_key_is_401(pinecone_double):
    with pytest.raises(pinecone.UnauthorizedError):
        Index(host=pinecone_double.url, api_key="wrong").describe_index_stats()


def test_a_wrong_dimension_is_400_naming_both_numbers(index):
    with pytest.raises(pinecone.ApiError) as caught:
        index.upsert(vectors=[("a", [1.0] * 384)], namespace="t")
    assert caught.value.status_code == 400
    assert caught.value.message == (
        "Vector dimension 384 does not match the dimension of the index 768"
    )


@pytest.mark.parametrize(
    ("vector", "needle"),
    [
        (("a" * 513, unit(0)), "at most 512"),
        (("", unit(0)), "non-empty"),
        (("z", [0.0] * 768), "non-zero"),
        (("n", unit(0), {"tag": None}), "null"),
        (("m", unit(0), {"text": "é" * 20_500}), "exceeds the limit of 40960"),
    ],
)
def test_bad_records_are_refused(index, pinecone_double, vector, needle):
    with pytest.raises(pinecone.ApiError) as caught:
        index.upsert(vectors=[("ok", unit(0)), vector], namespace="t")
    assert caught.value.status_code == 400 and needle in caught.value.message
    assert pinecone_double.ids("t") == []  # one bad record refuses the whole request


def test_more_than_1000_vectors_per_upsert_is_refused(pinecone_double):
    pinecone_double.dimension = 2  # small vectors keep the body under 2 MB
    idx = Index(host=pinecone_double.url, api_key=PineconeDouble.API_KEY)
    idx.upsert(vectors=[(f"v{i}", [1.0, 0.0]) for i in range(1000)], namespace="t")
    with pytest.raises(pinecone.ApiError) as caught:
        idx.upsert(vectors=[(f"v{i}", [1.0, 0.0]) for i in range(1001)], namespace="t")
    assert caught.value.status_code == 400 and "1000" in caught.value.message


def test_a_body_over_2_mb_is_413(index, pinecone_double):
    vectors = [(f"v{i}", np.random.default_rng(i).random(768).tolist()) for i in range(200)]
    with pytest.raises(pinecone.PayloadTooLargeError):
        index.upsert(vectors=vectors, namespace="t")  # 200 x ~15 KB ≈ 3 MB
    assert pinecone_double.upsert_requests()[-1].raw_size > 2_000_000


def test_more_than_1000_ids_to_delete_or_fetch_is_refused(index):
    ids = [f"i{i}" for i in range(1001)]
    with pytest.raises(pinecone.ApiError, match="1000"):
        index.delete(ids=ids, namespace="t")
    with pytest.raises(pinecone.ApiError, match="1000"):
        index.fetch(ids=ids, namespace="t")


def test_describe_index_stats_refuses_a_filter(index):
    with pytest.raises(pinecone.ApiError):
        index.describe_index_stats(filter={"doc": "1"})


def test_limits_the_sdk_checks_itself_are_refused_by_the_double_too(pinecone_double):
    non_ascii = raw(
        pinecone_double,
        "POST",
        "/vectors/upsert",
        json={"vectors": [{"id": "é", "values": unit(0)}]},
    )
    top_k = raw(pinecone_double, "POST", "/query", json={"topK": 10_001, "vector": unit(0)})
    page = raw(pinecone_double, "GET", "/vectors/list", params={"limit": 101})
    assert [non_ascii.status_code, top_k.status_code, page.status_code] == [400, 400, 400]
    assert "ASCII" in non_ascii.json()["message"] and "10000" in top_k.json()["message"]


def test_a_429_is_retried_by_the_sdk_then_raised_with_retry_after(
    index, pinecone_double, fast_pinecone_retries
):
    pinecone_double.fail_next(429, times=4, retry_after="2")
    with pytest.raises(pinecone.RateLimitError) as caught:
        index.describe_index_stats()
    assert caught.value.retry_after == 2.0
    assert pinecone_double.request_count == 4  # the SDK's 1 + 3 retries
    assert len(fast_pinecone_retries) == 3 and all(d >= 2.0 for d in fast_pinecone_retries)


def test_a_429_without_retry_after_and_then_success_is_absorbed_by_the_sdk(
    index, pinecone_double, fast_pinecone_retries
):
    pinecone_double.fail_next(429, times=2)
    assert index.describe_index_stats().dimension == 768
    assert [r.status for r in pinecone_double.requests] == [429, 429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_become_service_errors(index, pinecone_double, fast_pinecone_retries, status):
    pinecone_double.fail_next(status, times=4)
    with pytest.raises(pinecone.ServiceError) as caught:
        index.query(vector=unit(0), top_k=1, namespace="t")
    assert caught.value.status_code == status


def test_a_slow_answer_times_the_sdk_out(pinecone_double, fast_pinecone_retries):
    pinecone_double.set_delay(2.0)
    idx = Index(host=pinecone_double.url, api_key=PineconeDouble.API_KEY, timeout=0.2)
    with pytest.raises(pinecone.PineconeTimeoutError):
        idx.describe_index_stats()
    pinecone_double.set_delay(0)
    assert idx.describe_index_stats().dimension == 768


def test_a_seeded_fault_rate_fails_about_that_share(pinecone_double):
    pinecone_double.set_fault_rate(0.5, statuses=(503,), seed=3)
    statuses = [
        raw(pinecone_double, "POST", "/describe_index_stats", json={}).status_code
        for _ in range(40)
    ]
    assert set(statuses) == {200, 503}
    assert 10 <= statuses.count(503) <= 30


# consistency lag and log sequence numbers --------------------------------------------------


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def lagging(clock):
    with PineconeDouble(lag_seconds=3.0, clock=clock) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        yield double, idx
        idx.close()


def _seen_by_every_read(idx, namespace):
    """What query, fetch, list and describe_index_stats each show of ``namespace``."""
    query = idx.query(vector=unit(0), top_k=100, namespace=namespace)
    fetch = idx.fetch(ids=["a", "b", "c"], namespace=namespace)
    listed = [v.id for page in idx.list(namespace=namespace) for v in page.vectors]
    stats = idx.describe_index_stats().namespaces
    counted = stats[namespace].vector_count if namespace in stats else 0
    return sorted(m.id for m in query.matches), sorted(fetch.vectors), sorted(listed), counted


def test_reads_see_a_write_only_once_the_lag_has_passed(lagging, clock):
    double, idx = lagging
    idx.upsert(vectors=[("a", unit(0)), ("b", unit(1))], namespace="t")

    assert _seen_by_every_read(idx, "t") == ([], [], [], 0)
    clock.advance(2.9)
    assert _seen_by_every_read(idx, "t") == ([], [], [], 0)
    clock.advance(0.1)
    assert _seen_by_every_read(idx, "t") == (["a", "b"], ["a", "b"], ["a", "b"], 2)
    assert double.ids("t") == ["a", "b"]  # the state it converges to was there all along


def test_a_delete_is_not_seen_until_the_lag_has_passed_either(lagging, clock):
    double, idx = lagging
    double.seed("t", [("a", unit(0), {}), ("b", unit(1), {})])
    idx.delete(ids=["a"], namespace="t")

    assert _seen_by_every_read(idx, "t") == (["a", "b"], ["a", "b"], ["a", "b"], 2)
    clock.advance(3)
    assert _seen_by_every_read(idx, "t") == (["b"], ["b"], ["b"], 1)


def test_without_a_lag_every_read_sees_the_write_at_once(index):
    index.upsert(vectors=[("a", unit(0))], namespace="t")
    assert _seen_by_every_read(index, "t") == (["a"], ["a"], ["a"], 1)


def test_each_write_answers_with_its_lsn_counted_per_namespace(lagging):
    _, idx = lagging
    first = idx.upsert(vectors=[("a", unit(0))], namespace="t")
    second = idx.upsert(vectors=[("b", unit(1))], namespace="t")
    other = idx.upsert(vectors=[("a", unit(0))], namespace="u")

    assert first.response_info.raw_headers["x-pinecone-request-lsn"] == "1"
    assert [first.response_info.lsn_committed, second.response_info.lsn_committed] == [1, 2]
    assert other.response_info.lsn_committed == 1  # writes elsewhere do not move t's LSN


def test_a_query_reports_the_highest_lsn_it_reflects(lagging, clock):
    _, idx = lagging
    idx.upsert(vectors=[("a", unit(0))], namespace="t")
    clock.advance(1)
    written = idx.upsert(vectors=[("b", unit(1))], namespace="t")
    target = written.response_info.lsn_committed

    early = idx.query(vector=unit(0), top_k=5, namespace="t")
    assert early.response_info.lsn_reconciled == 0 and not early.response_info.is_reconciled(target)
    clock.advance(2)  # the first write is visible, the second not yet
    middle = idx.query(vector=unit(0), top_k=5, namespace="t")
    assert middle.response_info.lsn_reconciled == 1 and [m.id for m in middle.matches] == ["a"]
    clock.advance(1)
    late = idx.query(vector=unit(0), top_k=5, namespace="t")
    assert late.response_info.is_reconciled(target) and len(late.matches) == 2


def test_only_queries_report_an_indexed_lsn_unless_told_otherwise(lagging):
    _, idx = lagging
    idx.upsert(vectors=[("a", unit(0))], namespace="t")
    fetch = idx.fetch(ids=["a"], namespace="t")
    page = idx.list_paginated(namespace="t")
    assert fetch.response_info.lsn_reconciled is None  # as pinecone 10.2.0 documents
    assert page.response_info.lsn_reconciled is None
    with PineconeDouble(lsn_reads=("query", "list")) as double:
        listed = Index(host=double.url, api_key=PineconeDouble.API_KEY).list_paginated(
            namespace="t"
        )
        assert listed.response_info.lsn_reconciled == 0


def test_reads_apply_writes_in_log_order_whatever_the_jitter(clock):
    """A read whose LSN is n reflects exactly the first n writes: never a later write
    without the earlier ones (docs: subsequent operations are reflected too)."""
    with PineconeDouble(lag_seconds=0.5, lag_jitter=5.0, seed=11, clock=clock) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        for i in range(8):
            idx.upsert(vectors=[(f"v{i}", unit(i))], namespace="t")
            clock.advance(0.2)
        seen_lsns = []
        for _ in range(40):
            r = idx.query(vector=unit(0), top_k=20, namespace="t")
            n = r.response_info.lsn_reconciled
            assert sorted(m.id for m in r.matches) == sorted(f"v{i}" for i in range(n))
            seen_lsns.append(n)
            clock.advance(0.25)
        idx.close()
    assert seen_lsns == sorted(seen_lsns) and seen_lsns[-1] == 8
    assert len(set(seen_lsns)) > 3  # the writes did land at different times


def _visibility_timeline(seed):
    clock = ManualClock()
    with PineconeDouble(lag_seconds=1.0, lag_jitter=4.0, seed=seed, clock=clock) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        for i in range(6):
            idx.upsert(vectors=[(f"v{i}", unit(i))], namespace="t")
        timeline = []
        for _ in range(30):
            timeline.append(len(list(idx.list_paginated(namespace="t").vectors)))
            clock.advance(0.2)
        idx.close()
    return timeline


def test_the_lag_is_seeded_so_a_run_can_be_replayed():
    assert _visibility_timeline(5) == _visibility_timeline(5)
    assert _visibility_timeline(5) != _visibility_timeline(6)


def test_fetch_and_query_can_see_a_write_at_different_times(clock):
    with PineconeDouble(lag_seconds=0.0, lag_jitter=5.0, seed=1, clock=clock) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        idx.upsert(vectors=[("a", unit(0))], namespace="t")
        differed = False
        for _ in range(50):
            by_query = bool(idx.query(vector=unit(0), top_k=1, namespace="t").matches)
            by_fetch = bool(idx.fetch(ids=["a"], namespace="t").vectors)
            differed |= by_query != by_fetch
            clock.advance(0.1)
        idx.close()
    assert differed and by_query and by_fetch


# API version ------------------------------------------------------------------------------


def test_the_sdk_sends_an_api_version_the_double_serves(index, pinecone_double):
    index.describe_index_stats()
    [rec] = pinecone_double.requests
    assert rec.headers["x-pinecone-api-version"] == "2026-07"
    assert rec.notes["api_version"] == "2026-07"


def test_an_unknown_api_version_is_refused(pinecone_double):
    r = httpx.post(
        pinecone_double.url + "/describe_index_stats",
        headers={"Api-Key": PineconeDouble.API_KEY, "X-Pinecone-Api-Version": "2019-01"},
        json={},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "INVALID_ARGUMENT" and "2019-01" in r.text


def test_a_request_without_an_api_version_is_served_as_the_oldest_supported(pinecone_double):
    r = httpx.post(
        pinecone_double.url + "/describe_index_stats",
        headers={"Api-Key": PineconeDouble.API_KEY},
        json={},
    )
    assert r.status_code == 200
    assert pinecone_double.requests[-1].notes["api_version"] == "2025-10"


# namespace limit ---------------------------------------------------------------------------


def test_a_write_that_would_create_one_namespace_too_many_is_a_403_quota_exceeded():
    with PineconeDouble(max_namespaces=STARTER_NAMESPACES) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        for i in range(100):
            idx.upsert(vectors=[("a", unit(0))], namespace=f"tenant-{i}")
        with pytest.raises(pinecone.ForbiddenError) as caught:
            idx.upsert(vectors=[("a", unit(0))], namespace="tenant-100")
        assert caught.value.status_code == 403
        assert caught.value.body["error"]["code"] == "QUOTA_EXCEEDED"
        assert "(100)" in caught.value.body["error"]["message"]
        idx.upsert(
            vectors=[("b", unit(1))], namespace="tenant-7"
        )  # existing ones still take writes
        idx.delete(delete_all=True, namespace="tenant-3")  # emptied, but still a namespace
        with pytest.raises(pinecone.ForbiddenError):
            idx.upsert(vectors=[("a", unit(0))], namespace="tenant-100")
        idx.delete_namespace(name="tenant-3")
        idx.upsert(vectors=[("a", unit(0))], namespace="tenant-100")
        assert double.namespace_count() == 100 and "tenant-100" in double.namespaces()
        idx.close()


def test_a_delete_in_a_namespace_that_does_not_exist_creates_none():
    with PineconeDouble(max_namespaces=1) as double:
        idx = Index(host=double.url, api_key=PineconeDouble.API_KEY)
        idx.delete(ids=["x"], namespace="ghost")
        idx.upsert(vectors=[("a", unit(0))], namespace="real")
        assert double.namespace_count() == 1
        idx.close()


def test_latency_delays_every_answer(fast_pinecone_retries):
    with PineconeDouble(latency=1.0) as double:
        slow = Index(host=double.url, api_key=PineconeDouble.API_KEY, timeout=0.2)
        with pytest.raises(pinecone.PineconeTimeoutError):
            slow.describe_index_stats()
        patient = Index(host=double.url, api_key=PineconeDouble.API_KEY, timeout=5)
        assert patient.describe_index_stats().dimension == 768
