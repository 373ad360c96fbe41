"""Documents run through the real runner in the test process, for tests outside
test_processing.py that need completed documents with real chunks and vectors."""

from __future__ import annotations

import time

from django.core.files.uploadedfile import SimpleUploadedFile

from documents import processing, services
from documents.models import Document

STORY = (
    "The lighthouse keeper climbed the stairs every evening. He lit the lamp and watched "
    "the ships pass the rocks. In winter the storms were fierce and the sea was grey. "
) * 12


def upload(tenant, name: str, content: bytes) -> Document:
    return services.document_create(
        tenant=tenant, uploaded_file=SimpleUploadedFile(name, content), uploaded_by=None
    )


def attempt(document, *, task_id="t1", retries=0, max_retries=3) -> processing.Outcome:
    return processing.process_document(
        str(document.pk), task_id=task_id, retries=retries, max_retries=max_retries
    )


def processed(tenant, name: str, text: str) -> Document:
    """A document uploaded and run to completion; fails the test otherwise."""
    document = upload(tenant, name, text.encode())
    outcome = attempt(document)
    assert outcome.summary is not None, outcome
    document.refresh_from_db()
    return document


def long_story(n: int, paragraphs: int = 8) -> str:
    """A text of several Gemini chunks (1,024 tokens each by default)."""
    return " ".join(
        f"Paragraph {p} of story {n}: " + STORY.replace("keeper", f"keeper {n}-{p}")
        for p in range(paragraphs)
    )


def settle(pinecone, namespace, kind="query", timeout=10.0) -> list[str]:
    """What a read of ``kind`` on the Pinecone double shows once every write made so far is
    visible to it (waits for the double's lag)."""
    deadline = time.monotonic() + timeout
    target = pinecone.ids(namespace)
    while pinecone.visible_ids(namespace, kind) != target:
        assert time.monotonic() < deadline, f"{kind} reads never caught up"
        time.sleep(0.1)
    return target
