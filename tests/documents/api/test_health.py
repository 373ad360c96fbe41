"""GET /health/: database, broker, storage and workers, each with a short timeout."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.django_db


def test_health_reports_each_part_and_answers_quickly_without_workers(
    client, settings, isolated_queue
):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
    started = time.monotonic()
    response = client.get("/health/")
    elapsed = time.monotonic() - started
    body = response.json()
    assert response.status_code == 200
    assert body["database"]["ok"] and body["broker"]["ok"] and body["storage"]["ok"]
    assert set(body) == {"status", "database", "broker", "storage", "workers"}
    assert elapsed < 10


def test_health_is_503_when_the_broker_is_unreachable(client, settings):
    from backoffice.celery import app

    previous = app.conf.broker_url
    # connection_for_write() builds its connection from the current configuration.
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
    try:
        response = client.get("/health/")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
