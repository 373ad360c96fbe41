"""The hard memory limit of a worker's pool processes, enforced from the main process.

Celery's ``--max-memory-per-child`` only replaces a child *after* its task ends, so a task
that never ends (a DOCX whose XML inflates to gigabytes) grows until the machine runs out.
This watchdog runs as a thread in the worker's main process, which runs no task and so is
never the one stuck: every WATCHDOG_INTERVAL_SECONDS it adds up the resident memory of each
pool child and the processes that child started (Tesseract), and kills a child over
WORKER_MEMORY_LIMIT_MB with SIGKILL, its own children first. Celery sees a lost worker and
the document goes down the lost-worker path: re-sent, its loss counted, failed for good past
PIPELINE_MAX_WORKER_LOSSES.

Why not ``RLIMIT_AS`` in each child: it limits address space, not memory, and torch with the
local model reserves about 1.5 GB of address space for 0.7 GB resident; and where it bites,
the allocation fails with a MemoryError (or a C library aborts) wherever it happens to be,
which leaves the child in an unknown state. A kill from outside is one clear path.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil

logger = logging.getLogger(__name__)

# A runaway inflate grows by a few hundred MB a second: at this interval the overshoot past
# the limit stays a fraction of it, and four children cost a few /proc reads per interval.
WATCHDOG_INTERVAL_SECONDS = 0.25


@dataclass(frozen=True)
class Kill:
    pid: int
    rss_bytes: int
    descendants: int


def _tree(child: psutil.Process) -> list[psutil.Process]:
    try:
        return [*child.children(recursive=True), child]
    except psutil.NoSuchProcess:
        return []


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


class MemoryWatchdog:
    """Kills the pool children of ``parent_pid`` whose process tree uses more than
    ``limit_bytes`` of resident memory."""

    def __init__(
        self,
        *,
        limit_bytes: int,
        parent_pid: int | None = None,
        interval: float = WATCHDOG_INTERVAL_SECONDS,
        on_kill: Callable[[Kill], None] | None = None,
    ):
        self.limit_bytes = limit_bytes
        self.parent = psutil.Process(parent_pid or os.getpid())
        self.interval = interval
        self.on_kill = on_kill
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[Kill]:
        """Look once; returns the children killed."""
        kills = []
        for child in self.parent.children():
            tree = _tree(child)
            rss = _rss(tree)
            if rss <= self.limit_bytes:
                continue
            for process in tree:  # the child is last: its own children go first
                try:
                    process.send_signal(signal.SIGKILL)
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue
            kill = Kill(pid=child.pid, rss_bytes=rss, descendants=len(tree) - 1)
            logger.error(
                "worker process %d used %d MB (limit %d MB) and was killed",
                kill.pid,
                rss // 2**20,
                self.limit_bytes // 2**20,
            )
            kills.append(kill)
            if self.on_kill is not None:
                self.on_kill(kill)
        return kills

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive a bad /proc read
                logger.exception("memory watchdog check failed")

    def start(self) -> MemoryWatchdog:
        self._thread = threading.Thread(target=self._run, name="memory-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
