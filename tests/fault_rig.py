"""A private set of real processes for the fault tests: a Redis server of its own (so it can
be emptied and restarted without touching anyone else's), a worker, beat, and the Gemini and
Pinecone doubles. Documents enter through the ``ingest`` command, as an operator would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from documents.models import Chunk, Document, Status
from tests.doubles.gemini import GeminiDouble
from tests.doubles.pinecone import PineconeDouble
from tests.workers import BeatProcess, WorkerProcess

ROOT = Path(__file__).resolve().parent.parent

# The schedules beat runs during a fault test: the same tasks as migration 0002, every 2 s.
_FAST_SCHEDULES = {
    "documents.requeue_stalled_documents": 2,
    "documents.retry_failed_documents": 2,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, folder: Path):
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.cli("ping") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True
        )
        return result.stdout.strip()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class FaultRig:
    def __init__(self, *, database_env: dict, folder: Path, concurrency: int = 4):
        self.folder = folder
        self.redis = RedisServer(folder)
        self.gemini = GeminiDouble()
        # Reads lag writes by 2-3 s (seeded), as the real service's do: every fault test runs
        # with the lag on.
        self.pinecone = PineconeDouble(dimension=768, lag_seconds=2.0, lag_jitter=1.0, seed=31)
        self.database_env = database_env
        self.concurrency = concurrency
        self.worker: WorkerProcess | None = None
        self.worker_restarts = 0
        self.beat: BeatProcess | None = None

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
        env.update(self.database_env)
        env.update(
            {
                "CELERY_BROKER_URL": self.redis.url,
                "CELERY_TASK_DEFAULT_QUEUE": "celery",
                "EMBEDDER": "gemini",
                "GEMINI_API_KEY": self.gemini.API_KEY,
                "GEMINI_BASE_URL": self.gemini.url,
                "VECTOR_STORE": "pinecone",
                "PINECONE_API_KEY": self.pinecone.API_KEY,
                "PINECONE_INDEX_HOST": self.pinecone.url,
                "PINECONE_TIMEOUT_SECONDS": "5",
                "GEMINI_TIMEOUT_SECONDS": "5",
                # Short clocks so a fault resolves in seconds, not minutes.
                "PIPELINE_RETRY_BASE_SECONDS": "0.2",
                "CLAIM_TIMEOUT_SECONDS": "8",
                "STALLED_QUEUED_SECONDS": "6",
                "RETRY_FAILED_BASE_SECONDS": "1",
                "RETRY_FAILED_MAX_ATTEMPTS": "20",
                # Kills here are the rig's, not the files': a document that happens to be in
                # the killed process three times must still complete, not fail as poison.
                "PIPELINE_MAX_WORKER_LOSSES": "20",
                "VAR_DIR": str(self.folder / "var"),
            }
        )
        return env

    def start(self) -> FaultRig:
        self.redis.start()
        self.gemini.start()
        self.pinecone.start()
        for task, seconds in _FAST_SCHEDULES.items():
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
            PeriodicTask.objects.update_or_create(
                name=f"fault test: {task}", defaults={"task": task, "interval": interval}
            )
        PeriodicTask.objects.exclude(task__in=_FAST_SCHEDULES).update(enabled=False)
        self.worker = WorkerProcess(
            env=self.env, name="faults", concurrency=self.concurrency, queue="celery"
        )
        self.worker.start()
        self.beat = BeatProcess(env=self.env, name="faults")
        self.beat.start()
        return self

    def stop(self) -> None:
        if self.beat:
            self.beat.stop()
        if self.worker:
            self.worker.stop()
        self.redis.stop()
        self.gemini.stop()
        self.pinecone.stop()

    def ingest(self, folder: Path, tenant_slug: str) -> None:
        result = subprocess.run(
            [sys.executable, "manage.py", "ingest", str(folder), "--tenant", tenant_slug],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    def shell(self, code: str) -> str:
        """Run ``code`` in ``manage.py shell`` with the rig's environment, so the services it
        calls queue their tasks on the rig's own Redis, as an operator's shell would."""
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def kill_a_worker_child(self) -> bool:
        children = self.worker.child_pids()
        if not children:
            return False
        # A child recycled by --max-tasks-per-child may be gone between listing and killing.
        try:
            os.kill(children[0], signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def restart_a_dead_worker(self) -> None:
        """What a process supervisor does (systemd's ``Restart=always``, a container's restart
        policy): start the worker again when it has exited. A Redis restart can end a Celery
        worker: kombu raises AttributeError while restoring unacknowledged messages on the lost
        connection, and Celery calls it unrecoverable (README, "Workers and a broker restart").
        Nothing may be lost either way: the documents wait until a worker takes them."""
        if self.worker.process.poll() is not None:
            self.worker_restarts += 1
            self.worker.stop()
            self.worker.start()

    def wait_until_settled(self, tenant, *, expected: int, timeout: float = 300) -> list[Document]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.restart_a_dead_worker()
            documents = list(Document.objects.filter(tenant=tenant))
            done = [d for d in documents if d.status == Status.COMPLETED]
            if len(documents) == expected and len(done) == expected:
                return documents
            time.sleep(0.5)
        states = sorted(
            (d.original_filename, d.status, d.stage, d.failure_message)
            for d in Document.objects.filter(tenant=tenant)
            if d.status != Status.COMPLETED
        )
        raise AssertionError(
            f"not settled after {timeout}s: {states[:10]}\n{self.worker.log()[-3000:]}"
        )

    def assert_nothing_lost(self, tenant, documents: list[Document]) -> None:
        assert all(d.status == Status.COMPLETED for d in documents)
        chunk_ids = sorted(
            Chunk.objects.filter(document__tenant=tenant).values_list("vector_id", flat=True)
        )
        assert chunk_ids, "no chunks were written"
        # exactly one vector per chunk: the same ids, no strays, no duplicates -- in what the
        # index converges to, and in what a listing shows once the lag has passed
        assert sorted(self.pinecone.ids(tenant.vector_namespace)) == chunk_ids
        deadline = time.monotonic() + 30
        while self.pinecone.visible_ids(tenant.vector_namespace, "list") != chunk_ids:
            assert time.monotonic() < deadline, "the listing never caught up"
            time.sleep(0.2)
        for document in documents:
            assert document.vector_count == document.chunk_count > 0
            # every claim that did not end in success left an entry in the attempt log
            assert document.attempts == len(document.attempt_log) + 1, (
                document.original_filename,
                document.attempts,
                document.attempt_log,
            )


def make_text_files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        sentences = " ".join(
            f"Document {n} sentence {i} tells of harbour {n * 7 + i} and its tides."
            for i in range(120)
        )
        (folder / f"note-{n:03d}.txt").write_text(sentences)
    return folder


def clean(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
