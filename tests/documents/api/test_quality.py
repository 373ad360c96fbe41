"""The ``quality`` object of GET /api/documents/ and /api/documents/<id>/, and the list's
``?low_quality=`` filter: scoped to the caller's tenants like everything else."""

from __future__ import annotations

import pytest

from tests.factories import make_document

pytestmark = pytest.mark.django_db

FLAGGED = {
    "pages": 4,
    "ocr_pages": 2,
    "ocr_share": 0.5,
    "mean_confidence": 61.5,
    "garbled_layers": 1,
    "flagged": [
        {
            "page": 3,
            "reason": "low OCR confidence (41 of 100)",
            "ocr_confidence": 41.2,
            "garbage_score": None,
        }
    ],
}
CLEAN = {
    "pages": 2,
    "ocr_pages": 0,
    "ocr_share": 0.0,
    "mean_confidence": None,
    "garbled_layers": 0,
    "flagged": [],
}


def test_the_detail_carries_the_quality_summary_and_the_flagged_pages(personas, api_for):
    document = make_document(personas.tenant_a, quality=FLAGGED, low_quality=True)
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["quality"] == {
        "low_quality": True,
        "pages": 4,
        "ocr_pages": 2,
        "ocr_share": 0.5,
        "mean_confidence": 61.5,
        "garbled_layers": 1,
        "flagged_pages": [
            {
                "page": 3,
                "reason": "low OCR confidence (41 of 100)",
                "ocr_confidence": 41.2,
                "garbage_score": None,
            }
        ],
    }


def test_quality_is_null_until_the_text_is_extracted(personas, api_for):
    document = make_document(personas.tenant_a)
    body = api_for(personas.staff_a).get("/api/documents/").json()
    assert [d["quality"] for d in body["results"] if d["id"] == str(document.pk)] == [None]


def test_the_list_filters_on_low_quality_within_the_callers_tenants(personas, api_for):
    poor = make_document(
        personas.tenant_a, n=1, title="Poor scan", quality=FLAGGED, low_quality=True
    )
    fine = make_document(personas.tenant_a, n=2, title="Clean", quality=CLEAN)
    theirs = make_document(
        personas.tenant_b, n=3, title="Globex poor scan", quality=FLAGGED, low_quality=True
    )
    client = api_for(personas.staff_a)
    low = client.get("/api/documents/?low_quality=true").json()
    assert [d["id"] for d in low["results"]] == [str(poor.pk)]
    assert low["results"][0]["quality"]["flagged_pages"][0]["page"] == 3
    not_low = client.get("/api/documents/?low_quality=false").json()
    assert [d["id"] for d in not_low["results"]] == [str(fine.pk)]

    # tenant B sees its own low-quality document and nothing of A's
    other = api_for(personas.staff_b)
    body = other.get("/api/documents/?low_quality=true").json()
    assert [d["id"] for d in body["results"]] == [str(theirs.pk)]
    assert other.get(f"/api/documents/{poor.pk}/").status_code == 404
    assert other.get("/api/documents/?low_quality=true&tenant=acme").json()["results"] == []


@pytest.mark.parametrize("value", ["", "maybe"])
def test_a_bad_low_quality_value_is_a_400_naming_it(personas, api_for, value):
    response = api_for(personas.staff_a).get(f"/api/documents/?low_quality={value}")
    assert response.status_code == 400
    assert "low_quality" in response.content.decode()


def test_the_schema_documents_the_quality_object_and_the_filter(personas, api_for):
    schema = api_for(personas.staff_a).get("/api/schema/?format=json").json()
    quality = schema["components"]["schemas"]["Quality"]
    assert set(quality["properties"]) >= {
        "low_quality",
        "ocr_share",
        "mean_confidence",
        "flagged_pages",
    }
    parameters = schema["paths"]["/api/documents/"]["get"]["parameters"]
    assert "low_quality" in {p["name"] for p in parameters}
