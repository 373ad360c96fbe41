"""A DOCX bomb on the embedded defaults: how it ends, how long that takes, how much memory.

    .venv/bin/python bench/bench_docx_bomb.py [--inflated-mb 1100] [--limit-mb 2048]

The upload that started issue 10 was a 3.4 MB DOCX whose word/document.xml inflates to
1.1 GB; it took a worker past 10 GB and was re-queued forever. This bench writes such a file
(bench/bombs.py), sets up a fresh ``var/`` in a temporary folder the way ``make
run`` does (migrate, the demo fixture), starts the worker with the Procfile's own command
line (SQLite, the filesystem broker, four pool processes, the local model), ingests the file
with ``manage.py ingest`` and polls the database until the document leaves ``processing``.
Meanwhile it samples every 0.1 s the resident memory of each pool process with its children
(what the watchdog limits) and of the whole worker. Writes bench/results/docx_bomb.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from bombs import docx_bomb
from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict) -> None:
    subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True, text=True)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in family:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


def stop(worker: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group, as honcho does; SIGKILL if it has not gone
    after a minute (after asking Celery for its threads' stacks with SIGUSR1)."""
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print("the worker did not stop within 60 s of SIGTERM; its stacks are in its log")
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGUSR1)
        time.sleep(3)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def worker_line() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("no worker line in the Procfile")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inflated-mb", type=int, default=1100)
    parser.add_argument("--limit-mb", type=int, default=None, help="WORKER_MEMORY_LIMIT_MB")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-bomb-"))
    var = folder / "var"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "GEMINI_API_KEY", "PINECONE_INDEX_HOST")
    }
    env.update(
        {
            "VAR_DIR": str(var),
            "DJANGO_SETTINGS_MODULE": "backoffice.settings",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    if options.limit_mb is not None:
        env["WORKER_MEMORY_LIMIT_MB"] = str(options.limit_mb)
    bomb = docx_bomb(folder / "bomb.docx", inflated_bytes=options.inflated_mb * 2**20)
    print(f"bomb: {bomb.stat().st_size / 2**20:.1f} MB on disk, {options.inflated_mb} MB inflated")
    run([sys.executable, "manage.py", "migrate", "--noinput"], env)
    run([sys.executable, "manage.py", "loaddata", "fixtures/demo.json"], env)

    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(
        ["sh", "-c", f"exec {worker_line()}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while b"ready." not in (folder / "worker.log").read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {folder / 'worker.log'}")
            time.sleep(0.5)
        main_process = psutil.Process(worker.pid)
        run([sys.executable, "manage.py", "ingest", str(bomb), "--tenant", "demo"], env)
        started = time.monotonic()
        peak_child = peak_worker = 0
        database = sqlite3.connect(var / "db.sqlite3", timeout=30)
        row = None
        last_poll = 0.0
        while time.monotonic() - started < options.timeout:
            children = main_process.children()
            peak_child = max([peak_child, *(tree_rss(child) for child in children)])
            peak_worker = max(peak_worker, tree_rss(main_process))
            if time.monotonic() - last_poll > 1:
                last_poll = time.monotonic()
                row = database.execute(
                    "SELECT status, failure_kind, failure_message, worker_losses, attempt_log"
                    " FROM documents_document"
                ).fetchone()
                if row and row[0] != "processing":
                    break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        time.sleep(5)  # the process that replaced the last one killed removes its folder
        leftovers = [
            path.name
            for path in (var / "tmp").glob("proc-*")
            if not psutil.pid_exists(int(path.name.split("-")[1]))
        ]
    finally:
        stop(worker)
        log.close()
    worker_log = (folder / "worker.log").read_text(errors="replace")
    kills = worker_log.count("and was killed")
    # What the watchdog measured when it killed (its reading is the one that decides).
    at_kill = [
        int(mb) for mb in re.findall(r"used (\d+) MB \(limit \d+ MB\) and was killed", worker_log)
    ]
    result = {
        "inflated_mb": options.inflated_mb,
        "file_mb": round(bomb.stat().st_size / 2**20, 2),
        "limit_mb": options.limit_mb or 2048,
        "status": row[0] if row else None,
        "failure_kind": row[1] if row else None,
        "failure_message": row[2] if row else None,
        "worker_losses": row[3] if row else None,
        "attempts_logged": len(json.loads(row[4])) if row else None,
        "seconds_to_final_state": round(seconds, 1),
        "watchdog_kills": kills,
        "rss_at_kill_mb": at_kill,
        "peak_pool_process_mb": round(peak_child / 2**20),
        "peak_whole_worker_mb": round(peak_worker / 2**20),
        "temporary_folders_left": len(leftovers),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    write_result("docx_bomb", result)
    if "--keep" not in sys.argv:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"kept {folder}")


if __name__ == "__main__":
    main()
