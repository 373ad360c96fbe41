"""The Document change list: scoping, cells, filters, search, the progress endpoint and a
page count that does not grow with the table or the page size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from documents.admin import DocumentAdmin
from documents.admin.paginator import COUNT_CAP, EstimatedCountPaginator
from documents.models import Document, Status
from tests.factories import insert_many_documents_sql, make_document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The personas' passwords are hashed with the production hasher (about 0.5 s per user);
    # these tests log in with force_login, so a fast hasher loses nothing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


CHANGELIST = reverse("admin:documents_document_changelist")
PROGRESS = reverse("admin:documents_document_progress")


def login(client, user):
    client.force_login(user)
    return client


def test_staff_see_only_their_tenants_documents(client, personas):
    make_document(personas.tenant_a, title="Acme secret plan", status=Status.COMPLETED)
    make_document(personas.tenant_b, title="Globex quarterly", status=Status.COMPLETED)
    body = login(client, personas.staff_b).get(CHANGELIST).content.decode()
    assert "Globex quarterly" in body
    assert "Acme secret plan" not in body
    # the tenant filter lists only the user's tenants
    assert f"?tenant={personas.tenant_b.pk}" in body
    assert f"?tenant={personas.tenant_a.pk}" not in body


def test_a_superuser_sees_every_tenant(client, personas):
    make_document(personas.tenant_a, title="Acme secret plan", status=Status.COMPLETED)
    make_document(personas.tenant_b, title="Globex quarterly", status=Status.COMPLETED)
    body = login(client, personas.superuser).get(CHANGELIST).content.decode()
    assert "Acme secret plan" in body and "Globex quarterly" in body


def test_a_crafted_filter_for_another_tenant_shows_nothing(client, personas):
    make_document(personas.tenant_a, title="Acme secret plan", status=Status.COMPLETED)
    response = login(client, personas.staff_b).get(CHANGELIST, {"tenant": personas.tenant_a.pk})
    assert "Acme secret plan" not in response.content.decode()
    assert list(response.context["cl"].result_list) == []


def test_the_list_has_badge_stage_progress_cells_and_the_refresh_script(client, personas):
    doc = make_document(
        personas.tenant_a,
        status=Status.PROCESSING,
        stage="extracting",
        pages_total=4,
        pages_done=2,
        title="Half read",
    )
    body = login(client, personas.staff_a).get(CHANGELIST).content.decode()
    assert f'data-doc-id="{doc.pk}" data-doc-status="processing"' in body
    assert 'class="doc-badge doc-badge--processing">Processing<' in body
    assert f'<span class="doc-stage" data-doc-id="{doc.pk}">Extracting</span>' in body
    assert '<progress max="100" value="25">' in body
    assert "documents/admin_progress.js" in body
    assert f'data-progress-url="{PROGRESS}"' in body
    assert reverse("admin:documents_document_upload") in body


@pytest.mark.parametrize(
    ("query", "field"),
    [("Budget", "title"), ("budget-2024.pdf", "original_filename"), ("sha", "sha256")],
)
def test_search_finds_by_title_file_name_and_sha256(client, personas, query, field):
    wanted = make_document(
        personas.tenant_a,
        title="Budget 2024",
        original_filename="budget-2024.pdf",
        sha256="a" * 64,
        status=Status.COMPLETED,
    )
    make_document(
        personas.tenant_a,
        title="Other",
        original_filename="other.txt",
        sha256="b" * 64,
        status=Status.COMPLETED,
    )
    make_document(
        personas.tenant_b,
        title="Budget 2024 Globex",
        original_filename="budget-2024.pdf",
        sha256="a" * 64,
        status=Status.COMPLETED,
    )
    q = "a" * 64 if field == "sha256" else query
    response = login(client, personas.staff_a).get(CHANGELIST, {"q": q})
    assert [d.pk for d in response.context["cl"].result_list] == [wanted.pk]


def test_filters_by_status_and_failure_kind(client, personas):
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="encrypted")
    make_document(personas.tenant_a, status=Status.COMPLETED)
    response = login(client, personas.staff_a).get(
        CHANGELIST, {"status__exact": "failed", "failure_kind__exact": "corrupt"}
    )
    assert [d.pk for d in response.context["cl"].result_list] == [failed.pk]


def test_the_progress_endpoint_answers_for_visible_documents_only(client, personas):
    mine = make_document(
        personas.tenant_a,
        status=Status.PROCESSING,
        stage="embedding",
        chunks_total=10,
        chunks_done=5,
    )
    theirs = make_document(personas.tenant_b, status=Status.PROCESSING)
    response = login(client, personas.staff_a).get(
        PROGRESS, {"ids": f"{mine.pk},{theirs.pk},not-a-uuid"}
    )
    assert response.status_code == 200
    data = response.json()
    assert list(data["documents"]) == [str(mine.pk)]
    assert data["documents"][str(mine.pk)] == {
        "id": str(mine.pk),
        "status": "processing",
        "status_label": "Processing",
        "stage": "embedding",
        "stage_label": "Embedding",
        "percent": 75,
        "chunk_count": 0,
        "failure_label": "-",
    }
    assert data["processing"] is True


def test_the_progress_endpoint_says_when_nothing_is_processing(client, personas):
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    data = login(client, personas.staff_a).get(PROGRESS, {"ids": str(done.pk)}).json()
    assert data["processing"] is False
    assert data["documents"][str(done.pk)]["percent"] == 100


def test_the_progress_endpoint_needs_a_staff_login(client, personas):
    doc = make_document(personas.tenant_a, status=Status.COMPLETED)
    response = client.get(PROGRESS, {"ids": str(doc.pk)})
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- a table of 100,000 documents ------------------------------------------------------------


@pytest.fixture
def hundred_thousand(personas):
    if connection.vendor != "postgresql":
        pytest.skip("the planner estimate is PostgreSQL's")
    insert_many_documents_sql(personas.tenant_a, 60_000)
    insert_many_documents_sql(personas.tenant_b, 40_000)
    with connection.cursor() as cursor:
        # ANALYZE counts the rows this (test) transaction inserted, like autovacuum would
        # once they are committed.
        cursor.execute("ANALYZE documents_document")
    return personas


def _counts(queries):
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_the_list_of_100k_documents_opens_in_the_same_queries_at_any_page_size(
    client, hundred_thousand, django_assert_max_num_queries, monkeypatch
):
    personas = hundred_thousand
    login(client, personas.superuser)
    admin_instance = DocumentAdmin  # list_per_page is read from the registered instance
    from django.contrib import admin

    registered = admin.site._registry[Document]
    assert isinstance(registered, admin_instance)
    seen = {}
    for per_page in (20, 200):
        monkeypatch.setattr(registered, "list_per_page", per_page)
        with django_assert_max_num_queries(8) as captured:
            response = client.get(CHANGELIST, {"p": 3})
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == per_page
        seen[per_page] = len(captured.captured_queries)
        # the unfiltered superuser list never counts the table
        assert _counts(captured.captured_queries) == []
        assert "reltuples" in " ".join(q["sql"] for q in captured.captured_queries)
    assert seen[20] == seen[200]

    # a tenant member's list is filtered: its count is capped, so it stops early
    login(client, personas.staff_a)
    for per_page in (20, 200):
        monkeypatch.setattr(registered, "list_per_page", per_page)
        with django_assert_max_num_queries(9) as captured:
            response = client.get(CHANGELIST)
        assert len(response.context["cl"].result_list) == per_page
        counts = _counts(captured.captured_queries)
        assert len(counts) == 1 and f"LIMIT {COUNT_CAP}" in counts[0]
        # capped at COUNT_CAP although Acme has 60,000 documents
        assert response.context["cl"].result_count == COUNT_CAP
        assert all(d.tenant_id == personas.tenant_a.pk for d in response.context["cl"].result_list)


def test_the_paginator_estimates_an_unfiltered_table_and_counts_a_small_or_filtered_one(
    personas,
):
    if connection.vendor != "postgresql":
        assert EstimatedCountPaginator(Document.objects.all(), 10).count == 0
        return
    insert_many_documents_sql(personas.tenant_a, 12_000)
    insert_many_documents_sql(personas.tenant_b, 30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_document")
    estimate = EstimatedCountPaginator(Document.objects.all(), 50).count
    assert 11_000 <= estimate <= 13_000  # the planner's figure, not an exact count
    # filtered: an exact count below the cap
    filtered = Document.objects.filter(tenant=personas.tenant_b)
    assert EstimatedCountPaginator(filtered, 50).count == 30
