"""The whole path on the embedded defaults: SQLite, kombu's filesystem broker, local files,
the local model and LanceDB -- what `make run` uses on a fresh machine with no services.

Run by `make test-embedded` (``-m embedded`` with DATABASE_URL and CELERY_BROKER_URL unset)."""

from __future__ import annotations

import io

import pytest
from django.conf import settings

from documents.models import Chunk, Status
from tests.polling import wait_for_document

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
