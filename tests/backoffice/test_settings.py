"""Settings come from the environment; a malformed value stops start-up and names itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SERVICE_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "S3_BUCKET",
    "GEMINI_API_KEY",
    "PINECONE_INDEX_HOST",
    "PINECONE_API_KEY",
    "EMBEDDER",
    "VECTOR_STORE",
)


def read_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    clean.update({"VAR_DIR": str(tmp_path), **env})
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'],"
        " 'broker': settings.CELERY_BROKER_URL,"
        " 'storage': settings.STORAGES['default']['BACKEND'],"
        " 'embedder': settings.EMBEDDER, 'store': settings.VECTOR_STORE}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "backoffice.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_nothing_set_the_embedded_defaults_apply(tmp_path):
    result = read_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"broker": "filesystem://"' in result.stdout
    assert "FileSystemStorage" in result.stdout
    assert '"embedder": "local"' in result.stdout and '"store": "lancedb"' in result.stdout
    assert (tmp_path / "broker" / "out").is_dir()


def test_the_environment_switches_to_postgresql_redis_and_s3(tmp_path):
    result = read_settings(
        tmp_path,
        DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        S3_BUCKET="documents",
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout
    assert "redis://127.0.0.1:6379/0" in result.stdout
    assert "storages.backends.s3.S3Storage" in result.stdout


@pytest.mark.parametrize(
    "name, value",
    [
        ("DOCUMENT_MAX_UPLOAD_BYTES", "fifty"),
        ("OCR_DPI", "-3"),
        ("DEBUG", "perhaps"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("EMBEDDER", "openai"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = read_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr.splitlines()[-1], result.stderr[-500:]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GEMINI_QUOTA_HEADROOM", "1.5"),
        ("VECTOR_PURGE_WAIT_SECONDS", "0"),
        ("RECONCILE_REPAIR_SCHEDULED", "sometimes"),
        ("EMBEDDING_CACHE_MAX_ENTRIES", "lots"),
    ],
)
def test_a_bad_vector_or_quota_setting_stops_start_up_naming_it(tmp_path, name, value):
    result = read_settings(tmp_path, **{name: value})
    assert result.returncode != 0 and name in result.stderr
