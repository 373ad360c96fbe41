"""The Procfile starts the worker with the memory settings the back-office reads, and the web
server with connections kept open longer than the proxies in front of it keep theirs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def procfile_line(name: str) -> str:
    return next(
        line.split(":", 1)[1]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith(f"{name}:")
    )


def worker_command(**env) -> list[str]:
    """The worker line as honcho's shell expands it, with ``env`` set."""
    line = procfile_line("worker")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "WORKER_"))}
    out = subprocess.run(
        ["sh", "-c", f"printf '%s\\n' {line}"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


@pytest.mark.parametrize(
    ("env", "kib"), [({}, 1536 * 1024), ({"WORKER_RECYCLE_MEMORY_MB": "900"}, 900 * 1024)]
)
def test_the_worker_is_recycled_above_the_memory_the_setting_gives(env, kib):
    command = worker_command(**env)
    assert command[command.index("--max-memory-per-child") + 1] == str(kib)


def test_the_setting_and_the_procfile_agree_on_the_default(settings):
    assert settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD == settings.WORKER_RECYCLE_MEMORY_MB * 1024
    command = worker_command()
    assert int(command[command.index("--max-memory-per-child") + 1]) == (
        settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD
    )


# The idle timeout of the common load balancers in front of gunicorn (AWS ALB, Google Cloud's
# and nginx's upstream keepalive defaults are 60 s or less).
PROXY_IDLE_SECONDS = 60


def test_the_web_server_keeps_idle_connections_longer_than_a_proxy_does():
    """With gunicorn's default of 2 s, a client or proxy that reuses a connection after a
    pause races the server's close and gets a reset (bench_upload_latency.py saw uploads fail
    so); the side that closes first must be the client's."""
    web = procfile_line("web").split()
    assert web[web.index("--worker-class") + 1] == "gthread"  # keep-alive needs a threaded worker
    assert int(web[web.index("--keep-alive") + 1]) > PROXY_IDLE_SECONDS
