"""The worker's CPU priority against the web processes, where the kernel groups by session.

Linux with autogroup (``kernel.sched_autogroup_enabled = 1``, the default of the common
distribution kernels and of this machine) shares the CPU between sessions first and applies
nice values only between the processes of one session. honcho starts every Procfile line in a
session of its own, as a service manager does, so the worker's ``nice -n 10`` ranked its
processes against each other only, never against the web's: measured here, two busy
processes at nice 10 in one session and two at nice 0 in another each got half of the CPU;
with the first session's autogroup at nice 10 as well, the nice-0 pair got 91 %.

At start the worker gives its session's autogroup the nice value it was started with, so the
Procfile's one number means what it says on such kernels too. Only ever a lower priority
(a higher nice), which needs no privilege; without autogroup (no ``/proc/self/autogroup``, or
processes in a cgroup of their own, where the cgroup's weight rules instead) nothing changes.
The autogroup is the whole session's: a worker started by hand from a terminal with ``nice``
lowers that terminal's session with it. The decision: docs/decisions/0006.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")


def autogroup_nice(path: Path = AUTOGROUP) -> int | None:
    """The nice value of this process's autogroup ("/autogroup-98 nice 0"), or None."""
    try:
        return int(path.read_text().rsplit("nice", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def session_like_process(path: Path = AUTOGROUP) -> int | None:
    """Give this session's autogroup this process's nice value when it is higher than the
    autogroup's; returns the autogroup's nice value afterwards (None without autogroup)."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    current = autogroup_nice(path)
    if current is None or nice <= current:
        return current
    try:
        path.write_text(f"{nice}\n")
    except OSError as exc:
        logger.warning("could not set the session's autogroup to nice %s: %s", nice, exc)
        return current
    logger.info("the session's autogroup is at nice %s, as the worker", nice)
    return autogroup_nice(path)
