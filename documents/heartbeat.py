"""Worker heartbeats as files under ``VAR_DIR/workers/``, for the embedded defaults.

On kombu's filesystem broker a ping is a broadcast through message files that the worker
polls: the answer often comes after /health/'s two seconds, so the page said "no worker" while
one was running. Instead, each worker's main process rewrites ``<name>.json`` every
WORKER_HEARTBEAT_SECONDS, and a worker counts as online while its file is fresh and its
process exists. This only works where the worker and the web server share a disk, which is
what the embedded defaults are; with Redis the ping is used.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import psutil
from django.conf import settings


def folder() -> Path:
    return Path(settings.VAR_DIR) / "workers"


def _path(name: str) -> Path:
    return folder() / (re.sub(r"[^A-Za-z0-9_.@-]", "_", name) + ".json")


def beat(name: str) -> None:
    """Write (or refresh) this worker's heartbeat; atomic, so a reader never sees half."""
    folder().mkdir(parents=True, exist_ok=True)
    path = _path(name)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(
        json.dumps(
            {"name": name, "pid": os.getpid(), "host": socket.gethostname(), "at": time.time()}
        )
    )
    partial.replace(path)


def stop(name: str) -> None:
    _path(name).unlink(missing_ok=True)


def _alive(record: dict) -> bool:
    if record.get("host") != socket.gethostname():
        return True  # another machine's worker: only the age of its file can tell
    try:
        return psutil.Process(int(record["pid"])).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError, KeyError, TypeError):
        return False


def online(*, now: float | None = None) -> list[str]:
    """Names of the workers whose heartbeat is at most three intervals old and whose process
    still runs."""
    now = now or time.time()
    max_age = 3 * settings.WORKER_HEARTBEAT_SECONDS
    names = []
    if not folder().is_dir():
        return names
    for path in folder().glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if now - float(record.get("at", 0)) <= max_age and _alive(record):
            names.append(record["name"])
    return sorted(names)
