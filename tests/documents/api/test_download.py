"""GET /api/documents/<id>/download/: the file of a document of one of the caller's tenants,
streamed on local storage, a redirect to a presigned URL on S3 (moto's standalone server)."""

from __future__ import annotations

import urllib.request

import pytest
from rest_framework.test import APIClient

from documents import storage
from tests.documents.test_admin_download import CONTENT, body_of, stored_document
from tests.documents.test_storage_s3 import moto_endpoint, s3_storage  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def download(client, document):
    return client.get(f"/api/documents/{document.pk}/download/")


def test_the_detail_gives_the_download_url(personas, api_for):
    document = stored_document(personas.tenant_a)
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["download_url"] == f"http://testserver/api/documents/{document.pk}/download/"


def test_on_local_storage_the_file_is_streamed(personas, api_for):
    document = stored_document(personas.tenant_a)
    response = download(api_for(personas.staff_a), document)
    assert response.status_code == 200
    assert response.streaming
    assert body_of(response) == CONTENT
    assert response["Content-Disposition"].startswith("attachment;")


def test_another_tenants_document_is_the_json_404(personas, api_for):
    document = stored_document(personas.tenant_a)
    response = download(api_for(personas.staff_b), document)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_without_credentials_it_is_a_401(personas):
    document = stored_document(personas.tenant_a)
    assert download(APIClient(), document).status_code == 401


def test_a_missing_stored_file_is_a_404_that_says_so(personas, api_for):
    document = stored_document(personas.tenant_a)
    storage.delete_file(document.storage_key)
    response = download(api_for(personas.staff_a), document)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "missing_file"


@pytest.mark.usefixtures("s3_storage")
def test_on_s3_it_redirects_to_a_presigned_url_that_works(personas, api_for):
    document = stored_document(personas.tenant_a)
    response = download(api_for(personas.staff_a), document)
    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"]) as presigned:
        assert presigned.read() == CONTENT


@pytest.mark.usefixtures("s3_storage")
def test_on_s3_another_tenants_document_is_a_404_without_a_url(personas, api_for):
    document = stored_document(personas.tenant_a)
    response = download(api_for(personas.staff_b), document)
    assert response.status_code == 404
    assert "Location" not in response


@pytest.mark.usefixtures("s3_storage")
def test_on_s3_a_missing_object_is_a_404_not_a_redirect(personas, api_for):
    document = stored_document(personas.tenant_a)
    storage.delete_file(document.storage_key)
    response = download(api_for(personas.staff_a), document)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "missing_file"
