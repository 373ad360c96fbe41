"""The hostile corpus through a real worker: per file, how it ends, how long that takes, and the
worker's peak memory (not a test).

    .venv/bin/python bench/bench_hostile_worker.py [--corpus ../shared/corpus] [--concurrency 1]
        [--timeout 300] [--models var/models] [--keep]

The files and the worker's budgets are those of tests/documents/test_hostile_end_to_end.py
(tests/hostile/worker_cases.py: make_hostile.py's files, some budgets lowered with smaller
files to match). A fresh ``var/`` is set up in a temporary folder as ``make run`` does
(migrate, the demo fixture), and the worker is started with the Procfile's own command line on
the embedded defaults (SQLite, the filesystem broker, the local model), ``--concurrency`` pool
processes. A normal corpus file goes first, so the pool process has loaded the model before
the hostile files come; then each file is ingested with ``manage.py ingest``, one at a time,
and the database polled until it leaves ``processing``; a second normal file comes last. The
seconds are the document's own, queued to finished (database timestamps). Every 0.1 s the
resident memory of the worker's whole process tree (main process, pool processes, their
Tesseracts) is summed with psutil; the peak while each file was in the worker is reported,
with the peak of the busiest pool process and its children. Writes
bench/results/hostile_worker.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil
from bench_docx_bomb import stop, tree_rss, worker_line
from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile.worker_cases import CASES, WORKER_SETTINGS  # noqa: E402

WARM_UP = "minimal-document.pdf"
NORMAL = "pdflatex-4-pages.pdf"


def run(args: list[str], env: dict) -> None:
    subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True, text=True)


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


class Worker:
    def __init__(self, folder: Path, env: dict):
        self.folder = folder
        self.env = env
        self.log_path = folder / "worker.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["sh", "-c", f"exec {worker_line()}"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while b"ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {self.log_path}")
            time.sleep(0.5)
        self.main = psutil.Process(self.process.pid)
        # The Procfile line runs `nice ... celery`: exec'd, so the shell's pid is celery's.

    def pool(self) -> list[psutil.Process]:
        try:
            return self.main.children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


def ingest_and_wait(
    path: Path, *, env: dict, database: sqlite3.Connection, worker: Worker, timeout
):
    run([sys.executable, "manage.py", "ingest", str(path), "--tenant", "demo"], env)
    peak_worker = peak_pool = 0
    pools = {p.pid for p in worker.pool()}
    started = time.monotonic()
    last_poll = 0.0
    row = None
    while time.monotonic() - started < timeout:
        peak_worker = max(peak_worker, tree_rss(worker.main))
        children = worker.pool()
        pools |= {p.pid for p in children}
        peak_pool = max([peak_pool, *(tree_rss(child) for child in children)])
        if time.monotonic() - last_poll > 0.5:
            last_poll = time.monotonic()
            row = database.execute(
                "SELECT status, failure_kind, failure_message, queued_at, finished_at, attempts,"
                " worker_losses FROM documents_document WHERE original_filename = ?"
                " ORDER BY created_at DESC LIMIT 1",
                (path.name,),
            ).fetchone()
            if row and row[0] != "processing":
                break
        time.sleep(0.1)
    if not row or row[0] == "processing":
        return {"status": f"still processing after {timeout:.0f} s"}
    status, kind, message, queued_at, finished_at, attempts, losses = row
    return {
        "status": status,
        "failure_kind": kind,
        "message": message,
        "seconds": round(_seconds(queued_at, finished_at), 2),
        "attempts": attempts,
        "worker_losses": losses,
        "peak_worker_mb": round(peak_worker / 2**20),
        "peak_pool_process_mb": round(peak_pool / 2**20),
        "pool_processes_seen": len(pools),
        "file_bytes": path.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--models", type=Path, default=ROOT / "var" / "models")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-worker-"))
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
            "CELERY_WORKER_CONCURRENCY": str(options.concurrency),
            # The checkout's built model files (the ONNX export and its int8 form, made once
            # per machine): a fresh folder would time their build into the first document.
            "LOCAL_EMBEDDING_CACHE_DIR": str(options.models),
            **WORKER_SETTINGS,
        }
    )
    files = folder / "files"
    files.mkdir()
    paths = [(case.name, case.make(files)) for case in CASES]
    run([sys.executable, "manage.py", "migrate", "--noinput"], env)
    run([sys.executable, "manage.py", "loaddata", "fixtures/demo.json"], env)

    worker = Worker(folder, env)
    results: dict = {}
    try:
        idle = tree_rss(worker.main)
        database = sqlite3.connect(var / "db.sqlite3", timeout=30)
        order = [
            ("normal, first (loads the model)", options.corpus / WARM_UP),
            *paths,
            ("normal, last", options.corpus / NORMAL),
        ]
        for name, path in order:
            result = ingest_and_wait(
                path, env=env, database=database, worker=worker, timeout=options.timeout
            )
            results[name] = result
            print(
                f"{name:34} {result['status']:10} {result.get('failure_kind') or '':22} "
                f"{result.get('seconds', '-'):>7} s  worker {result.get('peak_worker_mb', '-'):>5}"
                f" MB  pool process {result.get('peak_pool_process_mb', '-'):>5} MB",
                flush=True,
            )
        alive = worker.process.poll() is None
    finally:
        worker.stop()
    write_result(
        "hostile_worker",
        {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "concurrency": options.concurrency,
            "worker_settings": WORKER_SETTINGS,
            "idle_worker_mb": round(idle / 2**20),
            "worker_alive_at_end": alive,
            "files": results,
        },
    )
    if options.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
