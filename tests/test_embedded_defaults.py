"""The whole path on the embedded defaults: SQLite, kombu's filesystem broker, local files,
the local model and LanceDB -- what `make run` uses on a fresh machine with no services.

Run by `make test-embedded` (``-m embedded`` with DATABASE_URL and CELERY_BROKER_URL unset)."""

from __future__ import annotations

import io
import threading
import time
import uuid

import pytest
from django.conf import settings

from documents.models import Chunk, Status
from tests.polling import wait_for_document, wait_for_documents

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

TEXT = (
    "Tide tables list the times of high and low water. Sailors read them before leaving "
    "harbour. Spring tides follow the new and the full moon. "
) * 20


def test_the_settings_really_are_the_embedded_defaults():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.CELERY_BROKER_URL == "filesystem://"
    assert settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage")
    assert settings.EMBEDDER == "local" and settings.VECTOR_STORE == "lancedb"
    assert settings.LOCAL_EMBEDDING_BACKEND == "onnx-int8"


def test_sqlite_runs_in_wal_mode_and_takes_the_write_lock_when_a_transaction_begins():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.transaction_mode == "IMMEDIATE"


def test_an_upload_is_processed_by_a_worker_on_the_embedded_defaults(
    personas, api_for, celery_worker
):
    handle = io.BytesIO(TEXT.encode())
    handle.name = "tides.txt"
    response = api_for(personas.staff_a).post("/api/ingest/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.content
    document = wait_for_document(response.json()["document_id"], worker=celery_worker)
    assert document.status == Status.COMPLETED, document.failure_message
    assert Chunk.objects.filter(document=document).count() == document.chunk_count > 0
    # the default backend ran: ONNX Runtime on int8 weights, not torch after a warning
    assert "embedding backend is not available" not in celery_worker.log()


def test_a_bad_upload_fails_with_a_reason_on_the_embedded_defaults(
    personas, api_for, celery_worker
):
    handle = io.BytesIO(b"%PDF-1.7\n" + b"\x00garbage" * 100)
    handle.name = "broken.pdf"
    response = api_for(personas.staff_a).post("/api/ingest/", {"file": handle}, format="multipart")
    assert response.status_code == 202
    document = wait_for_document(response.json()["document_id"], worker=celery_worker)
    assert document.status == Status.FAILED
    assert document.failure_kind == "corrupt"


def test_health_reports_the_running_worker_on_the_embedded_defaults(
    client, personas, celery_worker
):
    # The details are for staff only; the heartbeat is written once the pool runs, so give a
    # busy machine a moment.
    client.force_login(personas.staff_a)
    deadline = time.monotonic() + 30
    while True:
        body = client.get("/health/").json()
        if body["workers"]["ok"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert body["status"] == "ok", body
    assert body["workers"] == {"ok": True, "detail": "1 online"}


# --- concurrency on SQLite ------------------------------------------------------------------


@pytest.fixture
def four_workers_and_beat(django_db_blocker, settings, tmp_path):
    """The embedded defaults under load: a worker with four processes and beat, on a queue of
    their own, with the sweeps every second so beat and the sweeps write too."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from backoffice.celery import app
    from tests.conftest import _worker_env
    from tests.workers import BeatProcess, WorkerProcess

    queue = f"embedded-four-{uuid.uuid4().hex[:8]}"
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    for task in ("documents.requeue_stalled_documents", "documents.retry_failed_documents"):
        PeriodicTask.objects.update_or_create(
            name=f"every second: {task}", defaults={"task": task, "interval": every_second}
        )
    with django_db_blocker.unblock():
        env = _worker_env({"CELERY_TASK_DEFAULT_QUEUE": queue})
    worker = WorkerProcess(env=env, name="four", concurrency=4, queue=queue)
    beat = BeatProcess(env=env, name="four")
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker.start()
    beat.start()
    yield worker, beat
    app.conf.task_default_queue = previous
    beat.stop()
    worker.stop()


class SlowWebWrites:
    """The web server's side: write transactions that hold SQLite's write lock for a moment,
    over and over, as a bulk admin action on many rows does. Counts the errors it meets."""

    def __init__(self, tenant):
        self.tenant_id = tenant.pk
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self.writes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from django.db import connection, transaction

        from documents.models import Tenant

        try:
            while not self.stopped.is_set():
                try:
                    with transaction.atomic():
                        Tenant.objects.filter(pk=self.tenant_id).update(name=f"Acme {self.writes}")
                        time.sleep(0.2)
                    self.writes += 1
                except Exception as exc:  # noqa: BLE001 - counted; the test asserts none
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.3)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join(timeout=30)


def test_four_worker_processes_beat_and_the_web_server_share_sqlite_without_a_lock_error(
    personas, api_for, four_workers_and_beat
):
    worker, beat = four_workers_and_beat
    api = api_for(personas.staff_a)
    ids = []
    with SlowWebWrites(personas.tenant_b) as web:
        # The uploads are the web server's writes too; they land while the workers process.
        for n in range(16):
            handle = io.BytesIO((f"Report {n}. " + TEXT * 3).encode())
            handle.name = f"report-{n}.txt"
            response = api.post("/api/ingest/", {"file": handle}, format="multipart")
            assert response.status_code == 202, response.content
            ids.append(response.json()["document_id"])
        documents = wait_for_documents(ids, worker=worker, timeout=480)
    logs = worker.log() + beat.log()
    problems = [
        (d.status, d.stage, d.failure_message, [e["message"] for e in d.attempt_log])
        for d in documents
        if d.status != Status.COMPLETED or d.attempt_log
    ]
    # Every document completed at its first try: no attempt failed on the way.
    assert problems == []
    assert web.errors == [] and web.writes > 0
    assert "database is locked" not in logs


def test_search_finds_a_processed_upload_and_follows_its_reprocess_and_delete(
    personas, api_for, celery_worker
):
    from documents import services
    from documents.models import Document

    api = api_for(personas.staff_a)
    handle = io.BytesIO(TEXT.encode())
    handle.name = "tides.txt"
    response = api.post("/api/ingest/", {"file": handle}, format="multipart")
    document = wait_for_document(response.json()["document_id"], worker=celery_worker)
    assert document.status == Status.COMPLETED, document.failure_message

    def results(query):
        answer = api.get("/api/search/", {"q": query, "k": 50})
        assert answer.status_code == 200, answer.content
        return answer.json()["results"]

    found = results("spring tides full moon")
    assert found and found[0]["document_id"] == str(document.pk)
    assert found[0]["found_by"] in ("lexical", "both")
    before = {r["chunk_id"] for r in found}

    services.documents_reprocess(queryset=Document.objects.filter(pk=document.pk))
    document = wait_for_document(str(document.pk), worker=celery_worker)
    assert document.status == Status.COMPLETED, document.failure_message
    # the same chunks again, each once: the reprocess replaced the index's rows
    assert {r["chunk_id"] for r in results("spring tides full moon")} == before

    services.documents_delete(queryset=Document.objects.filter(pk=document.pk))
    assert results("spring tides full moon") == []
