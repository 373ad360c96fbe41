"""Run a snippet in a fresh interpreter and read the peak resident memory it reports.

The child prints its VmHWM (KiB, from /proc: ru_maxrss would carry over the parent's size)
followed by two integers of its own (pages read, characters)."""

from __future__ import annotations

import subprocess
import sys


def run_child(code: str) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]) / 1024, int(out[1]), int(out[2])
