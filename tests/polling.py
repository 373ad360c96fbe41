"""Wait for a document to leave ``processing`` (the worker is another process)."""

from __future__ import annotations

import time

from documents.models import Document, Status


def wait_for_documents(ids, *, timeout: float = 180.0, worker=None) -> list[Document]:
    deadline = time.monotonic() + timeout
    ids = [str(i) for i in ids]
    while True:
        documents = list(Document.objects.filter(pk__in=ids))
        if len(documents) == len(ids) and all(d.status != Status.PROCESSING for d in documents):
            return sorted(documents, key=lambda d: ids.index(str(d.pk)))
        if time.monotonic() > deadline:
            states = {str(d.pk): (d.status, d.stage, d.failure_message) for d in documents}
            hint = f"\nworker log:\n{worker.log()[-4000:]}" if worker else ""
            raise AssertionError(f"documents still processing after {timeout}s: {states}{hint}")
        time.sleep(0.25)


def wait_for_document(document_id, **kwargs) -> Document:
    return wait_for_documents([document_id], **kwargs)[0]
