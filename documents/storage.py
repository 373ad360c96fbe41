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
    """Write the upload under ``key``; returns the key the storage actually used."""
    fileobj.seek(0)
    return default_storage.save(key, fileobj)


def delete_file(key: str) -> None:
    if key:
        default_storage.delete(key)


def download_url(key: str) -> str:
    """A presigned, short-lived URL on S3; the media URL on the local file system."""
    return default_storage.url(key)


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
