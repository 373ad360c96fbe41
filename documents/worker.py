"""What a Celery worker does around its tasks, wired to Celery's signals (``tasks.py``
imports this module so the receivers are connected wherever the tasks are).

In the main process: at start, give the session's autogroup the worker's nice value
(``priority``) and remove what dead processes left in PIPELINE_TMP_DIR; once the
pool runs, start the memory watchdog and the heartbeat file; when Celery gives up re-sending a
document's task after its worker died, fail the document. In every pool process: send
temporary files to a folder of its own, and remove what dead processes left.
"""

from __future__ import annotations

import logging
import threading

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import signals
from django.conf import settings
from django.db import connection

from documents import dispatch, heartbeat, lifecycle, priority, scratch
from documents.pipeline.budgets import document_time_limit
from documents.watchdog import MemoryWatchdog

logger = logging.getLogger(__name__)


class _Repeat:
    """Call ``function`` every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float, function, name: str):
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval, function), name=name, daemon=True
        )

    def _run(self, interval, function):
        while True:
            try:
                function()
            except Exception:  # noqa: BLE001 - a missed beat must not end the loop
                logger.exception("%s failed", self._thread.name)
            if self._stopped.wait(interval):
                return

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopped.set()
        self._thread.join(timeout=5)


_running: dict[str, object] = {}


@signals.worker_init.connect
def remove_leftovers_at_start(**_) -> None:
    scratch.remove_leftovers()


@signals.worker_init.connect
def lower_the_sessions_priority(**_) -> None:
    # Before the pool forks; the pool processes are in the same session and autogroup.
    priority.session_like_process()


@signals.worker_ready.connect
def start_supervision(sender=None, **_) -> None:
    # After the pool started: threads begun earlier would be forked into every child.
    name = sender.hostname
    _running["name"] = name
    _running["heartbeat"] = _Repeat(
        settings.WORKER_HEARTBEAT_SECONDS, lambda: heartbeat.beat(name), "worker-heartbeat"
    ).start()
    if settings.WORKER_MEMORY_LIMIT_MB:
        _running["watchdog"] = MemoryWatchdog(
            limit_bytes=settings.WORKER_MEMORY_LIMIT_MB * 2**20
        ).start()


@signals.worker_shutdown.connect
def stop_supervision(**_) -> None:
    for key in ("watchdog", "heartbeat"):
        running = _running.pop(key, None)
        if running is not None:
            running.stop()
    if "name" in _running:
        heartbeat.stop(_running.pop("name"))


@signals.worker_process_init.connect
def prepare_pool_process(**_) -> None:
    scratch.use_for_tempfile()
    scratch.remove_leftovers()


@signals.task_failure.connect
def fail_document_after_lost_worker(sender=None, task_id=None, exception=None, args=None, **_):
    """Sent in the main process when a task's worker died and Celery will not re-send it
    (task_retry_on_worker_lost ran out of max_retries), or when the task's hard time limit
    killed it: the document must end ``failed``."""
    if getattr(sender, "name", None) != dispatch.PROCESS_DOCUMENT:
        return
    if not isinstance(exception, WorkerLostError | TimeLimitExceeded) or not args:
        return
    try:
        if isinstance(exception, TimeLimitExceeded):
            # The hard time limit killed the pool process: the document's wall time is spent.
            error = document_time_limit(
                settings.PIPELINE_MAX_DOCUMENT_SECONDS,
                settings.PIPELINE_MAX_DOCUMENT_SECONDS + settings.PIPELINE_TIME_LIMIT_GRACE_SECONDS,
            )
            if lifecycle.fail_after_time_limit(args[0], error, task_id=task_id):
                logger.warning("document %s failed at its hard time limit", args[0])
            return
        error = lifecycle.fail_after_worker_lost(args[0], task_id=task_id)
        if error is not None:
            logger.warning("document %s failed after its worker was lost: %s", args[0], error)
    finally:
        # The main process forks new pool processes: it keeps no connection open (unless
        # it is inside a transaction, which only happens when a test sends the signal).
        if not connection.in_atomic_block:
            connection.close()
