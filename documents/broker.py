"""What the queue still holds: which task ids are waiting in the broker or held by a worker.

The database is the truth (DESIGN invariant 1) and the queue only carries signals; the stalled
sweep asks this module whether a queued document still has a signal on its way before it
sends another, so a document that only waits for a free worker is never taken for dead.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from backoffice.celery import app


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
    """Names of the workers that answered a ping within ``timeout`` seconds."""
    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)
