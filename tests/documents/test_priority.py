"""The worker's nice value reaches its session's autogroup, so it yields the CPU to the web
processes of other sessions, as the Procfile means it to."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from documents import priority
from tests.workers import WorkerProcess

HAS_AUTOGROUP = priority.AUTOGROUP.exists()


def autogroup(pid: int) -> str:
    return Path(f"/proc/{pid}/autogroup").read_text().strip()


@pytest.mark.skipif(not HAS_AUTOGROUP, reason="this kernel has no autogroup")
def test_a_worker_started_at_nice_10_in_a_session_of_its_own_puts_the_session_at_nice_10(
    tmp_path,
):
    ours = autogroup(os.getpid())
    env = {**os.environ, "VAR_DIR": str(tmp_path), "PIPELINE_TMP_DIR": str(tmp_path / "tmp")}
    worker = WorkerProcess(
        env=env, name="priority", queue=f"priority-{uuid.uuid4().hex}", nice=10, own_session=True
    )
    worker.start()
    try:
        # The worker's main process is nice's child: the pool's parent is the worker itself.
        main = worker.process.pid
        assert autogroup(main).endswith(" nice 10")
        children = worker.child_pids()
        assert children
        for pid in children:
            assert autogroup(pid) == autogroup(main)
            assert os.getpriority(os.PRIO_PROCESS, pid) == 10
        assert "autogroup is at nice 10" in worker.log()
    finally:
        worker.stop()
    # The test's own session is untouched.
    assert autogroup(os.getpid()) == ours


def test_without_autogroup_nothing_changes_and_nothing_fails(tmp_path):
    assert priority.session_like_process(tmp_path / "absent") is None
