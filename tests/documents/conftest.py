"""Fixtures of the document tests that run the production clients against doubles whose
Pinecone reads lag its writes, as the real service's do."""

from __future__ import annotations

import pytest
from django.db import connection

from documents.models import VectorState
from tests.doubles.gemini import GeminiDouble, fake_vector
from tests.doubles.pinecone import PineconeDouble
from tests.factories import make_text_chunks

# Reads see a write 1.5-2.5 s after it (seeded): the real service's "slight delay".
LAG = {"lag_seconds": 1.5, "lag_jitter": 1.0, "seed": 11}


def use_doubles(settings, gemini_url: str, pinecone_url: str) -> None:
    """Point the production embedder and store (Gemini, Pinecone) at the doubles."""
    settings.EMBEDDER = "gemini"
    settings.GEMINI_API_KEY = GeminiDouble.API_KEY
    settings.GEMINI_BASE_URL = gemini_url
    settings.VECTOR_STORE = "pinecone"
    settings.PINECONE_API_KEY = PineconeDouble.API_KEY
    settings.PINECONE_INDEX_HOST = pinecone_url


@pytest.fixture
def lagging(settings, fast_pinecone_retries):
    """Gemini and a lagging Pinecone, with the settings that point the clients at them and
    a purge that looks every 0.2 s for at most 20 s."""
    with GeminiDouble() as gemini, PineconeDouble(**LAG) as pinecone:
        use_doubles(settings, gemini.url, pinecone.url)
        settings.VECTOR_PURGE_POLL_SECONDS = 0.2
        settings.VECTOR_PURGE_WAIT_SECONDS = 20
        yield gemini, pinecone


# --- clients for the runner's tests (test_processing*.py) ---


@pytest.fixture
def local_clients(settings, tmp_path):
    settings.EMBEDDER = "local"
    settings.VECTOR_STORE = "lancedb"
    settings.LANCEDB_URI = str(tmp_path / "lancedb")


@pytest.fixture
def remote_clients(settings, gemini_double, pinecone_double, fast_pinecone_retries):
    use_doubles(settings, gemini_double.url, pinecone_double.url)
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    return gemini_double, pinecone_double


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("lock_timeout makes the database fail on demand on PostgreSQL only")


@pytest.fixture
def search_backends(settings, gemini_double, pinecone_double):
    """The production embedder and store for searches, against the Gemini and Pinecone
    doubles (reads without lag)."""
    use_doubles(settings, gemini_double.url, pinecone_double.url)
    return pinecone_double


@pytest.fixture
def indexed(search_backends):
    """``index(document, texts, *, like=None, query=...)``: the document's chunks as a run
    leaves them -- rows (hence the lexical index), vectors in the Pinecone double, vector state
    written. Chunk ``like`` gets the query's own vector (the vector side's best match); the
    others a vector of their text."""

    def index(document, texts, *, like=None, query=""):
        make_text_chunks(document, texts)
        type(document).objects.filter(pk=document.pk).update(
            vector_state=VectorState.WRITTEN, vector_count=len(texts)
        )
        search_backends.seed(
            document.tenant.vector_namespace,
            [
                (
                    f"{document.pk}#{i}",
                    fake_vector(query, "RETRIEVAL_QUERY", 768)
                    if i == like
                    else fake_vector(text, "RETRIEVAL_DOCUMENT", 768),
                    {"document_id": str(document.pk), "chunk_index": i, "text": text},
                )
                for i, text in enumerate(texts)
            ],
        )

    return index
