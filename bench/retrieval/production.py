"""The production search, scored by the benchmark and timed through its API.

A tenant of the back-office is filled with the benchmark's chunks as a run leaves them:
Document rows, Chunk rows (hence the lexical index in the database), vectors in the tenant's
LanceDB namespace (the benchmark's cached MiniLM vectors, so nothing is embedded again), vector
state written. ``ProductionRetriever`` answers ``search(query, k)`` by sending
``GET /api/search/?q=&k=`` through DRF's test client (in-process: the view, the serializers,
the service, the database and the store, no socket), so the row measures what the API
answers, with production's fusion and folding of copies. ``api_latency`` times the same
request on a synthetic tenant of 10,000 chunks.

Django is set up here with ``backoffice.settings_test`` (the throttles off: the benchmark
sends thousands of requests from one user), ``EMBEDDER=local``, ``VECTOR_STORE=lancedb`` and
``VAR_DIR=var/bench-production``; the database is ``--production-database-url`` (a
PostgreSQL URL, or ``sqlite`` for the embedded default's SQLite file under that folder).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var" / "bench-production"
WARM_UP = 10


def start_django(database_url: str) -> str:
    """Set up Django on ``database_url`` ("sqlite" for the embedded default) and migrate;
    returns the database vendor."""
    VAR.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(VAR)
    os.environ["EMBEDDER"] = "local"
    os.environ["VECTOR_STORE"] = "lancedb"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    if database_url == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    else:
        from services_env import ensure_database

        ensure_database(database_url)
        os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "backoffice.settings_test"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    return connection.vendor


def fill_tenant(name: str, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray):
    """A new tenant holding these chunks (ids ``<file>#<index>``), and a user who is its
    member; any earlier tenant of that name is deleted first. Returns (tenant, user, map of
    production chunk id to benchmark chunk id)."""
    from django.contrib.auth import get_user_model

    from documents.clients import get_vector_store
    from documents.models import Chunk, Document, Membership, Status, Tenant, VectorState
    from documents.pipeline.fusion import text_hash
    from documents.pipeline.types import VectorRecord

    store = get_vector_store()
    for old in Tenant.objects.filter(slug=name):
        store.delete_namespace(old.vector_namespace)
        Document.objects.filter(tenant=old).delete()
        old.delete()
    tenant = Tenant.objects.create(name=name, slug=name)
    user, _ = get_user_model().objects.get_or_create(username=f"{name}-bench", is_staff=True)
    Membership.objects.get_or_create(tenant=tenant, user=user)

    by_file: dict[str, list[int]] = {}
    for row, chunk_id in enumerate(ids):
        by_file.setdefault(chunk_id.rsplit("#", 1)[0], []).append(row)
    documents = {
        source: Document(
            id=uuid.uuid4(),
            tenant=tenant,
            title=source,
            original_filename=source,
            content_type="application/pdf",
            size_bytes=1,
            sha256=f"{len(source):064x}",
            storage_key=f"bench/{source}",
            status=Status.COMPLETED,
            stage="done",
            chunk_count=len(rows),
            vector_count=len(rows),
            vector_high=len(rows),
            vector_state=VectorState.WRITTEN,
        )
        for source, rows in by_file.items()
    }
    Document.objects.bulk_create(documents.values(), batch_size=500)
    chunks, records, back = [], [], {}
    for source, rows in by_file.items():
        document = documents[source]
        for index, row in enumerate(rows):
            vector_id = f"{document.pk}#{index}"
            back[vector_id] = ids[row]
            chunks.append(
                Chunk(
                    document=document,
                    index=index,
                    text=texts[row],
                    token_count=len(texts[row].split()),
                    page_start=1,
                    page_end=1,
                    char_start=0,
                    char_end=len(texts[row]),
                    vector_id=vector_id,
                    text_hash=text_hash(texts[row]),
                )
            )
            records.append(
                VectorRecord(
                    id=vector_id,
                    values=vectors[row],
                    metadata={
                        "document_id": str(document.pk),
                        "chunk_index": index,
                        "text": texts[row],
                    },
                )
            )
    Chunk.objects.bulk_create(chunks, batch_size=2000)
    store.upsert(tenant.vector_namespace, records)
    _analyze()
    return tenant, user, back


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


class ProductionRetriever:
    """``search(query, k)`` through ``GET /api/search/``; answers benchmark chunk ids."""

    def __init__(self, tenant, user, back: dict[str, str], vendor: str):
        from rest_framework.test import APIClient

        self.name = f"production search (GET /api/search/, {vendor})"
        self._client = APIClient()
        self._client.force_authenticate(user)
        self._tenant = tenant.slug
        self._back = back
        self.modes: dict[str, int] = {}

    def get(self, query: str, k: int):
        response = self._client.get("/api/search/", {"q": query, "k": k, "tenant": self._tenant})
        if response.status_code != 200:
            raise RuntimeError(f"search answered {response.status_code}: {response.content!r}")
        return response.json()

    def search(self, query: str, k: int) -> list[str]:
        body = self.get(query, k)
        self.modes[body["mode"]] = self.modes.get(body["mode"], 0) + 1
        return [self._back[hit["chunk_id"]] for hit in body["results"]]


def api_latency(retriever: ProductionRetriever, queries: Sequence[str], k: int = 10) -> dict:
    """Median and p95 of the request's wall time, after ``WARM_UP`` untimed requests; and,
    interleaved with the requests so that both see the same load, of embedding the query
    alone (the embedder the API uses), which is most of it."""
    from documents.clients import get_embedder

    embedder = get_embedder()
    for query in queries[:WARM_UP]:
        retriever.get(query, k)
        embedder.embed_query(query)
    requests, embeds = [], []
    for query in queries:
        start = time.perf_counter()
        retriever.get(query, k)
        requests.append(time.perf_counter() - start)
        start = time.perf_counter()
        embedder.embed_query(query)
        embeds.append(time.perf_counter() - start)
    return {**_spread(requests), "embed_query": _spread(embeds), "k": k}


def _spread(seconds: Sequence[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], 2),
        "queries": len(ms),
    }
