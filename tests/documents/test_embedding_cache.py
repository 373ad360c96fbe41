"""The embedding cache (documents/embedding_cache.py) in PostgreSQL, and the embedding stage
that reads it (documents/pipeline/embed.py: embed_chunks_cached) against the Gemini double."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from documents import embedding_cache
from documents.embedding_cache import EmbeddingCache
from documents.errors import TransientError
from documents.models import EmbeddingCacheEntry
from documents.pipeline.embed import cache_key, document_keys, embed_chunks_cached
from documents.pipeline.embedders.gemini import GeminiEmbedder
from tests.doubles.gemini import GeminiDouble

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedder(gemini_double):
    e = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=gemini_double.url)
    yield e
    e.close()


def cache_for(embedder, scope="tenant-a") -> EmbeddingCache:
    return EmbeddingCache(scope=scope, model=embedder.model_name, dimension=embedder.dimension)


TEXTS = [f"Clause {i}: the tenant pays the rent on the first day of month {i}." for i in range(7)]


def test_vectors_go_in_and_come_back_exactly():
    cache = EmbeddingCache(scope="s", model="m", dimension=4)
    vectors = {"a" * 64: np.array([0.1, -0.2, 0.3, 1e-8], dtype=np.float32)}
    cache.put_many(vectors)
    cache.put_many(vectors)  # a second worker writing the same key: no error
    found = cache.get_many(["a" * 64, "b" * 64])
    assert list(found) == ["a" * 64]
    assert np.array_equal(found["a" * 64], vectors["a" * 64])
    assert EmbeddingCache(scope="s", model="m", dimension=8).get_many(["a" * 64]) == {}


def test_the_key_changes_with_everything_that_changes_the_vector():
    base = {
        "scope": "t",
        "model": "m",
        "dimension": 768,
        "task_type": "RETRIEVAL_DOCUMENT",
        "title": "T",
        "text": "x",
    }
    keys = {cache_key(**base)}
    for field, other in [
        ("scope", "u"),
        ("model", "m2"),
        ("dimension", 1536),
        ("task_type", "RETRIEVAL_QUERY"),
        ("title", "T2"),
        ("text", "x "),
    ]:
        keys.add(cache_key(**{**base, field: other}))
    assert len(keys) == 7


def test_a_second_embedding_of_the_same_texts_sends_no_request(embedder, gemini_double):
    first = embed_chunks_cached(embedder, TEXTS, cache=cache_for(embedder), scope="tenant-a")
    sent = gemini_double.texts_embedded
    second = embed_chunks_cached(embedder, TEXTS, cache=cache_for(embedder), scope="tenant-a")
    assert (first.from_cache, second.from_cache) == (0, 7)
    assert sent == 7 and gemini_double.texts_embedded == 7
    assert np.array_equal(first.vectors, second.vectors)


def test_texts_repeated_in_a_document_are_sent_once(embedder, gemini_double):
    texts = [TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[0]]
    embedded = embed_chunks_cached(embedder, texts, cache=cache_for(embedder), scope="t")
    assert gemini_double.texts_embedded == 2
    assert np.array_equal(embedded.vectors[0], embedded.vectors[3])


def test_each_batch_is_kept_as_it_arrives_so_a_failure_half_way_loses_nothing_done(
    gemini_double,
):
    embedder = GeminiEmbedder(
        api_key=GeminiDouble.API_KEY, base_url=gemini_double.url, batch_size=3
    )
    cache = cache_for(embedder)
    batches = []

    def fail_the_third_batch(done):
        batches.append(done)
        if len(batches) == 2:
            gemini_double.fail_next(503)

    with pytest.raises(TransientError):
        embed_chunks_cached(
            embedder, TEXTS, cache=cache, scope="tenant-a", on_batch=fail_the_third_batch
        )
    assert EmbeddingCacheEntry.objects.count() == 6  # two batches of three were kept
    retry = embed_chunks_cached(embedder, TEXTS, cache=cache, scope="tenant-a")
    assert retry.from_cache == 6 and gemini_double.texts_embedded == 7


def test_tenants_do_not_share_cached_vectors(embedder, gemini_double):
    embed_chunks_cached(embedder, TEXTS, cache=cache_for(embedder, "a"), scope="a")
    other = embed_chunks_cached(embedder, TEXTS, cache=cache_for(embedder, "b"), scope="b")
    assert other.from_cache == 0
    assert embedding_cache.scopes_forget(["a"]) == 7
    assert EmbeddingCacheEntry.objects.filter(scope="b").count() == 7


def test_the_title_is_part_of_the_key_only_for_an_embedder_that_sends_it(embedder):
    with_title = document_keys(embedder, ["x"], title="Report", scope="s")
    assert with_title != document_keys(embedder, ["x"], title="Other", scope="s")

    class NoTitle:  # what the local embedder declares: no title, no task type
        model_name, dimension = "m", 4

    assert document_keys(NoTitle(), ["x"], title="A", scope="s") == document_keys(
        NoTitle(), ["x"], title="B", scope="s"
    )


def test_cleanup_drops_old_entries_then_the_least_recently_used_beyond_the_bound():
    cache = EmbeddingCache(scope="s", model="m", dimension=2)
    cache.put_many({f"{i:064d}": np.array([1.0, float(i)]) for i in range(10)})
    now = timezone.now()
    for i in range(10):
        EmbeddingCacheEntry.objects.filter(key=f"{i:064d}").update(
            used_at=now - timedelta(days=100 if i < 2 else 10 - i)
        )
    removed = embedding_cache.cleanup(now=now, max_entries=5, max_age_days=90)
    assert removed == 5
    kept = sorted(int(k) for k in EmbeddingCacheEntry.objects.values_list("key", flat=True))
    assert kept == [5, 6, 7, 8, 9]  # the most recently used
