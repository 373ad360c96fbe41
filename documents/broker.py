"""What the queue still holds: which task ids are waiting in the broker or held by a worker.

The database is the truth (DESIGN invariant 1) and the queue only carries signals; the stalled
sweep asks this module whether a queued document still has a signal on its way before it
sends another, so a document that only waits for a free worker is never taken for dead.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from backoffice.celery import app
from documents import heartbeat


def _ids_from_payloads(payloads) -> set[str]:
    ids = set()
    for raw in payloads:
        try:
            message = json.loads(raw)
            if isinstance(message, list):  # kombu's unacked entries: [payload, exchange, key]
                message = message[0]
            ids.add(message["headers"]["id"])
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return ids


def _redis_ids(queue: str) -> set[str]:
    with app.connection_for_read() as conn:
        client = conn.default_channel.client
        waiting = client.lrange(queue, 0, -1)
        # Delivered but not yet acknowledged (acks_late): still owned by a worker process.
        unacked = client.hvals("unacked")
    return _ids_from_payloads(waiting) | _ids_from_payloads(unacked)


def _filesystem_messages(queue: str) -> list[Path]:
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    # kombu names each message file <time>_<uuid>.<queue>.msg
    return list(folder.glob(f"*.{queue}.msg"))


def _filesystem_ids(queue: str) -> set[str]:
    return _ids_from_payloads(p.read_bytes() for p in _filesystem_messages(queue))


def _worker_ids(timeout: float) -> set[str] | None:
    """Tasks the workers hold (running, reserved, or waiting for their countdown). None when
    no worker answered: then nothing can be said about what they hold."""
    inspector = app.control.inspect(timeout=timeout)
    replies = [inspector.active(), inspector.reserved(), inspector.scheduled()]
    if all(reply is None for reply in replies):
        return None
    ids = set()
    for reply in replies:
        for tasks in (reply or {}).values():
            for task in tasks:
                request = task.get("request", task)
                if request.get("id"):
                    ids.add(request["id"])
    return ids


def default_queue() -> str:
    return app.conf.task_default_queue


def live_task_ids(timeout: float = 2.0) -> set[str]:
    """Every task id the broker or a worker still holds for the default queue."""
    queue = default_queue()
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        ids = _filesystem_ids(queue)
    else:
        ids = _redis_ids(queue)
    held = _worker_ids(timeout)
    return ids | (held or set())


def queue_length(queue: str | None = None) -> int:
    """Messages waiting in a queue (the default one unless named): LLEN on Redis, message
    files on the filesystem broker. Raises when the broker does not answer within 2 s."""
    queue = queue or default_queue()
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return len(_filesystem_messages(queue))
    with app.connection_for_read(
        transport_options={"socket_timeout": 2, "socket_connect_timeout": 2}
    ) as conn:
        return int(conn.default_channel.client.llen(queue))


def workers_online(timeout: float = 1.0) -> list[str]:
    """Names of the workers that answered a ping within ``timeout`` seconds. On the
    filesystem broker a ping is too slow to trust, so the workers' heartbeat files answer."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return heartbeat.online()
    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


@dataclass(frozen=True)
class BrokerHealth:
    queue_name: str
    queue_length: int | None  # None: the broker did not answer in time
    workers: list | None  # worker names that answered a ping; None: the ping failed


# Threads, so a broker that hangs (a half-open socket, a connection retry loop) can never hang
# the page: the result is awaited with a timeout and the thread is left to finish on its own.
_HEALTH_POOL = None


def _health_pool():
    global _HEALTH_POOL
    if _HEALTH_POOL is None:
        _HEALTH_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broker-health")
    return _HEALTH_POOL


def broker_health(*, timeout: float = 3.0) -> BrokerHealth:
    """Queue length and workers online, each asked in a thread and awaited with a timeout."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    pool = _health_pool()
    length_future = pool.submit(queue_length, queue)
    workers_future = pool.submit(workers_online)
    deadline = time.monotonic() + timeout
    results = []
    for future in (length_future, workers_future):
        try:
            results.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except (FutureTimeout, Exception):  # noqa: BLE001 - shown as "unknown"
            results.append(None)
    return BrokerHealth(queue_name=queue, queue_length=results[0], workers=results[1])
