"""Checking an upload before it becomes a document: its size, its SHA-256, and its type
decided from its bytes, not from its name or the type the browser sent.

The SHA-256 of a file posted to the API or the admin is computed while the request body
streams in, by the upload handlers below (``FILE_UPLOAD_HANDLERS``), so intake does not read
the file a second time to hash it; a file that did not come through them (the CLI's, a
service called with a file object) is hashed when it is checked.

An upload named ``report.pdf`` can be a Word document, and a ``.txt`` can be a binary; the
extractor needs the real type. The name only breaks ties that bytes cannot: Markdown versus
plain text, and a damaged ZIP that says it is a ``.docx``.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from typing import BinaryIO

import charset_normalizer
from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat

from documents.errors import BudgetExceeded, InvalidUpload, UnsupportedUpload, UploadTooLarge
from documents.pipeline.ooxml import Package, PackageError, word_main_document
from documents.pipeline.types import ExtractOptions

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"

HEAD_BYTES = 8192

# PDF readers (PDFium among them) accept junk before the header within the first 1024 bytes,
# so a PDF written by a tool that prepends a byte-order mark or a mail header is still a PDF.
_PDF_HEADER_WINDOW = 1024

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
)

_MARKDOWN_SUFFIXES = (".md", ".markdown")

# Text with a byte-order mark is text even though UTF-16/32 is full of NUL bytes.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_content_type(fileobj: BinaryIO, filename: str) -> str | None:
    """Return the content type of ``fileobj`` (one the extractor reads), or None when it is
    none of them. Reads the first 8 KB (the whole file's ZIP directory for a ZIP) and seeks
    back to where it started. The file object must be seekable.

    An empty file is None: it has no type, and the caller should say it is empty."""
    start = fileobj.tell()
    try:
        head = fileobj.read(HEAD_BYTES)
        fileobj.seek(start)
        if not head:
            return None
        if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
            return PDF
        for magic, content_type in _IMAGE_MAGIC:
            if head.startswith(magic):
                return content_type
        if head.startswith(b"PK\x03\x04"):
            return _sniff_zip(fileobj, filename)
        if _looks_like_text(head):
            return MARKDOWN if filename.lower().endswith(_MARKDOWN_SUFFIXES) else TEXT
        return None
    finally:
        fileobj.seek(start)


# Only the package's relationships and content types are read here (a few KB), through the
# same bounded reader as extraction, with its default limits.
_ZIP_LIMITS = ExtractOptions()


def _sniff_zip(fileobj: BinaryIO, filename: str) -> str | None:
    """A Word document is a package whose officeDocument relationship points at a part of
    a Word main content type (ECMA-376 Part 2), whatever that part is called: Word and
    python-docx open a main part named otherwise than word/document.xml. Spreadsheets,
    presentations and other ZIPs (odt, jar) are not."""
    try:
        with Package(
            fileobj,
            max_part_bytes=_ZIP_LIMITS.max_zip_part_bytes,
            max_ratio=_ZIP_LIMITS.max_zip_ratio,
        ) as package:
            return DOCX if word_main_document(package) else None
    except (PackageError, BudgetExceeded):
        # A truncated upload has lost its ZIP directory, so its content is unknowable; if it
        # claims to be a Word document, let the extractor report it as damaged (which tells
        # staff what to do) rather than as an unsupported type. The same goes for a package
        # whose relationships cannot be read.
        return DOCX if filename.lower().endswith(".docx") else None


def _looks_like_text(head: bytes) -> bool:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return _decodes(head, encoding)
    if b"\x00" in head:
        return False
    if _decodes(head, "utf-8"):
        return True
    # Legacy 8-bit encodings decode almost any byte string, so ask charset-normalizer, which
    # rejects byte soup (it returns nothing for random binary data).
    return charset_normalizer.from_bytes(head).best() is not None


# Control characters that text files do not hold: all below 32 but tabs, line and page breaks
# (\t \n \r \f) and ESC (ANSI colours in logs). One regular expression over the 8 KB
# instead of a test per character, because it runs in every upload's request (the timing is
# in docs/measurements.md, "Sniffing text uploads").
_BINARY_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def _decodes(head: bytes, encoding: str) -> bool:
    # Incremental, not final: the 8 KB cut can fall inside a multi-byte character.
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return _BINARY_CONTROL.search(text) is None


_HASH_BLOCK = 1024 * 1024

# The attribute the upload handlers set on the files they make.
STREAMED_SHA256 = "streamed_sha256"


def sha256_of(fileobj) -> str:
    digest = hashlib.sha256()
    fileobj.seek(0)
    for block in iter(lambda: fileobj.read(_HASH_BLOCK), b""):
        digest.update(block)
    fileobj.seek(0)
    return digest.hexdigest()


def digest_of(uploaded_file) -> str:
    """The file's SHA-256: the one its upload handler computed while the body streamed in,
    or else read from the file."""
    return getattr(uploaded_file, STREAMED_SHA256, None) or sha256_of(uploaded_file)


class DigestingMemoryFileUploadHandler(MemoryFileUploadHandler):
    """Django's in-memory handler (bodies up to FILE_UPLOAD_MAX_MEMORY_SIZE), hashing each
    chunk as it keeps it. Django hands the chunks of a file to the handlers in order, and a
    handler that keeps a chunk passes nothing on: so each handler hashes only when it is the
    one keeping the file, and a chunk is hashed exactly once."""

    def new_file(self, *args, **kwargs):
        self._sha256 = hashlib.sha256()
        super().new_file(*args, **kwargs)  # raises StopFutureHandlers when it keeps the file

    def receive_data_chunk(self, raw_data, start):
        if self.activated:
            self._sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            setattr(uploaded, STREAMED_SHA256, self._sha256.hexdigest())
        return uploaded


class DigestingTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler (larger bodies), hashing each chunk as it writes it."""

    def new_file(self, *args, **kwargs):
        self._sha256 = hashlib.sha256()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self._sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        setattr(uploaded, STREAMED_SHA256, self._sha256.hexdigest())
        return uploaded


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
