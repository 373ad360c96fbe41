"""``GET /health/``: the database, the broker, the storage and the workers, each checked
with a short timeout so the endpoint answers even when something hangs. Anyone gets a status
word (``ok``, ``degraded`` when no worker answers, ``unavailable`` with a 503 when the database,
the broker or the storage fails); staff get each check's details."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse

from backoffice.celery import app
from documents import broker


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # This runs in a short-lived thread with its own connection: do not leak it.
        connection.close()
    return "ok"


def _broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    return "ok"


def _storage() -> str:
    default_storage.exists("health-check-probe")
    return "ok"


def _workers() -> str:
    names = broker.workers_online(timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    return f"{len(names)} online" if names else "none answered"


_CHECKS = {"database": _database, "broker": _broker, "storage": _storage, "workers": _workers}


def run_checks() -> dict[str, dict]:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    results: dict[str, dict] = {}
    # Each check runs in its own thread so one that hangs costs only its own timeout.
    pool = ThreadPoolExecutor(max_workers=len(_CHECKS))
    futures = {name: pool.submit(check) for name, check in _CHECKS.items()}
    deadline = time.monotonic() + timeout + 1
    for name, future in futures.items():
        try:
            detail = future.result(timeout=max(0.1, deadline - time.monotonic()))
            healthy = name != "workers" or not detail.startswith("none")
            results[name] = {"ok": healthy, "detail": detail}
        except FutureTimeout:
            results[name] = {"ok": False, "detail": f"no answer within {timeout:g} s"}
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def health(request):
    """The status word for everyone (a load balancer needs no more); each check's result and
    failure text only for signed-in staff, since exception messages name hosts, buckets and
    ports."""
    results = run_checks()
    # Workers being down does not make the web process unhealthy, but it is reported.
    essential = all(results[name]["ok"] for name in ("database", "broker", "storage"))
    if essential:
        body = {"status": "ok" if results["workers"]["ok"] else "degraded"}
    else:
        body = {"status": "unavailable"}
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        body.update(results)
    response = JsonResponse(body, status=200 if essential else 503)
    response["Cache-Control"] = "no-store"
    return response
