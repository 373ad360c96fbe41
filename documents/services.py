"""Every change of state that an upload, a person or a schedule asks for.

The API, the admin, the management commands and beat all call these functions, which queue
the one ``process_document`` task after commit (DESIGN invariants 2 and 9). Status changes
made while a document is being processed are written by ``pipeline/run.py`` alone.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from documents import storage
from documents.models import Document, Membership, Status, Tenant
from documents.pipeline.errors import (
    InvalidUpload,
    NotAMember,
    UnsupportedUpload,
    UploadTooLarge,
)
from documents.pipeline.sniff import sniff_content_type
from documents.selectors import tenants_for_user

logger = logging.getLogger(__name__)

_HASH_BLOCK = 1024 * 1024


def tenant_for_upload(*, user, tenant_slug: str | None) -> Tenant:
    """The tenant an upload goes to: the user's only tenant, or the one named, if a member."""
    tenants = tenants_for_user(user)
    if tenant_slug:
        tenant = tenants.filter(slug=tenant_slug).first()
        if tenant is None:
            raise NotAMember(f"You are not a member of a tenant called {tenant_slug!r}.")
        return tenant
    mine = list(tenants[:2]) if not user.is_superuser else list(
        Tenant.objects.filter(memberships__user=user)[:2]
    )
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise NotAMember("You are not a member of any tenant, so you cannot upload documents.")
    raise InvalidUpload("You belong to several tenants: say which one with the 'tenant' field.")


def _sha256(fileobj) -> str:
    digest = hashlib.sha256()
    fileobj.seek(0)
    for block in iter(lambda: fileobj.read(_HASH_BLOCK), b""):
        digest.update(block)
    fileobj.seek(0)
    return digest.hexdigest()


def validate_upload(uploaded_file) -> str:
    """Refuse an upload that cannot become a document; returns the sniffed content type."""
    if uploaded_file is None:
        raise InvalidUpload("No file was sent: attach one in the 'file' field.")
    if not uploaded_file.size:
        raise InvalidUpload(f"The file {uploaded_file.name!r} is empty.")
    limit = settings.DOCUMENT_MAX_UPLOAD_BYTES
    if uploaded_file.size > limit:
        raise UploadTooLarge(
            f"The file {uploaded_file.name!r} is {filesizeformat(uploaded_file.size)}; "
            f"the limit is {filesizeformat(limit)}."
        )
    content_type = sniff_content_type(uploaded_file, uploaded_file.name or "")
    if content_type is None:
        raise UnsupportedUpload(
            f"The file {uploaded_file.name!r} is not a PDF, Word (DOCX), text, Markdown, PNG, "
            "JPEG or TIFF file (judged from its content, not its name)."
        )
    return content_type


def document_create(*, tenant: Tenant, uploaded_file, uploaded_by=None, title: str = "") -> Document:
    """Store the file, create the document and queue its processing after commit."""
    content_type = validate_upload(uploaded_file)
    original_name = (uploaded_file.name or "upload").rsplit("/", 1)[-1][:255]
    document_id = uuid.uuid4()
    sha256 = _sha256(uploaded_file)
    # The file goes to storage before the row exists and outside any transaction: a network
    # call must never hold a transaction open. If the row cannot be written, the file is removed.
    key = storage.store_file(
        storage.document_key(
            tenant_slug=tenant.slug, document_id=document_id, filename=original_name
        ),
        uploaded_file,
    )
    try:
        with transaction.atomic():
            document = Document.objects.create(
                id=document_id,
                tenant=tenant,
                uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
                title=(title or original_name)[:300],
                original_filename=original_name,
                content_type=content_type,
                size_bytes=uploaded_file.size,
                sha256=sha256,
                storage_key=key,
                last_task_id=str(uuid.uuid4()),
            )
            _queue_after_commit([(document.pk, document.last_task_id)])
    except Exception:
        storage.delete_file(key)
        raise
    return document


def _queue_after_commit(pairs: list[tuple]) -> None:
    """Send one ``process_document`` message per (document id, task id) once committed."""
    from documents.tasks import process_document

    def send():
        for document_id, task_id in pairs:
            process_document.apply_async(args=[str(document_id)], task_id=task_id)

    transaction.on_commit(send, robust=True)


@dataclass(frozen=True)
class BulkResult:
    done: int
    skipped: int


def documents_reprocess(*, queryset: QuerySet[Document]) -> BulkResult:
    """Queue documents again from the start; those already processing are skipped."""
    return _requeue(queryset.exclude(status=Status.PROCESSING), total=queryset.count())


def documents_retry_failed(*, queryset: QuerySet[Document]) -> BulkResult:
    """Queue failed documents again; documents in any other state are skipped."""
    return _requeue(queryset.filter(status=Status.FAILED), total=queryset.count())


def _requeue(eligible: QuerySet[Document], *, total: int) -> BulkResult:
    with transaction.atomic():
        ids = list(
            eligible.select_for_update(skip_locked=True).values_list("pk", flat=True)
        )
        now = timezone.now()
        pairs = [(pk, str(uuid.uuid4())) for pk in ids]
        # One UPDATE for all rows; each message gets its own task id, which the worker
        # records on the row when it claims it.
        Document.objects.filter(pk__in=ids).update(
            status=Status.PROCESSING,
            stage=Document.Stage.QUEUED,
            failure_kind="",
            failure_message="",
            pages_done=0,
            chunks_done=0,
            claimed_by="",
            heartbeat_at=None,
            queued_at=now,
            finished_at=None,
        )
        _queue_after_commit(pairs)
    return BulkResult(done=len(ids), skipped=total - len(ids))


def membership_create(*, user, tenant: Tenant, role: str = Membership.Role.STAFF) -> Membership:
    membership, _ = Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership
