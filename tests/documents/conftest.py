"""Fixtures of the document tests that run the production clients against doubles whose
Pinecone reads lag its writes, as the real service's do."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.doubles.gemini import GeminiDouble
from tests.doubles.pinecone import PineconeDouble

# Reads see a write 1.5-2.5 s after it (seeded): the real service's "slight delay".
LAG = {"lag_seconds": 1.5, "lag_jitter": 1.0, "seed": 11}


@pytest.fixture
def lagging(settings, fast_pinecone_retries):
    """Gemini and a lagging Pinecone, with the settings that point the clients at them and
    a purge that looks every 0.2 s for at most 20 s."""
    with GeminiDouble() as gemini, PineconeDouble(**LAG) as pinecone:
        settings.EMBEDDER = "gemini"
        settings.GEMINI_API_KEY = GeminiDouble.API_KEY
        settings.GEMINI_BASE_URL = gemini.url
        settings.VECTOR_STORE = "pinecone"
        settings.PINECONE_API_KEY = PineconeDouble.API_KEY
        settings.PINECONE_INDEX_HOST = pinecone.url
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
    settings.EMBEDDER = "gemini"
    settings.GEMINI_API_KEY = GeminiDouble.API_KEY
    settings.GEMINI_BASE_URL = gemini_double.url
    settings.VECTOR_STORE = "pinecone"
    settings.PINECONE_API_KEY = PineconeDouble.API_KEY
    settings.PINECONE_INDEX_HOST = pinecone_double.url
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    return gemini_double, pinecone_double


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("lock_timeout makes the database fail on demand on PostgreSQL only")
