"""Start and stop real ``celery worker`` processes for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_READY_MARK = "ready."


class WorkerProcess:
    def __init__(
        self,
        *,
        env: dict,
        name: str,
        concurrency: int = 2,
        queue: str | None = None,
        nice: int = 0,
        own_session: bool = False,
    ):
        """``nice`` and ``own_session`` start it as the Procfile's line under honcho does:
        ``nice -n N celery …`` in a session of its own."""
        self.env = env
        self.nice, self.own_session = nice, own_session
        self.name = name
        self.concurrency = concurrency
        self.queue = queue or env.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
        var_dir = Path(env.get("VAR_DIR", "var"))
        var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = var_dir / f"worker-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            (["nice", "-n", str(self.nice)] if self.nice else [])
            + [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backoffice",
                "worker",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                "-Q",
                self.queue,
                "-n",
                f"{self.name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited early; see {self.log_path}:\n{self.log()}"
                )
            if _READY_MARK in self.log():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout}s; see {self.log_path}")

    def log(self) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(self._offset)
            return fh.read().decode("utf-8", "replace")

    def child_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        _stop(self.process, timeout=30)
        if getattr(self, "_log", None):
            self._log.close()


class BeatProcess:
    """A real ``celery beat`` with django-celery-beat's database scheduler: one more process
    writing to the database (its schedule rows) while workers run."""

    def __init__(self, *, env: dict, name: str):
        self.env = env
        var_dir = Path(env.get("VAR_DIR", "var"))
        var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = var_dir / f"beat-{name}.log"
        self.schedule_path = var_dir / f"beat-{name}.schedule"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backoffice",
                "beat",
                "--loglevel=INFO",
                "-S",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--schedule",
                str(self.schedule_path),
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.process, timeout=20)
        if getattr(self, "_log", None):
            self._log.close()


def ping(worker: WorkerProcess, timeout: float = 5.0) -> bool:
    """Whether the worker's main process answers a remote-control ping."""
    from backoffice.celery import app

    hostname = f"{worker.name}-{os.getpid()}@{socket.gethostname()}"
    replies = app.control.ping(destination=[hostname], timeout=timeout) or []
    return any(hostname in reply for reply in replies)


def _stop(process: subprocess.Popen | None, *, timeout: float) -> None:
    """SIGTERM (Celery's warm shutdown), then SIGKILL if it has not ended within ``timeout``."""
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
