"""Run a snippet in a fresh interpreter and read the peak resident memory it reports.

The child prints its VmHWM (KiB, from /proc: ru_maxrss would carry over the parent's size)
followed by two integers of its own (pages read, characters).

``run_child_capped`` is for code that may not end well (bench_hostile.py): the child runs
under an address-space limit and a timeout, and its peak comes from the kernel when it is
reaped (``wait4``'s ru_maxrss, the child's own peak, or that of its largest reaped child such
as a ``tesseract``), so a child killed or crashed still has a figure."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


def run_child(code: str) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]) / 1024, int(out[1]), int(out[2])


@dataclass
class ChildRun:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


def run_child_capped(code: str, *, address_space_bytes: int, timeout: float) -> ChildRun:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
        os.setsid()  # its own process group, so a timeout kills its tesseracts too

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdout=out, stderr=err, preexec_fn=limit
        )
        returncode: int | None = None
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - started > timeout:
                os.killpg(child.pid, signal.SIGKILL)
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        child.returncode = returncode if returncode is not None else -9  # reaped above
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode=returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            peak_rss_mb=usage.ru_maxrss / 1024,
        )
