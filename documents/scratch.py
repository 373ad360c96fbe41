"""Each process's own temporary folder under PIPELINE_TMP_DIR, and the removal of what dead
processes left there.

A worker child killed with SIGKILL (the memory watchdog, Celery's hard time limit, the kernel's
OOM killer) runs no ``finally``: its copy of the upload and its OCR page images stay on disk,
and a Tesseract it started keeps running as an orphan. So every process writes its temporary
files into a folder named after itself, ``proc-<pid>-<start time>`` (the start time tells a
reused pid from the original), and at the next worker start -- the main process and every new
child -- the folders whose owner is gone are removed, after the processes still working in
them (Tesseract, whose command line names its page image) are killed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings

logger = logging.getLogger(__name__)

_FOLDER = re.compile(r"^proc-(\d+)-(\d+)$")

# This process's folder name, by pid: a forked child has a pid of its own and a folder too.
_names: dict[int, str] = {}


def _started(pid: int) -> int:
    """The process's start time in hundredths of a second (psutil reads it from /proc)."""
    return round(psutil.Process(pid).create_time() * 100)


def root() -> Path:
    return Path(settings.PIPELINE_TMP_DIR)


def process_folder() -> Path:
    """This process's temporary folder, made on first use."""
    pid = os.getpid()
    if pid not in _names:
        _names[pid] = f"proc-{pid}-{_started(pid)}"
    folder = root() / _names[pid]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def use_for_tempfile() -> Path:
    """Point Python's ``tempfile`` at this process's folder, so every temporary file and
    folder made through it (the OCR page images) is found and removed if the process dies."""
    folder = process_folder()
    tempfile.tempdir = str(folder)
    return folder


def owner_alive(folder: Path) -> bool:
    match = _FOLDER.match(folder.name)
    if match is None:
        return True  # not ours to judge
    pid, started = int(match[1]), int(match[2])
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, not yet reaped by its parent
        # One hundredth of a second either way: the start time is rounded.
        return abs(round(process.create_time() * 100) - started) <= 1
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


@dataclass(frozen=True)
class Leftovers:
    folders: int = 0
    processes: int = 0


def _kill_working_in(folders: list[Path]) -> int:
    """Kill this user's processes whose command line names one of ``folders`` (a Tesseract
    orphaned by its killed parent is still reading its page image there)."""
    needles = [str(folder) + os.sep for folder in folders]
    me = os.getuid()
    killed = 0
    for process in psutil.process_iter(["cmdline", "uids"]):
        try:
            if process.info["uids"] is None or process.info["uids"].real != me:
                continue
            command = " ".join(process.info["cmdline"] or ())
            if any(needle in command for needle in needles):
                process.send_signal(signal.SIGKILL)
                killed += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return killed


def remove_leftovers() -> Leftovers:
    """Remove the temporary folders of processes that no longer run, after killing what still
    works in them. Safe to run from several processes at once."""
    folder = root()
    if not folder.is_dir():
        return Leftovers()
    dead = [
        entry
        for entry in folder.iterdir()
        if entry.is_dir() and _FOLDER.match(entry.name) and not owner_alive(entry)
    ]
    if not dead:
        return Leftovers()
    killed = _kill_working_in(dead)
    for entry in dead:
        shutil.rmtree(entry, ignore_errors=True)
    logger.info(
        "removed %d temporary folders of dead processes (%d leftover processes killed)",
        len(dead),
        killed,
    )
    return Leftovers(folders=len(dead), processes=killed)
