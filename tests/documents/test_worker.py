"""What a worker does around its tasks (documents/worker.py): the lost-worker path when
Celery gives up, and -- with real worker processes -- a document whose processing passes the
memory limit, killed each time until the lost-worker cap fails it for good."""

from __future__ import annotations

import contextlib
import time
import uuid

import psutil
import pytest
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import signals
from django.core.files.uploadedfile import SimpleUploadedFile

from documents import lifecycle, scratch, services
from documents.errors import FailureKind
from documents.models import Document, Status
from documents.tasks import process_document as process_task
from tests.factories import make_document
from tests.polling import wait_for_document
from tests.workers import WorkerProcess


def report_task_failure(document, exception: Exception) -> None:
    """What Celery's main process sends when the processing task of ``document`` (task id
    "t1") failed with ``exception``."""
    signals.task_failure.send(
        sender=process_task,
        task_id="t1",
        exception=exception,
        args=[str(document.pk)],
        kwargs={},
        traceback=None,
        einfo=None,
    )


@pytest.mark.django_db
def test_when_celery_stops_resending_after_a_lost_worker_the_document_fails(personas):
    document = make_document(personas.tenant_a, last_task_id="t1")
    lifecycle.claim(str(document.pk), task_id="t1", retries=3)
    # What Celery's main process sends once task_retry_on_worker_lost has run out of retries.
    report_task_failure(
        document, WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 3.")
    )
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert document.claimed_by == "" and document.finished_at is not None


@pytest.mark.django_db
def test_when_the_hard_time_limit_kills_the_task_the_document_fails_as_time_limit(
    personas, settings
):
    settings.PIPELINE_MAX_DOCUMENT_SECONDS = 30
    settings.PIPELINE_TIME_LIMIT_GRACE_SECONDS = 10
    document = make_document(personas.tenant_a, last_task_id="t1")
    lifecycle.claim(str(document.pk), task_id="t1", retries=0)
    # What Celery's main process sends after killing a pool process at the hard limit.
    report_task_failure(document, TimeLimitExceeded(40))
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.TIME_LIMIT)
    assert "longer than the limit of 30 seconds per document" in document.failure_message
    assert document.claimed_by == "" and document.worker_losses == 0
    assert [entry["kind"] for entry in document.attempt_log] == [FailureKind.TIME_LIMIT]


@pytest.mark.django_db
def test_other_task_failures_leave_the_document_to_the_runner(personas):
    document = make_document(personas.tenant_a, last_task_id="t1")
    lifecycle.claim(str(document.pk), task_id="t1", retries=0)
    report_task_failure(document, ValueError("raised inside the task"))
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.claimed_by.startswith("t1:")


# --- with real worker processes ---------------------------------------------------------------


@contextlib.contextmanager
def limited_worker(django_db_blocker, **settings):
    """A real worker (one pool process) on a queue of its own, with these settings."""
    from backoffice.celery import app
    from tests.conftest import _worker_env

    queue = f"limits-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        env = _worker_env({"CELERY_TASK_DEFAULT_QUEUE": queue, **settings})
    worker = WorkerProcess(env=env, name=f"limits-{queue}", concurrency=1, queue=queue)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker.start()
    try:
        yield worker
    finally:
        app.conf.task_default_queue = previous
        worker.stop()


def upload_text(tenant) -> Document:
    return services.document_create(
        tenant=tenant,
        uploaded_file=SimpleUploadedFile(
            "notes.txt", b"Tide tables list the times of high and low water. " * 200
        ),
    )


def leftover_folders() -> list[str]:
    root = scratch.root()
    entries = root.iterdir() if root.is_dir() else []
    return [e.name for e in entries if e.name.startswith("proc-") and not scratch.owner_alive(e)]


def wait_for_no_leftovers(timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := leftover_folders()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


# A pool process holds about 150 MB before its first task and about 0.7 GB once it has
# loaded the local model, which every task does after claiming its document: under this
# limit every attempt is killed mid-task, whatever the file and whatever the extraction
# budgets refuse (a DOCX bomb is refused before it inflates once they apply; the bench
# bench_docx_bomb.py shows the watchdog stopping one where they do not).
LIMIT = {"WORKER_MEMORY_LIMIT_MB": "400", "LOCAL_EMBEDDING_BACKEND": "torch"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_document_whose_processing_passes_the_memory_limit_fails_for_good_after_the_cap(
    personas, django_db_blocker
):
    with limited_worker(django_db_blocker, PIPELINE_MAX_WORKER_LOSSES="2", **LIMIT) as worker:
        main = psutil.Process(worker.process.pid)
        document = upload_text(personas.tenant_a)
        document = wait_for_document(document.pk, worker=worker, timeout=600)
        left = wait_for_no_leftovers()
        log = worker.log()
        assert main.is_running()  # the pool processes were killed, never the worker
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "repeatedly stopped the worker (3 times)" in document.failure_message
    assert document.worker_losses == 3
    assert [e["kind"] for e in document.attempt_log] == [FailureKind.WORKER_LOST] * 3
    assert log.count("and was killed") == 3, log[-3000:]
    # The killed processes' temporary folders went at the next process's start.
    assert left == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_when_celery_runs_out_of_retries_for_a_killed_worker_the_document_ends_failed(
    personas, django_db_blocker
):
    # One re-send allowed and a cap Celery reaches first: Celery gives up after the second
    # kill, and the document must not stay processing.
    with limited_worker(
        django_db_blocker, PIPELINE_MAX_RETRIES="1", PIPELINE_MAX_WORKER_LOSSES="5", **LIMIT
    ) as worker:
        document = upload_text(personas.tenant_a)
        document = wait_for_document(document.pk, worker=worker, timeout=600)
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "no retries were left" in document.failure_message
    assert document.worker_losses == 2 and document.claimed_by == ""
