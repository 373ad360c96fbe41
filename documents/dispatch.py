"""Messages to the workers, sent by task name.

The services and the sweeps queue work without importing ``tasks.py`` (which imports them):
the names below are the tasks' explicit ``name=``, so a message and its task meet in the
broker, never in an import. Messages about rows written in a transaction go out after commit
(DESIGN invariant 2).
"""

from __future__ import annotations

import uuid

from django.db import transaction

from backoffice.celery import app
from documents import lifecycle

PROCESS_DOCUMENT = "documents.process_document"
PURGE_DOCUMENT_VECTORS = "documents.purge_document_vectors"
CLEANUP_DELETED_DOCUMENTS = "documents.cleanup_deleted_documents"
FAN_OUT = "documents.fan_out"

# A request publishes up to DIRECT_LIMIT messages itself; more leave as fan-out messages of
# FAN_OUT_BATCH each, published onwards by a worker.
DIRECT_LIMIT = 50
FAN_OUT_BATCH = 500
RECONCILE_TENANT = "documents.reconcile_tenant"


def new_task_id() -> str:
    return str(uuid.uuid4())


def send_process(
    document_id, *, task_id: str, countdown: float | None = None, retries: int = 0
) -> None:
    app.send_task(
        PROCESS_DOCUMENT,
        args=[str(document_id)],
        task_id=task_id,
        countdown=countdown,
        retries=retries,
    )


def requeue(document_id, *, countdown: float | None = None, retries: int = 0) -> str:
    """A new message for a document that is already ``processing`` (a parked document's
    resume, the stalled sweep's re-queue, the retry of a batch-mate); its task id is
    recorded first. Returns it. ``retries``: the in-task retries this document has already
    had, so its retry budget goes on from there."""
    task_id = new_task_id()
    lifecycle.assign_task(document_id, task_id)
    send_process(document_id, task_id=task_id, countdown=countdown, retries=retries)
    return task_id


def process_after_commit(pairs: list[tuple]) -> None:
    """One ``process_document`` message per (document id, task id), once committed."""
    _after_commit(PROCESS_DOCUMENT, [([str(pk)], task_id) for pk, task_id in pairs])


def purge_after_commit(document_ids) -> None:
    _after_commit(PURGE_DOCUMENT_VECTORS, [([str(pk)], None) for pk in document_ids])


def send_many(name: str, calls: list) -> None:
    """Send ``name`` once per (args, task id), through one producer connection."""
    with app.producer_or_acquire() as producer:
        for args, task_id in calls:
            app.send_task(name, args=args, task_id=task_id, producer=producer)


def _after_commit(name: str, calls: list) -> None:
    """Send the messages once committed. A bulk action on thousands of documents would spend
    seconds of the request publishing one message each; past DIRECT_LIMIT they leave as a few
    fan-out messages, and a worker publishes the per-document ones (if a fan-out message is
    lost, the stalled sweep re-queues its documents)."""
    if not calls:
        return

    def send():
        if len(calls) <= DIRECT_LIMIT:
            send_many(name, calls)
            return
        batches = [calls[i : i + FAN_OUT_BATCH] for i in range(0, len(calls), FAN_OUT_BATCH)]
        send_many(FAN_OUT, [([name, batch], None) for batch in batches])

    transaction.on_commit(send, robust=True)


def cleanup_deleted_after_commit(document_ids) -> None:
    ids = [str(pk) for pk in document_ids]
    if ids:
        transaction.on_commit(
            lambda: app.send_task(CLEANUP_DELETED_DOCUMENTS, args=[ids]), robust=True
        )


def reconcile_after_commit(tenant_ids, *, repair: bool) -> None:
    """One reconciliation task per tenant, once committed."""
    ids = [int(pk) for pk in tenant_ids]

    def send():
        for pk in ids:
            app.send_task(RECONCILE_TENANT, args=[pk], kwargs={"repair": repair})

    if ids:
        transaction.on_commit(send, robust=True)
