"""Settings come from the environment; a malformed value stops start-up and names itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backoffice.secret_key import PUBLISHED_KEYS

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
    "PRODUCTION",
    "DEBUG",
    "SECRET_KEY_FALLBACKS",
)


def settings_env(tmp_path, **env) -> dict:
    """The test process's environment without the service variables, with ``env`` on top; a
    value of None removes the variable."""
    clean = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    clean.update({"VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "backoffice.settings"})
    clean.update(env)
    return {k: v for k, v in clean.items() if v is not None}


def read_settings(tmp_path, *names, **env) -> subprocess.CompletedProcess:
    """Start a process that reads the production settings; it prints the default summary, or
    the named settings, as JSON."""
    if names:
        code = (
            "import django, json; from django.conf import settings; django.setup();"
            f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
        )
    else:
        code = (
            "import django, json; from django.conf import settings; django.setup();"
            "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'],"
            " 'broker': settings.CELERY_BROKER_URL,"
            " 'storage': settings.STORAGES['default']['BACKEND'],"
            " 'embedder': settings.EMBEDDER, 'store': settings.VECTOR_STORE}))"
        )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=settings_env(tmp_path, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def values(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def last_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_with_nothing_set_the_embedded_defaults_apply(tmp_path):
    result = read_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"broker": "filesystem://"' in result.stdout
    assert "FileSystemStorage" in result.stdout
    assert '"embedder": "local"' in result.stdout and '"store": "lancedb"' in result.stdout
    assert (tmp_path / "broker" / "out").is_dir()


def test_the_local_embedder_runs_on_int8_weights_unless_torch_is_asked_for(tmp_path):
    name = "LOCAL_EMBEDDING_BACKEND"
    assert values(read_settings(tmp_path, name, **{name: None})) == {name: "onnx-int8"}
    assert values(read_settings(tmp_path, name, **{name: "torch"})) == {name: "torch"}


def test_the_worker_processes_share_the_cores_for_embedding_unless_told_otherwise(tmp_path):
    name, cores = "LOCAL_EMBEDDING_THREADS", len(os.sched_getaffinity(0))
    for concurrency in (1, 2, 4, cores * 3):
        read = read_settings(tmp_path, name, CELERY_WORKER_CONCURRENCY=str(concurrency))
        assert values(read) == {name: max(1, cores // concurrency)}
    assert values(read_settings(tmp_path, name, **{name: "3"})) == {name: 3}
    assert read_settings(tmp_path, name, **{name: "0"}).returncode != 0


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


# --- the secret key ---------------------------------------------------------------------------

STRONG_KEY = "k3y-" + "x7Qp9-Lm2Zr8Tw4Vb6Nc1Hd5Jf0Gs3Ky" * 2


def test_with_no_key_the_embedded_defaults_generate_one_and_keep_it_under_var(tmp_path):
    first = values(read_settings(tmp_path, "SECRET_KEY", SECRET_KEY=None))
    second = values(read_settings(tmp_path, "SECRET_KEY", SECRET_KEY=None))
    key_file = tmp_path / "secret_key"
    assert first["SECRET_KEY"] == second["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first["SECRET_KEY"]) >= 50
    # Only the owner may read it.
    assert key_file.stat().st_mode & 0o077 == 0
    # Another var/ folder, another key: it is generated, not a constant.
    other = values(read_settings(tmp_path / "other", "SECRET_KEY", SECRET_KEY=None))
    assert other["SECRET_KEY"] != first["SECRET_KEY"]


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"},
        {"PRODUCTION": "true"},
    ],
)
def test_a_deployment_with_debug_off_and_no_key_refuses_to_start(tmp_path, env):
    line = last_error_line(read_settings(tmp_path, SECRET_KEY=None, **env))
    assert "SECRET_KEY is not set" in line
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "published, env",
    # DEBUG on the embedded defaults is where a weak key is tolerated; a published one is not.
    [(key, {"DEBUG": "true"}) for key in sorted(PUBLISHED_KEYS)]
    + [("dev-only-insecure-key-change-me", {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"})],
)
def test_a_published_key_is_refused_wherever_it_is_set(tmp_path, published, env):
    line = last_error_line(read_settings(tmp_path, SECRET_KEY=published, **env))
    assert "SECRET_KEY is a published value" in line


def test_a_published_key_among_the_fallbacks_is_refused(tmp_path):
    result = read_settings(tmp_path, SECRET_KEY=STRONG_KEY, SECRET_KEY_FALLBACKS="change-me")
    assert "SECRET_KEY_FALLBACKS is a published value" in last_error_line(result)


def test_a_weak_key_is_refused_with_debug_off_and_tolerated_with_debug_on(tmp_path):
    line = last_error_line(read_settings(tmp_path, SECRET_KEY="short-but-mine"))
    assert "SECRET_KEY is too weak" in line and "at least 50" in line
    debug = values(read_settings(tmp_path, "SECRET_KEY", SECRET_KEY="short-but-mine", DEBUG="1"))
    assert debug["SECRET_KEY"] == "short-but-mine"
    strong = values(read_settings(tmp_path, "SECRET_KEY", SECRET_KEY=STRONG_KEY))
    assert strong["SECRET_KEY"] == STRONG_KEY


# --- HTTPS and check --deploy ------------------------------------------------------------------

_HTTPS_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
)


def test_https_settings_are_off_by_default_so_the_embedded_defaults_work_over_http(tmp_path):
    got = values(read_settings(tmp_path, *_HTTPS_SETTINGS))
    assert got == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_https_settings_are_switched_by_environment_variables(tmp_path):
    got = values(
        read_settings(
            tmp_path,
            *_HTTPS_SETTINGS,
            SECURE_SSL_REDIRECT="true",
            SECURE_HSTS_SECONDS="3600",
            SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
            SECURE_HSTS_PRELOAD="yes",
            SESSION_COOKIE_SECURE="1",
            CSRF_COOKIE_SECURE="on",
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        )
    )
    assert got == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        # json turns the tuple into a list
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def documented_production_environment() -> dict[str, str]:
    """The variables of the production block of .env.example (``# NAME=value`` lines between
    its "production" markers), as README's "Production" section tells an operator to set."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    start = lines.index("# --- production: begin")
    end = lines.index("# --- production: end")
    env = {}
    for line in lines[start + 1 : end]:
        text = line.removeprefix("#").strip()
        if "=" in text and not text.startswith(("-", " ")) and text.split("=")[0].isupper():
            name, value = text.split("=", 1)
            env[name] = value
    return env


def check_deploy(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=settings_env(tmp_path, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_the_documented_production_environment(tmp_path):
    env = documented_production_environment()
    # The documented value is a placeholder to replace, which the settings refuse as published.
    assert env["SECRET_KEY"] in PUBLISHED_KEYS
    assert "DEBUG" in env and "ALLOWED_HOSTS" in env and "SECURE_HSTS_SECONDS" in env
    result = check_deploy(tmp_path, **{**env, "SECRET_KEY": STRONG_KEY})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_the_https_variables(tmp_path):
    env = documented_production_environment()
    https = {name: None for name in env if name.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    result = check_deploy(tmp_path, **{**env, "SECRET_KEY": STRONG_KEY, **https})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GEMINI_QUOTA_HEADROOM", "1.5"),
        ("VECTOR_PURGE_WAIT_SECONDS", "0"),
        ("RECONCILE_REPAIR_SCHEDULED", "sometimes"),
        ("EMBEDDING_CACHE_MAX_ENTRIES", "lots"),
        ("SEARCH_NEAR_DUPLICATE_JACCARD", "0"),
        ("SEARCH_NEAR_DUPLICATE_JACCARD", "1.2"),
    ],
)
def test_a_bad_vector_or_quota_setting_stops_start_up_naming_it(tmp_path, name, value):
    result = read_settings(tmp_path, **{name: value})
    assert result.returncode != 0 and name in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIPELINE_MAX_ZIP_PART_BYTES", "0"),
        ("PIPELINE_MAX_ZIP_RATIO", "-1"),
        ("PIPELINE_MAX_PDF_STREAM_BYTES", "a lot"),
        ("PIPELINE_MAX_IMAGE_PIXELS", "-5"),
        ("PIPELINE_MAX_OCR_PAGES", "0"),
        ("PIPELINE_MAX_CHARS", "ten"),
        ("PIPELINE_MAX_DOCUMENT_SECONDS", "0"),
    ],
)
def test_a_bad_budget_stops_start_up_naming_it(tmp_path, name, value):
    result = read_settings(tmp_path, **{name: value})
    assert result.returncode != 0 and name in result.stderr


def test_a_document_time_limit_past_the_visibility_timeout_is_refused_on_redis(tmp_path):
    result = read_settings(
        tmp_path,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        PIPELINE_MAX_DOCUMENT_SECONDS="7200",
    )
    assert result.returncode != 0 and "PIPELINE_MAX_DOCUMENT_SECONDS" in result.stderr
