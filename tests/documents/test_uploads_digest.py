"""The SHA-256 computed while an upload's body streams in (``FILE_UPLOAD_HANDLERS``): equal to
hashlib's over the same bytes, in memory and spooled to a temporary file, and the one the
document gets through the API and the admin upload, so duplicates are still found."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from django.test import RequestFactory
from django.urls import reverse

from documents.models import Document
from documents.uploads import STREAMED_SHA256, digest_of
from tests import corpus

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not corpus.AVAILABLE, reason="../shared/corpus is absent"),
]

# Bodies up to FILE_UPLOAD_MAX_MEMORY_SIZE stay in memory, larger ones go to a temporary file:
# each test runs once with every file kept in memory and once with every file spooled.
KEPT = {
    "memory": (100 * 1024 * 1024, InMemoryUploadedFile),
    "temporary": (0, TemporaryUploadedFile),
}

# Files of each type the upload accepts, from a few KB to 2.6 MB (forty 64 KB chunks).
ACCEPTED = [
    "minimal-document.pdf",
    "freeculture.pdf",
    "zen_of_python.docx",
    "linn.png",
    "phototest.tif",
]


def corpus_files() -> list[str]:
    return sorted(corpus.manifest()) if corpus.AVAILABLE else []


def sha256(name: str) -> str:
    return hashlib.sha256((corpus.CORPUS / name).read_bytes()).hexdigest()


def parsed(name: str):
    """The file as Django's multipart parser hands it to a view, through the settings'
    upload handlers."""
    with (corpus.CORPUS / name).open("rb") as handle:
        request = RequestFactory().post("/api/ingest/", {"file": handle})
        return request.FILES["file"]


@pytest.fixture(params=list(KEPT))
def kept(request, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = KEPT[request.param][0]
    return KEPT[request.param][1]


@pytest.mark.parametrize("name", corpus_files())
def test_the_streamed_digest_equals_hashlib_over_the_corpus_file(name, kept):
    uploaded = parsed(name)
    assert isinstance(uploaded, kept)
    assert getattr(uploaded, STREAMED_SHA256) == sha256(name)
    # The file itself is whole and at its start, for the sniffing and the storage after.
    assert uploaded.tell() == 0
    assert uploaded.read() == (corpus.CORPUS / name).read_bytes()


def test_intake_takes_the_streamed_digest_and_hashes_a_file_that_has_none(kept):
    uploaded = parsed("freeculture.pdf")
    assert digest_of(uploaded) == getattr(uploaded, STREAMED_SHA256) == sha256("freeculture.pdf")
    # A file handed to the services directly (the CLI's) did not stream through a handler.
    cli_file = SimpleUploadedFile(
        "freeculture.pdf", (corpus.CORPUS / "freeculture.pdf").read_bytes()
    )
    assert not hasattr(cli_file, STREAMED_SHA256)
    assert digest_of(cli_file) == sha256("freeculture.pdf")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ACCEPTED)
def test_an_api_upload_stores_the_digest_and_the_same_file_again_is_a_duplicate(
    name, kept, personas, api_for, settings
):
    client = api_for(personas.staff_a)
    with (corpus.CORPUS / name).open("rb") as handle:
        first = client.post("/api/ingest/", {"file": handle}, format="multipart")
    assert first.status_code == 202, first.content
    document = Document.objects.get(pk=first.json()["document_id"])
    assert document.sha256 == sha256(name)
    # Sent again the other way (in memory after spooled, spooled after in memory): the two
    # handlers agree, and the upload answers with the existing document.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0 if kept is InMemoryUploadedFile else 2**30
    with (corpus.CORPUS / name).open("rb") as handle:
        again = client.post("/api/ingest/", {"file": handle}, format="multipart")
    assert again.status_code == 200, again.content
    assert again.json()["duplicate"] is True
    assert again.json()["document_id"] == str(document.pk)
    assert Document.objects.filter(tenant=personas.tenant_a).count() == 1


@pytest.mark.django_db
def test_an_admin_upload_stores_each_files_digest_and_names_the_files_already_there(
    kept, client, personas, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(personas.staff_a)
    url = reverse("admin:documents_document_upload")

    def post(names):
        handles = [(corpus.CORPUS / n).open("rb") for n in names]
        try:
            return client.post(
                url, {"tenant": personas.tenant_a.pk, "files": handles, "title": ""}, follow=True
            )
        finally:
            for handle in handles:
                handle.close()

    post(ACCEPTED[:3])
    documents = Document.objects.filter(tenant=personas.tenant_a)
    assert {d.original_filename: d.sha256 for d in documents} == {
        n: sha256(n) for n in ACCEPTED[:3]
    }
    response = post(ACCEPTED[1:4])
    messages = " ".join(str(m) for m in response.context["messages"])
    for name in ACCEPTED[1:3]:
        assert name in messages
    documents = Document.objects.filter(tenant=personas.tenant_a)
    assert documents.count() == 4, messages  # only linn.png was new
    assert documents.get(original_filename="linn.png").sha256 == sha256("linn.png")
