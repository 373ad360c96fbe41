"""Uploads: a file becomes a document -- or is answered by the tenant's existing copy of the
same bytes, or refused or held because its estimate is over one of the tenant's limits.

Every upload is inspected before it is stored (``documents/pipeline/preflight.py``, through
``estimates``): its structure only, a millisecond, so uploads stay fast; every page when the
tenant has a cost limit, which needs the pages to OCR and the tokens to judge. The estimate
is stored on the document and returned to the uploader. ``services`` re-exports these
functions: callers use them from there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction

from documents import audit, dispatch, estimates, lifecycle, storage
from documents.errors import ApplicationError, OverLimit
from documents.models import Document, Tenant
from documents.pipeline.preflight import FULL, STRUCTURE
from documents.uploads import digest_of, validate_upload


def document_create(
    *, tenant: Tenant, uploaded_file, uploaded_by=None, title: str = "", source=None
) -> Document:
    """Store the file, create the document and queue its processing after commit (or hold
    it, when its estimate is over one of the tenant's limits and the tenant holds such
    documents). Always a new document, whatever the tenant already has: ``document_upload``
    is the upload that answers a duplicate with the existing document."""
    checked = _checked_upload(uploaded_file)
    return _create(
        tenant=tenant,
        checked=checked,
        uploaded_by=uploaded_by,
        title=title,
        on_created=lambda document: _record_uploads(
            tenant, [document], by=uploaded_by, source=source
        ),
    )


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the document it became or already was, or why it was refused."""

    name: str
    document: Document | None = None
    # The same bytes were already in the tenant: ``document`` is that existing document and
    # nothing was stored or queued.
    duplicate: bool = False
    error: ApplicationError | None = None

    @property
    def held(self) -> bool:
        return self.document is not None and not self.duplicate and bool(self.document.held_reason)


def document_upload(
    *,
    tenant: Tenant,
    uploaded_file,
    uploaded_by=None,
    title: str = "",
    keep_duplicate: bool = False,
    source=None,
) -> Upload:
    """An upload from the API: a file whose bytes (SHA-256) the tenant already has answers
    with the existing document instead of processing the same file twice, unless
    ``keep_duplicate``. Only the tenant's own documents are compared. Raises the
    ApplicationError of a refused file."""
    recorded = []

    def record(document):
        # In the transaction that creates the document: one commit for both rows.
        _record_uploads(tenant, [document], by=uploaded_by, source=source)
        recorded.append(document)

    upload = _upload_one(
        tenant,
        uploaded_file,
        title=title,
        uploaded_by=uploaded_by,
        keep_duplicate=keep_duplicate,
        on_created=record,
    )
    if not recorded:
        _record_uploads(tenant, [], by=uploaded_by, source=source, results=[upload])
    if upload.error is not None:
        raise upload.error
    return upload


def documents_upload(
    *, tenant: Tenant, files, uploaded_by=None, keep_duplicate: bool = False, source=None
) -> list[Upload]:
    """Upload several files (``(file, title)`` pairs, read one after the other) to one
    tenant: each becomes a document, is answered by the tenant's existing document with the
    same bytes, or is refused with its reason; one audit entry records them all."""
    results = [
        _upload_one(
            tenant,
            uploaded_file,
            title=title,
            uploaded_by=uploaded_by,
            keep_duplicate=keep_duplicate,
        )
        for uploaded_file, title in files
    ]
    created = [r.document for r in results if r.document is not None and not r.duplicate]
    _record_uploads(tenant, created, by=uploaded_by, source=source, results=results)
    return results


def _upload_one(
    tenant, uploaded_file, *, title, uploaded_by, keep_duplicate, on_created=None
) -> Upload:
    name = _name_of(uploaded_file)
    try:
        checked = _checked_upload(uploaded_file)
        existing = None if keep_duplicate else _existing_copy(tenant, checked.sha256)
        if existing is not None:
            return Upload(name=name, document=existing, duplicate=True)
        document = _create(
            tenant=tenant,
            checked=checked,
            uploaded_by=uploaded_by,
            title=title,
            on_created=on_created,
        )
    except ApplicationError as exc:
        return Upload(name=name, error=exc)
    return Upload(name=name, document=document)


def _existing_copy(tenant: Tenant, sha256: str) -> Document | None:
    # Scoped to the tenant by construction: another tenant's copy is never looked at, so an
    # upload tells nobody what another tenant holds.
    # Only the id first: the common answer is "none", and reading a whole row costs more.
    pk = (
        Document.objects.filter(tenant=tenant, sha256=sha256)
        .order_by("created_at")
        .values_list("pk", flat=True)
        .first()
    )
    return None if pk is None else Document.objects.select_related("tenant").get(pk=pk)


@dataclass(frozen=True)
class _Checked:
    file: object
    content_type: str
    sha256: str
    name: str


def _name_of(uploaded_file) -> str:
    return (getattr(uploaded_file, "name", None) or "upload").rsplit("/", 1)[-1][:255]


def _checked_upload(uploaded_file) -> _Checked:
    content_type = validate_upload(uploaded_file)
    return _Checked(
        file=uploaded_file,
        content_type=content_type,
        sha256=digest_of(uploaded_file),
        name=_name_of(uploaded_file),
    )


def _preflight(tenant: Tenant, checked: _Checked) -> dict:
    """The preflight record of an upload. Only the structure is read in the request (a few
    milliseconds; it estimates everything, from which pages have a text layer and the size
    of a Word file's text), unless the tenant has a cost limit and the embedder has a price:
    then every page's text layer is looked at, since the limit is judged on the tokens."""
    priced = estimates.token_rates().price_per_million is not None
    depth = FULL if tenant.max_cost_per_document is not None and priced else STRUCTURE
    uploaded = checked.file
    path = getattr(uploaded, "temporary_file_path", None)
    facts = estimates.inspect(
        path() if path else uploaded,
        content_type=checked.content_type,
        size_bytes=uploaded.size,
        depth=depth,
    )
    return estimates.preflight_record(facts)


def _create(
    *, tenant: Tenant, checked: _Checked, uploaded_by, title: str, on_created=None
) -> Document:
    """``on_created(document)`` runs in the transaction that creates the row (the audit
    entry of a single upload: one commit for both)."""
    uploaded_file = checked.file
    preflight = _preflight(tenant, checked)
    over = tenant.limit_exceeded(preflight["estimate"])
    if over and tenant.over_limit_action == Tenant.OverLimitAction.REFUSE:
        raise OverLimit(f"{checked.name!r} was refused. {over}")
    if over:
        preflight["held"] = over
    document_id = uuid.uuid4()
    # The file goes to storage before the row exists and outside any transaction: a network
    # call must never hold a transaction open. If the row cannot be written, the file is removed.
    key = storage.store_file(
        storage.document_key(
            tenant_slug=tenant.slug, document_id=document_id, filename=checked.name
        ),
        uploaded_file,
    )
    try:
        with transaction.atomic():
            document = lifecycle.create(
                held=bool(over),
                id=document_id,
                tenant=tenant,
                uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
                title=(title or checked.name)[:300],
                original_filename=checked.name,
                content_type=checked.content_type,
                size_bytes=uploaded_file.size,
                sha256=checked.sha256,
                storage_key=key,
                preflight=preflight,
            )
            if not over:
                dispatch.process_after_commit([(document.pk, document.last_task_id)])
            if on_created is not None:
                on_created(document)
    except Exception:
        storage.delete_file(key)
        raise
    return document


def _record_uploads(tenant, created, *, by, source, results=()) -> None:
    duplicates = [r for r in results if r.duplicate]
    refused = [r for r in results if r.error is not None]
    if not (created or duplicates or refused):
        return
    details = {}
    held = [str(d.pk) for d in created if d.held_reason]
    if held:
        details["held"] = held
    if duplicates:
        details["already_there"] = [
            {"file": u.name, "document": str(u.document.pk)} for u in duplicates
        ]
    if refused:
        details["refused"] = [{"file": u.name, "reason": u.error.message} for u in refused]
    audit.record(
        action=audit.UPLOAD,
        source=source,
        by=by,
        tenant=tenant,
        object_ids=[d.pk for d in created],
        details=details,
    )
