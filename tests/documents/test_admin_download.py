"""The admin document page's download link: a tenant-scoped view that streams the file on
local storage and redirects to a presigned URL on S3 (moto's standalone server)."""

from __future__ import annotations

import io
import re
import urllib.request
import uuid

import pytest
from django.urls import reverse

from documents import storage
from tests.documents.test_storage_s3 import moto_endpoint, s3_storage  # noqa: F401 - fixtures
from tests.factories import make_document

pytestmark = pytest.mark.django_db

CONTENT = b"Minutes of the board, 3 March.\nPresent: everyone.\n"


def stored_document(tenant, *, name="Board minutes (March).txt", content=CONTENT):
    document_id = uuid.uuid4()
    key = storage.store_file(
        storage.document_key(tenant_slug=tenant.slug, document_id=document_id, filename=name),
        io.BytesIO(content),
    )
    return make_document(
        tenant,
        id=document_id,
        storage_key=key,
        original_filename=name,
        content_type="text/plain",
        size_bytes=len(content),
    )


def download_href(client, document) -> str:
    page = client.get(reverse("admin:documents_document_change", args=[document.pk]))
    assert page.status_code == 200
    match = re.search(r'<a href="([^"]+)" class="doc-download"', page.content.decode())
    assert match, "the document page has no download link"
    return match.group(1).replace("&amp;", "&")


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_on_local_storage_the_link_streams_the_file_as_an_attachment(client, personas):
    document = stored_document(personas.tenant_a)
    client.force_login(personas.staff_a)
    href = download_href(client, document)
    response = client.get(href)
    assert response.status_code == 200, f"{href} answered {response.status_code}"
    assert href == reverse("admin:documents_document_download", args=[document.pk])
    assert response.streaming
    assert body_of(response) == CONTENT
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Board minutes (March).txt" in response["Content-Disposition"]


def test_another_tenants_staff_get_a_404_and_no_bytes(client, personas):
    document = stored_document(personas.tenant_a)
    client.force_login(personas.staff_b)
    response = client.get(reverse("admin:documents_document_download", args=[document.pk]))
    assert response.status_code == 404
    assert CONTENT not in body_of(response)


def test_a_stored_file_that_is_gone_is_said_so_on_the_document_page(client, personas):
    document = stored_document(personas.tenant_a)
    storage.delete_file(document.storage_key)
    client.force_login(personas.staff_a)
    response = client.get(
        reverse("admin:documents_document_download", args=[document.pk]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse(
        "admin:documents_document_change", args=[document.pk]
    )
    assert "stored file for this document is missing" in response.content.decode()


@pytest.mark.usefixtures("s3_storage")
def test_on_s3_the_link_redirects_to_a_presigned_url_that_works(client, personas):
    document = stored_document(personas.tenant_a)
    client.force_login(personas.staff_a)
    response = client.get(download_href(client, document))
    assert response.status_code == 302
    url = response["Location"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url) as presigned:
        assert presigned.read() == CONTENT
        assert presigned.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.usefixtures("s3_storage")
def test_on_s3_another_tenants_staff_get_no_presigned_url(client, personas):
    document = stored_document(personas.tenant_a)
    client.force_login(personas.staff_b)
    response = client.get(reverse("admin:documents_document_download", args=[document.pk]))
    assert response.status_code == 404
    assert "X-Amz" not in response.get("Location", "")
