"""Bulk admin actions on 10,000 documents: reprocess, purge vectors, retry failed.

    .venv/bin/python bench/bench_bulk_actions.py [--documents 10000] [--runs 2]
        [--database-url postgres://…] [--broker-url redis://…]

On PostgreSQL and Redis (defaults in bench/services_env.py; the database is created if
missing): creates a tenant with ``--documents`` documents and a staff member
of it, then calls ``documents_retry_failed``, ``documents_reprocess`` and
``documents_purge_vectors`` from ``documents.services`` as the admin's "select all" does: on the
staff member's changelist queryset (``documents_for_user``). Before each call every document
is put in a state the action accepts (failed for a retry, completed for the others), so each
call acts on all of them. Each time is the whole call, the queue's messages included (they are
sent when the transaction commits, inside the call). The messages go to a queue of this run's
own that no worker reads; it is purged afterwards, and the documents are deleted.

Where the time goes is reported too: the same call once more with the broker's publishing
timed apart (``Celery.send_task``, counted by wrapping the app's method for the run),
so a slow call says whether the database or the messages are to blame. The target is under
5 s per action (issue 14). Writes bench/results/bulk_actions.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_file import write_result  # noqa: E402
from services_env import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, drop_queue, ensure_database  # noqa: E402

TARGET_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    args = parser.parse_args()

    queue = f"bench-bulk-{os.getpid()}"
    env = {
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
    }
    os.environ.update(env)
    ensure_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from documents import services
    from documents.models import Document, Membership, Status, Tenant
    from documents.selectors import documents_for_user

    tenant = Tenant.objects.create(name=f"bench bulk {uuid.uuid4().hex[:8]}")
    user = get_user_model().objects.create_user(
        username=f"bench-bulk-{uuid.uuid4().hex[:8]}", is_staff=True
    )
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.STAFF)
    start = time.perf_counter()
    Document.objects.bulk_create(
        [
            Document(
                tenant=tenant,
                title=f"document {i}",
                original_filename=f"document-{i}.pdf",
                content_type="application/pdf",
                size_bytes=1000 + i,
                sha256=f"{i:064x}",
                storage_key=f"tenants/{tenant.slug}/documents/{i}/document-{i}.pdf",
                status=Status.FAILED,
                failure_kind="unavailable",
                failure_message="The service was unavailable.",
                vector_count=12,
            )
            for i in range(args.documents)
        ],
        batch_size=2000,
    )
    created_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_document")
    print(f"created {args.documents} documents in {created_s:.1f} s", flush=True)

    def selected():
        # what the admin passes an action after "select all N documents"
        return documents_for_user(user)

    def prepare(status: str) -> None:
        Document.objects.filter(tenant=tenant).update(
            status=status, failure_kind="unavailable" if status == Status.FAILED else ""
        )

    actions = {
        "retry_failed": (services.documents_retry_failed, Status.FAILED),
        "reprocess": (services.documents_reprocess, Status.COMPLETED),
        "purge_vectors": (services.documents_purge_vectors, Status.COMPLETED),
    }
    results: dict[str, dict] = {}
    try:
        for name, (action, status) in actions.items():
            seconds = []
            for _ in range(args.runs):
                prepare(status)
                start = time.perf_counter()
                result = action(queryset=selected())
                seconds.append(time.perf_counter() - start)
                if result.done != args.documents:
                    raise SystemExit(f"{name} acted on {result.done} of {args.documents}")
            prepare(status)
            with PublishTimer() as publishing:
                start = time.perf_counter()
                action(queryset=selected())
                whole = time.perf_counter() - start
            results[name] = {
                "seconds_median": round(statistics.median(seconds), 2),
                "seconds_runs": [round(s, 2) for s in seconds],
                "under_target": statistics.median(seconds) < TARGET_SECONDS,
                "profiled_seconds": round(whole, 2),
                "of_which_publishing_seconds": round(publishing.seconds, 2),
                "messages": publishing.count,
            }
            r = results[name]
            print(
                f"{name}: {r['seconds_median']} s (runs {r['seconds_runs']}); "
                f"of {r['profiled_seconds']} s, {r['of_which_publishing_seconds']} s publishing "
                f"{r['messages']} messages",
                flush=True,
            )
        results["publishing_alone"] = publishing_alone(args.documents)
        print("publishing alone:", results["publishing_alone"], flush=True)
    finally:
        drop_queue(args.broker_url, queue, {**os.environ, **env})
        Document.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(tenant=tenant).delete()
        tenant.delete()
        user.delete()

    write_result(
        "bulk_actions",
        {
            "database": "PostgreSQL",
            "broker": "Redis",
            "documents": args.documents,
            "runs": args.runs,
            "target_seconds": TARGET_SECONDS,
            "actions": results,
        },
    )


def publishing_alone(count: int, batch: int = 500) -> dict:
    """The broker's share measured apart: ``count`` process_document messages published one
    call each (what the services do), then through one shared producer, then as
    ``count / batch`` messages of ``batch`` ids each (the shape a fan-out task would take)."""
    from backoffice.celery import app
    from documents.tasks import process_document

    ids = [str(uuid.uuid4()) for _ in range(count)]
    start = time.perf_counter()
    for pk in ids:
        process_document.apply_async(args=[pk], task_id=str(uuid.uuid4()))
    one_call_each = time.perf_counter() - start
    start = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for pk in ids:
            process_document.apply_async(args=[pk], task_id=str(uuid.uuid4()), producer=producer)
    shared_producer = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, count, batch):
        # a task name no worker knows, on the same unread queue: only the publish is timed
        app.send_task("bench.queue_documents", args=[ids[i : i + batch]])
    batched = time.perf_counter() - start
    return {
        "messages": count,
        "one_call_each_seconds": round(one_call_each, 2),
        "shared_producer_seconds": round(shared_producer, 2),
        f"batches_of_{batch}_seconds": round(batched, 3),
    }


class PublishTimer:
    """Adds up the time spent in the app's ``send_task`` (every broker publish: one per
    document, or one per fan-out batch of them)."""

    def __enter__(self):
        from backoffice.celery import app

        self.seconds, self.count = 0.0, 0
        self._original = app.send_task
        timer = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return timer._original(*args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - start
                timer.count += 1

        app.send_task = timed
        return self

    def __exit__(self, *exc):
        from backoffice.celery import app

        app.send_task = self._original


if __name__ == "__main__":
    main()
