"""Rows for tests that need documents in a given state without running the pipeline."""

from __future__ import annotations

import hashlib
import uuid

from documents.models import Document


def make_document(tenant, **fields) -> Document:
    content = fields.pop("content", b"hello")
    defaults = dict(
        title="Doc",
        original_filename="doc.txt",
        content_type="text/plain",
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        storage_key=f"tenants/{tenant.slug}/documents/{uuid.uuid4()}/doc.txt",
    )
    defaults.update(fields)
    return Document.objects.create(tenant=tenant, **defaults)
