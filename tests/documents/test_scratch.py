"""Per-process temporary folders, and what dead processes left in them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from documents import scratch


@pytest.fixture
def tmp_root(settings, tmp_path):
    settings.PIPELINE_TMP_DIR = tmp_path / "tmp"
    return settings.PIPELINE_TMP_DIR


# A process that makes its folder, starts a long-running child that works in it (a stand-in
# for Tesseract reading its page image), writes a file there, and dies without cleaning up.
_DIES_MIDWAY = """
import os, subprocess, sys
import django
django.setup()
from documents import scratch
folder = scratch.use_for_tempfile()
import tempfile
work = tempfile.mkdtemp(prefix="ocr-")
page = os.path.join(work, "page-1.txt")
open(page, "w").write("half read")
child = subprocess.Popen(
    ["tail", "-f", page], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
)
print(folder, child.pid, flush=True)
os._exit(0)
"""


def test_a_process_keeps_its_temporary_files_in_a_folder_named_after_it(tmp_root):
    folder = scratch.use_for_tempfile()
    try:
        assert folder.parent == tmp_root
        assert folder.name.startswith(f"proc-{os.getpid()}-")
        assert Path(tempfile.mkdtemp(prefix="ocr-")).parent == folder
        assert scratch.owner_alive(folder)
    finally:
        tempfile.tempdir = None


def test_the_folder_of_a_dead_process_is_removed_and_what_still_works_in_it_is_killed(
    tmp_root,
):
    env = {**os.environ, "PIPELINE_TMP_DIR": str(tmp_root)}
    result = subprocess.run(
        [sys.executable, "-c", _DIES_MIDWAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    folder, orphan_pid = result.stdout.split()
    folder, orphan = Path(folder), psutil.Process(int(orphan_pid))
    assert folder.is_dir() and orphan.is_running()
    mine = scratch.process_folder()  # a live process's folder stays

    found = scratch.remove_leftovers()

    assert (found.folders, found.processes) == (1, 1)
    assert not folder.exists() and mine.is_dir()
    orphan.wait(timeout=10)  # killed (we are not its parent; psutil waits by polling)
    assert not orphan.is_running()


def test_a_folder_whose_pid_was_reused_by_another_process_counts_as_dead(tmp_root):
    started = round(psutil.Process(os.getpid()).create_time() * 100)
    stale = tmp_root / f"proc-{os.getpid()}-{started - 500}"
    stale.mkdir(parents=True)
    (stale / "copy.pdf").write_bytes(b"%PDF-")
    assert not scratch.owner_alive(stale)
    assert scratch.remove_leftovers().folders == 1
    assert not stale.exists()


def test_other_files_in_the_temporary_folder_are_not_touched(tmp_root):
    tmp_root.mkdir(parents=True)
    (tmp_root / "someone-elses.txt").write_text("keep")
    (tmp_root / "not-a-process").mkdir()
    assert scratch.remove_leftovers().folders == 0
    assert (tmp_root / "someone-elses.txt").exists() and (tmp_root / "not-a-process").is_dir()
