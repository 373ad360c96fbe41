"""GET /api/search/: token or session auth, the tenant from the caller's memberships, k
bounded, the API's error shape, and nothing of another tenant."""

from __future__ import annotations

import pytest

from documents.models import Chunk, Status
from tests.factories import make_document

pytestmark = pytest.mark.django_db

URL = "/api/search/"
TIDES = "Spring tides follow the new and the full moon; sailors read the tide tables."
ORCHARD = "Apples ripen in the orchard in autumn, pears a little later."
VAGUE = "when does fruit become edible"


@pytest.fixture
def almanacs(personas, indexed):
    mine = make_document(personas.tenant_a, title="Almanac", status=Status.COMPLETED)
    copy = make_document(personas.tenant_a, title="Almanac copy", status=Status.COMPLETED)
    theirs = make_document(personas.tenant_b, title="Globex almanac", status=Status.COMPLETED)
    indexed(mine, [ORCHARD, TIDES], like=0, query=VAGUE)
    indexed(copy, [TIDES.upper()])
    indexed(theirs, [TIDES, ORCHARD], like=1, query=VAGUE)
    return mine, copy, theirs


def test_it_answers_the_passages_with_document_pages_score_and_side(personas, api_for, almanacs):
    mine, copy, _ = almanacs
    response = api_for(personas.staff_a).get(URL, {"q": "tides moon sailors", "k": 5})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["tenant"], body["k"], body["mode"]) == ("acme", 5, "lexical")
    assert body["terms"] == ["tides", "moon", "sailors"]
    [hit] = body["results"]  # the copy is folded into the first
    assert hit == {
        "chunk_id": f"{mine.pk}#1",
        "document_id": str(mine.pk),
        "title": "Almanac",
        "chunk_index": 1,
        "page_start": 2,
        "page_end": 2,
        "score": hit["score"],
        # the vector side returns every chunk of so small a namespace among its 50
        "found_by": "both",
        "text": TIDES,
        "also_in": [
            {
                "document_id": str(copy.pk),
                "title": "Almanac copy",
                "chunk_index": 0,
                "page_start": 1,
                "page_end": 1,
                "same_text": True,
            }
        ],
        "low_quality": False,
    }
    assert hit["score"] > 0


def test_the_query_is_embedded_as_a_query(personas, api_for, almanacs):
    mine, _, _ = almanacs
    # chunk 0 holds the vector of VAGUE embedded with the RETRIEVAL_QUERY task type
    body = api_for(personas.staff_a).get(URL, {"q": VAGUE}).json()
    assert body["mode"] == "fused"
    assert (body["results"][0]["chunk_id"], body["results"][0]["found_by"]) == (
        f"{mine.pk}#0",
        "vector",
    )


def test_the_other_tenants_staff_see_only_their_own_passages(personas, api_for, almanacs):
    _, _, theirs = almanacs
    client = api_for(personas.staff_b)
    body = client.get(URL, {"q": "tides moon sailors"}).json()
    assert body["tenant"] == "globex"
    assert {r["document_id"] for r in body["results"]} == {str(theirs.pk)}
    assert body["results"][0]["also_in"] == []
    refused = client.get(URL, {"q": "tides", "tenant": "acme"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_a_member"
    assert "acme" in refused.json()["error"]["message"]


def test_a_session_works_like_a_token(client, personas, almanacs):
    client.force_login(personas.staff_a)
    response = client.get(URL, {"q": "orchard apples"})
    assert response.status_code == 200
    assert response.json()["results"][0]["title"] == "Almanac"


def test_without_credentials_it_is_401(client):
    response = client.get(URL, {"q": "tides"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "tides", "k": 0}, "k"),
        ({"q": "tides", "k": 51}, "k"),
        ({"q": "tides", "k": "ten"}, "k"),
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 1001}, "q"),
        ({"q": "tides", "tenant": ""}, "tenant"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(personas, api_for, params, field):
    response = api_for(personas.staff_a).get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"].startswith(f"{field}:")


def test_a_query_of_spaces_finds_nothing(personas, api_for, almanacs, search_backends):
    response = api_for(personas.staff_a).get(URL, {"q": " \x1f\t"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert not [r for r in search_backends.requests if r.path == "/query"]


def test_nul_characters_in_the_query_are_dropped(personas, api_for, almanacs):
    response = api_for(personas.staff_a).get(URL, {"q": "tides\x00 moon\x00"})
    assert response.status_code == 200, response.content
    assert response.json()["terms"] == ["tides", "moon"]


def test_a_passage_from_a_flagged_page_is_marked(personas, api_for, almanacs):
    mine, _, _ = almanacs
    Chunk.objects.filter(document=mine, index=1).update(low_quality=True)
    response = api_for(personas.staff_a).get(URL, {"q": "tides moon sailors"})
    marks = {hit["chunk_id"]: hit["low_quality"] for hit in response.json()["results"]}
    assert marks[f"{mine.pk}#1"] is True
    assert not any(flag for chunk, flag in marks.items() if chunk != f"{mine.pk}#1")


def test_a_member_of_several_tenants_must_name_one(personas, api_for, search_backends):
    from tests.factories import MembershipFactory

    MembershipFactory(tenant=personas.tenant_b, user=personas.staff_a)
    response = api_for(personas.staff_a).get(URL, {"q": "tides"})
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]["message"]
    assert api_for(personas.staff_a).get(URL, {"q": "tides", "tenant": "globex"}).status_code == 200


def test_an_outsider_has_nothing_to_search(personas, api_for, search_backends):
    response = api_for(personas.outsider).get(URL, {"q": "tides"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_a_member"


def test_the_operation_is_in_the_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/search/"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert names["k"]["schema"]["minimum"] == 1 and names["k"]["schema"]["maximum"] == 50
    assert names["q"]["required"] is True
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "429", "503"}
