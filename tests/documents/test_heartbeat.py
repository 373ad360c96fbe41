"""Worker heartbeat files: how /health/ knows a worker runs on the embedded defaults."""

from __future__ import annotations

import json
import os
import subprocess
import time

from documents import heartbeat


def test_a_worker_is_online_while_its_heartbeat_is_fresh_and_gone_once_stopped(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    heartbeat.beat("w1@host")
    assert heartbeat.online() == ["w1@host"]
    heartbeat.stop("w1@host")
    assert heartbeat.online() == []


def test_a_heartbeat_older_than_three_intervals_does_not_count(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.WORKER_HEARTBEAT_SECONDS = 5
    heartbeat.beat("w1@host")
    assert heartbeat.online(now=time.time() + 14) == ["w1@host"]
    assert heartbeat.online(now=time.time() + 16) == []


def test_the_heartbeat_of_a_process_that_died_without_stopping_does_not_count(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    gone = subprocess.Popen(["true"])
    gone.wait()
    heartbeat.beat("killed@host")
    path = next((tmp_path / "workers").glob("*.json"))
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pid": gone.pid}))
    assert record["pid"] == os.getpid()
    assert heartbeat.online() == []
