"""Where a document's file lives, and how it is written, read and removed.

Keys are ``tenants/<tenant slug>/documents/<document uuid>/<safe name>``: unique per
document, so two uploads never collide and a tenant's files can be listed by prefix.
The backend (S3 through django-storages, or the local file system) comes from ``STORAGES``.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename

from documents import scratch
from documents.errors import FailureKind, PermanentError, TransientError

_MAX_NAME = 120


def safe_filename(original: str) -> str:
    name = Path(original.replace("\\", "/")).name
    try:
        name = get_valid_filename(name)
    except Exception:  # noqa: BLE001 - Django raises SuspiciousFileOperation for "." and ".."
        name = "file"
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: _MAX_NAME - len(ext) - 1] + dot + ext) if dot else name[:_MAX_NAME]
    return name or "file"


def document_key(*, tenant_slug: str, document_id, filename: str) -> str:
    return f"tenants/{tenant_slug}/documents/{document_id}/{safe_filename(filename)}"


def store_file(key: str, fileobj) -> str:
    """Write the upload under ``key``; returns the key the storage actually used. A store that
    cannot be written (S3 unreachable, a full disk) is a TransientError: the upload may be
    sent again, and the API answers 503 instead of a bare 500."""
    fileobj.seek(0)
    try:
        return default_storage.save(key, fileobj)
    except Exception as exc:
        raise TransientError(
            f"The file store could not be written ({type(exc).__name__}); try the upload again.",
            FailureKind.UNAVAILABLE,
        ) from exc


def delete_file(key: str) -> None:
    if key:
        default_storage.delete(key)


def download_response(key: str, *, filename: str, content_type: str) -> HttpResponse:
    """The answer to a download of ``key``, for a caller that has checked the user may see it.

    On a storage that signs URLs (S3) a redirect to a presigned URL that expires after
    ``S3_PRESIGNED_EXPIRE_SECONDS`` and makes S3 send the file as an attachment under its
    original name; the bytes never pass through the web process. On the local file system the
    file is streamed in blocks, since there is no URL to hand out (nothing serves var/media).
    A stored file that is gone raises PermanentError(MISSING_FILE) rather than a redirect to a
    404 or a broken stream."""
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if getattr(default_storage, "querystring_auth", False):
        # One HEAD request, so a missing object is answered here and not by S3's XML 404.
        if not default_storage.exists(key):
            raise _missing()
        url = default_storage.url(
            key,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseContentType": content_type,
            },
        )
        response = HttpResponseRedirect(url)
        # The URL is a credential for as long as it lives: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response
    try:
        handle = default_storage.open(key, "rb")
    except FileNotFoundError as exc:
        raise _missing() from exc
    response = FileResponse(handle, content_type=content_type)
    response["Content-Disposition"] = disposition
    return response


def _missing() -> PermanentError:
    return PermanentError(
        "The stored file for this document is missing; upload it again.",
        FailureKind.MISSING_FILE,
    )


def _copy_to(key: str, out) -> None:
    with default_storage.open(key, "rb") as source:
        shutil.copyfileobj(source, out, length=1024 * 1024)


def _is_missing(exc: Exception) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in {"404", "NoSuchKey", "NotFound"}


@contextmanager
def local_copy(key: str):
    """Yield a local path holding the stored file, copied in blocks (never read whole). It is
    made in this process's own temporary folder, so a worker killed mid-task leaves it where
    the next start finds and removes it (``scratch``)."""
    tmp_dir = scratch.process_folder()
    with tempfile.NamedTemporaryFile(dir=tmp_dir, suffix=Path(key).suffix, delete=False) as out:
        path = Path(out.name)
        try:
            _copy_to(key, out)
        except Exception as exc:
            path.unlink(missing_ok=True)
            if _is_missing(exc):
                raise PermanentError(
                    "The stored file for this document is missing; upload it again.",
                    FailureKind.MISSING_FILE,
                ) from exc
            raise TransientError(
                f"The file store could not be read ({type(exc).__name__}); it will be retried.",
                FailureKind.UNAVAILABLE,
            ) from exc
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
