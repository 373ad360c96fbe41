"""Every API error is the JSON shape with the right code, and the schema says so."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from documents.api.errors import ERROR_CODES
from tests.factories import MembershipFactory, make_document

pytestmark = pytest.mark.django_db


def upload(client, content=b"A note.\n", name="note.txt", **fields):
    data = dict(fields)
    if content is not None:
        handle = io.BytesIO(content)
        handle.name = name
        data["file"] = handle
    return client.post("/api/ingest/", data, format="multipart")


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    assert body["error"]["code"] in ERROR_CODES
    return body["error"]["code"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0b7c7a0e-1111-2222-3333-44445555666"])
def test_a_malformed_document_id_is_the_json_404(personas, api_for, bad_id):
    client = api_for(personas.staff_a)
    assert error_of(client.get(f"/api/documents/{bad_id}/"), 404) == "not_found"
    assert error_of(client.get(f"/api/documents/{bad_id}/download/"), 404) == "not_found"


def test_an_unknown_path_under_the_api_is_the_json_404(personas, api_for):
    client = api_for(personas.staff_a)
    assert error_of(client.get("/api/nothing/here/"), 404) == "not_found"


def test_an_unknown_path_elsewhere_is_still_an_html_page(client):
    response = client.get("/nothing/here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_tenant_you_are_not_a_member_of_is_not_a_member(personas, api_for):
    response = upload(api_for(personas.staff_a), tenant="globex")
    assert error_of(response, 403) == "not_a_member"


def test_no_tenant_at_all_is_not_a_member(personas, api_for):
    assert error_of(upload(api_for(personas.outsider)), 403) == "not_a_member"


def test_no_file_is_invalid_and_names_the_field(personas, api_for):
    response = upload(api_for(personas.staff_a), content=None, title="x")
    assert error_of(response, 400) == "invalid"
    assert response.json()["error"]["message"].startswith("file: No file was submitted")


def test_an_empty_file_is_invalid(personas, api_for):
    response = upload(api_for(personas.staff_a), content=b"")
    assert error_of(response, 400) == "invalid"
    assert "empty" in response.json()["error"]["message"]


def test_several_tenants_and_none_named_is_invalid(personas, api_for):
    MembershipFactory(user=personas.staff_a, tenant=personas.tenant_b)
    response = upload(api_for(personas.staff_a))
    assert error_of(response, 400) == "invalid"
    assert "tenant" in response.json()["error"]["message"]


def test_an_unknown_status_filter_is_invalid(personas, api_for):
    response = api_for(personas.staff_a).get("/api/documents/?status=bogus")
    assert error_of(response, 400) == "invalid"


def test_an_unsupported_file_is_unsupported_type(personas, api_for):
    response = upload(api_for(personas.staff_a), content=bytes(range(256)) * 4)
    assert error_of(response, 415) == "unsupported_type"


def test_a_body_that_is_not_multipart_is_unsupported_media_type(personas, api_for):
    response = api_for(personas.staff_a).post("/api/ingest/", {"title": "x"}, format="json")
    assert error_of(response, 415) == "unsupported_media_type"


def test_no_credentials_and_wrong_credentials_are_told_apart(personas):
    assert error_of(APIClient().get("/api/documents/"), 401) == "not_authenticated"
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert error_of(wrong.get("/api/documents/"), 401) == "authentication_failed"


def test_a_page_past_the_end_is_not_found(personas, api_for):
    make_document(personas.tenant_a)
    assert error_of(api_for(personas.staff_a).get("/api/documents/?page=9"), 404) == "not_found"


def test_a_method_the_endpoint_does_not_take_is_method_not_allowed(personas, api_for):
    response = api_for(personas.staff_a).delete("/api/documents/")
    assert error_of(response, 405) == "method_not_allowed"


# --- the schema ---------------------------------------------------------------------------------


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_makes_file_required(schema):
    body = schema["paths"]["/api/ingest/"]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]
    ref = form["$ref"].rsplit("/", 1)[-1]
    assert "file" in schema["components"]["schemas"][ref]["required"]


@pytest.mark.parametrize(
    "path, method, statuses",
    [
        ("/api/ingest/", "post", {"400", "401", "403", "413", "415", "429"}),
        ("/api/documents/", "get", {"400", "401", "404", "429"}),
        ("/api/documents/{id}/", "get", {"401", "404", "429"}),
        ("/api/documents/{id}/download/", "get", {"401", "404", "429"}),
    ],
)
def test_the_schema_lists_each_error_answer_in_the_error_shape(schema, path, method, statuses):
    responses = schema["paths"][path][method]["responses"]
    assert statuses <= set(responses)
    for status in statuses:
        content = responses[status]["content"]["application/json"]["schema"]
        assert content["$ref"].endswith("/Error")
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}


def test_the_schema_gives_the_download_url_and_the_download_answers(schema):
    document = schema["components"]["schemas"]["Document"]["properties"]
    assert document["download_url"]["format"] == "uri"
    download = schema["paths"]["/api/documents/{id}/download/"]["get"]["responses"]
    assert "302" in download
    assert "application/pdf" in download["200"]["content"]


def test_an_unreachable_file_store_is_a_503_unavailable(personas, api_for, settings):
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "documents",
                "endpoint_url": "http://127.0.0.1:1",
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
            },
        },
    }
    storages._storages.pop("default", None)
    try:
        response = upload(api_for(personas.staff_a))
    finally:
        storages._storages.pop("default", None)
    assert error_of(response, 503) == "unavailable"
    assert "127.0.0.1:1" not in response.json()["error"]["message"]
