"""GET /health/: database, broker, storage and workers, each with a short timeout; the details
only for staff, a status word for everyone else."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.django_db


def test_health_reports_each_part_to_staff_and_answers_quickly_without_workers(
    client, settings, isolated_queue, personas
):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
    client.force_login(personas.staff_a)
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
    # Anonymous: the status word only.
    assert answer["body"] == {"status": "unavailable"}
    assert os.environ.get("CELERY_BROKER_URL") != "redis://127.0.0.1:1/0"


def test_the_public_answer_is_a_status_word(client, settings, isolated_queue):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
    response = client.get("/health/")
    assert response.status_code == 200
    assert set(response.json()) == {"status"}
    assert response.json()["status"] in {"ok", "degraded"}


@pytest.fixture
def unreachable_s3(settings):
    """Storage on an S3 endpoint nobody listens on: its check fails with botocore's message,
    which names the endpoint."""
    from django.core.files.storage import storages

    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "internal-bucket",
                "endpoint_url": "http://127.0.0.1:1",
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
            },
        },
    }
    storages._storages.pop("default", None)
    yield
    storages._storages.pop("default", None)


def test_a_failing_check_shows_no_exception_text_to_the_public(
    client, unreachable_s3, isolated_queue
):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"127.0.0.1:1" not in response.content


def test_staff_see_why_a_check_failed(client, unreachable_s3, isolated_queue, personas):
    client.force_login(personas.staff_a)
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["storage"]["ok"] is False
    assert body["database"]["ok"] is True
    assert body["storage"]["detail"]
