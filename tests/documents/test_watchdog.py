"""The hard memory limit: the watchdog kills a pool process whose memory passes it."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from documents.watchdog import MemoryWatchdog

# A parent (standing in for the worker's main process) with two children: one holds 300 MB,
# the other almost nothing and has a child of its own. The parent prints their pids.
_FAMILY = """
import subprocess, sys, time
hog = subprocess.Popen([sys.executable, "-c",
    "import time; block = bytearray(300 * 2**20); print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True)
hog.stdout.readline()
small = subprocess.Popen(["sh", "-c", "sleep 600 & wait"])
print(hog.pid, small.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def family():
    parent = subprocess.Popen([sys.executable, "-c", _FAMILY], stdout=subprocess.PIPE, text=True)
    hog, small = (int(pid) for pid in parent.stdout.readline().split())
    yield parent, psutil.Process(hog), psutil.Process(small)
    for process in psutil.Process(parent.pid).children(recursive=True):
        process.kill()
    parent.kill()
    parent.wait()


def test_a_child_over_the_limit_is_killed_and_the_others_are_left_alone(family):
    parent, hog, small = family
    watchdog = MemoryWatchdog(limit_bytes=200 * 2**20, parent_pid=parent.pid)
    kills = watchdog.check()
    assert [kill.pid for kill in kills] == [hog.pid]
    assert kills[0].rss_bytes > 300 * 2**20
    deadline = time.monotonic() + 10
    while hog.is_running() and hog.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert small.is_running() and small.status() != psutil.STATUS_ZOMBIE
    assert parent.poll() is None


def test_the_memory_of_a_childs_own_children_counts_and_they_are_killed_with_it(family):
    parent, hog, small = family
    deadline = time.monotonic() + 10
    while not small.children():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = small.children()[0]
    tree = small.memory_info().rss + grandchild.memory_info().rss
    watchdog = MemoryWatchdog(limit_bytes=tree - 1, parent_pid=parent.pid)
    killed = {kill.pid: kill for kill in watchdog.check()}
    assert small.pid in killed and killed[small.pid].descendants == 1
    grandchild.wait(timeout=10)


def test_the_watchdog_thread_checks_on_its_own_until_stopped(family):
    parent, hog, _ = family
    seen = []
    watchdog = MemoryWatchdog(
        limit_bytes=200 * 2**20, parent_pid=parent.pid, interval=0.05, on_kill=seen.append
    ).start()
    try:
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline, "the watchdog never killed the hog"
            time.sleep(0.05)
    finally:
        watchdog.stop()
    assert [kill.pid for kill in seen] == [hog.pid]
