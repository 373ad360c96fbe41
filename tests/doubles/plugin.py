"""Pytest fixtures for the HTTP doubles. Registered in tests/conftest.py
(``pytest_plugins = ["tests.doubles.plugin"]``); on its own: ``pytest -p tests.doubles.plugin``.

Each fixture gives a fresh server per test and stops it afterwards, so no state or queued
fault leaks from one test into the next.
"""

from __future__ import annotations

import pytest

from .gemini import GeminiDouble
from .pinecone import PineconeDouble
from .sentry import SentryDouble


@pytest.fixture
def gemini_double():
    with GeminiDouble() as double:
        yield double


@pytest.fixture
def pinecone_dimension() -> int:
    """Override in a module to give ``pinecone_double`` another index dimension."""
    return 768


@pytest.fixture
def pinecone_double(pinecone_dimension):
    with PineconeDouble(dimension=pinecone_dimension) as double:
        yield double


@pytest.fixture
def sentry_double():
    with SentryDouble() as double:
        yield double


@pytest.fixture
def fast_pinecone_retries(monkeypatch):
    """Let the pinecone SDK retry at full speed and with a full retry budget.

    The SDK's REST transport retries 429/5xx itself with 0.25-2 s sleeps, and keeps a
    process-global per-host retry budget that a test full of injected failures would drain,
    silently turning retries off for the tests after it (docs/external-services.md). Both hooks are
    private to pinecone 10.2.0; if they move, this fixture fails loudly rather than letting
    tests sleep. Yields the list of delays the SDK asked to sleep, for assertions."""
    from pinecone._internal import http_client
    from pinecone._internal.bulk import registry

    slept: list[float] = []
    http_client.get_budget_registry()._reset()
    registry.get_registry()._reset()  # the adaptive concurrency gates learn from 429s too
    monkeypatch.setattr(http_client, "_retry_sleep", slept.append)
    yield slept
    http_client.get_budget_registry()._reset()
    registry.get_registry()._reset()
