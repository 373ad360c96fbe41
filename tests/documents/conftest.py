"""Fixtures of the document tests that run the production clients against doubles whose
Pinecone reads lag its writes, as the real service's do."""

from __future__ import annotations

import pytest

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
