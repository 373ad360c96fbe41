"""The embedding cache: vectors kept in the database by the exact request that produced them.

Every worker process, on every machine, reads and writes the same table, so a retry after an
indexing failure, a reprocess of unchanged text and identical chunks in different documents of
a tenant cost no embedding request (a dict in the process would be lost with the process and
shared with nobody). The keys are made by ``documents.pipeline.embed.cache_key``: model,
dimension, task type, title (when sent) and text, hashed, within the tenant's namespace, so a
deleted tenant's vectors can be removed with it.

The table is bounded: ``cleanup`` (run by the hourly cleanup) drops entries unused for
``EMBEDDING_CACHE_MAX_AGE_DAYS`` and then the least recently used beyond
``EMBEDDING_CACHE_MAX_ENTRIES``.

The API is deliberately small -- ``get_many(keys) -> {key: vector}`` and
``put_many({key: vector})`` -- so batching across documents can sit on top of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from documents.models import EmbeddingCacheEntry

# Keys per IN (...) query: SQLite allows 32,766 parameters, PostgreSQL far more; a document
# of a few thousand chunks takes a few queries.
_QUERY_BATCH = 2000
# A hit refreshes used_at at most this often: an UPDATE per hit would double the cost of a
# read, and the age limit is counted in days.
_TOUCH_AFTER = timedelta(hours=1)


class EmbeddingCache:
    """The cache as one scope (a tenant's namespace), model and dimension see it."""

    def __init__(self, *, scope: str, model: str, dimension: int):
        self.scope = scope
        self.model = model
        self.dimension = dimension

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        stale: list[str] = []
        cutoff = timezone.now() - _TOUCH_AFTER
        for start in range(0, len(keys), _QUERY_BATCH):
            rows = EmbeddingCacheEntry.objects.filter(
                key__in=keys[start : start + _QUERY_BATCH], dimension=self.dimension
            ).values_list("key", "vector", "used_at")
            for key, blob, used_at in rows:
                vector = np.frombuffer(bytes(blob), dtype="<f4")
                if len(vector) != self.dimension:
                    continue
                found[key] = vector
                if used_at < cutoff:
                    stale.append(key)
        if stale:
            EmbeddingCacheEntry.objects.filter(key__in=stale).update(used_at=timezone.now())
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [
            EmbeddingCacheEntry(
                key=key,
                scope=self.scope,
                model=self.model,
                dimension=self.dimension,
                vector=np.asarray(vector, dtype="<f4").tobytes(),
            )
            for key, vector in vectors.items()
        ]
        # Two workers embedding the same text at once write the same vector under the same
        # key: the second insert is a no-op, not an error.
        EmbeddingCacheEntry.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def scopes_forget(scopes: Iterable[str]) -> int:
    """Remove the cached vectors of these scopes (a deleted tenant's texts go with it)."""
    deleted, _ = EmbeddingCacheEntry.objects.filter(scope__in=list(scopes)).delete()
    return deleted


def cleanup(*, now=None, max_entries: int | None = None, max_age_days: int | None = None) -> int:
    """Drop entries unused for ``max_age_days``, then the least recently used beyond
    ``max_entries``. Returns how many were removed."""
    now = now or timezone.now()
    max_entries = settings.EMBEDDING_CACHE_MAX_ENTRIES if max_entries is None else max_entries
    max_age_days = settings.EMBEDDING_CACHE_MAX_AGE_DAYS if max_age_days is None else max_age_days
    removed, _ = EmbeddingCacheEntry.objects.filter(
        used_at__lt=now - timedelta(days=max_age_days)
    ).delete()
    excess = EmbeddingCacheEntry.objects.count() - max_entries
    while excess > 0:
        with transaction.atomic():
            oldest = list(
                EmbeddingCacheEntry.objects.order_by("used_at").values_list("key", flat=True)[
                    : min(excess, 5000)
                ]
            )
            count, _ = EmbeddingCacheEntry.objects.filter(key__in=oldest).delete()
        if not count:
            break
        removed += count
        excess -= count
    return removed
