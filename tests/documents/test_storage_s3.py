"""The S3 path of document storage, against moto's standalone server over real HTTP."""

from __future__ import annotations

import io
import urllib.request

import boto3
import pytest
from django.core.files.storage import default_storage, storages
from moto.server import ThreadedMotoServer

from documents import storage

BUCKET = "documents-test"


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(moto_endpoint, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    # The same options settings.py builds when S3_BUCKET is set.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "region_name": "us-east-1",
                "endpoint_url": moto_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": True,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        },
    }
    yield client
    storages._storages.pop("default", None)


def test_a_document_is_stored_privately_under_its_tenant_key_and_read_back(s3_storage, tmp_path):
    key = storage.document_key(
        tenant_slug="acme",
        document_id="0b7c7a0e-1111-2222-3333-444455556666",
        filename="../../Quarterly report (final).pdf",
    )
    assert key == (
        "tenants/acme/documents/0b7c7a0e-1111-2222-3333-444455556666/Quarterly_report_final.pdf"
    )
    saved = storage.store_file(key, io.BytesIO(b"%PDF-1.4 body"))
    assert saved == key
    head = s3_storage.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(b"%PDF-1.4 body")
    acl = s3_storage.get_object_acl(Bucket=BUCKET, Key=key)
    assert not [g for g in acl["Grants"] if "AllUsers" in str(g.get("Grantee", {}))]

    with storage.local_copy(key) as path:
        assert path.read_bytes() == b"%PDF-1.4 body"
    assert not path.exists()  # the temporary copy is removed


def test_downloads_redirect_to_a_sigv4_presigned_url_that_works(s3_storage):
    key = "tenants/acme/documents/x/file.txt"
    storage.store_file(key, io.BytesIO(b"hello"))
    redirect = storage.download_response(key, filename="Café menu.txt", content_type="text/plain")
    assert redirect.status_code == 302
    url = redirect["Location"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"hello"
        assert response.headers["Content-Type"] == "text/plain"
        # RFC 6266: the original name survives, non-ASCII included.
        assert "filename*=utf-8''Caf%C3%A9%20menu.txt" in response.headers["Content-Disposition"]


def test_a_missing_object_is_a_permanent_missing_file_error(s3_storage):
    from documents.errors import FailureKind, PermanentError

    with pytest.raises(PermanentError) as raised, storage.local_copy("tenants/acme/none.pdf"):
        pass
    assert raised.value.kind == FailureKind.MISSING_FILE


def test_delete_removes_the_object(s3_storage):
    key = "tenants/acme/documents/y/file.txt"
    storage.store_file(key, io.BytesIO(b"bye"))
    storage.delete_file(key)
    assert not default_storage.exists(key)
