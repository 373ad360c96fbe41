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


def test_health_is_503_when_the_broker_is_unreachable(tmp_path):
    """Run in a process of its own whose broker URL points at a port nobody listens on."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import _worker_env

    env = _worker_env(
        {
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
            "HEALTH_CHECK_TIMEOUT_SECONDS": "1",
            "DJANGO_SETTINGS_MODULE": "backoffice.settings_test",
        }
    )
    code = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/health/');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "VAR_DIR": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["broker"]["ok"] is False
    assert answer["body"]["database"]["ok"] is True
    assert os.environ.get("CELERY_BROKER_URL") != "redis://127.0.0.1:1/0"
