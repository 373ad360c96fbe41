"""The Pinecone double, driven by the official pinecone SDK (REST ``Index``): it behaves like a
cosine index's data plane and refuses what the service refuses. The few limits the SDK checks
itself before sending are shown against the double with plain HTTP."""

from __future__ import annotations

import httpx
import numpy as np
import pinecone
import pytest
from pinecone import Index

from tests.doubles.pinecone import PineconeDouble, matches_filter


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
