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
RECONCILE_TENANT = "documents.reconcile_tenant"


def new_task_id() -> str:
    return str(uuid.uuid4())


def send_process(document_id, *, task_id: str, countdown: float | None = None) -> None:
    app.send_task(PROCESS_DOCUMENT, args=[str(document_id)], task_id=task_id, countdown=countdown)


def requeue(document_id, *, countdown: float | None = None) -> str:
    """A new message for a document that is already ``processing`` (a parked document's
    resume, the stalled sweep's re-queue); its task id is recorded first. Returns it."""
    task_id = new_task_id()
    lifecycle.assign_task(document_id, task_id)
    send_process(document_id, task_id=task_id, countdown=countdown)
    return task_id


def process_after_commit(pairs: list[tuple]) -> None:
    """One ``process_document`` message per (document id, task id), once committed."""

    def send():
        for document_id, task_id in pairs:
            send_process(document_id, task_id=task_id)

    if pairs:
        transaction.on_commit(send, robust=True)


def purge_after_commit(document_ids) -> None:
    ids = [str(pk) for pk in document_ids]

    def send():
        for pk in ids:
            app.send_task(PURGE_DOCUMENT_VECTORS, args=[pk])

    if ids:
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
