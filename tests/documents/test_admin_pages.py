"""The document page, its chunks page, the search page and the dashboard: what they show and
that a staff member of another tenant sees none of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from documents.models import Chunk, Status
from tests.factories import make_chunks, make_document

pytestmark = pytest.mark.django_db

SEARCH = reverse("admin:documents_document_search")
DASHBOARD = reverse("admin:documents_document_dashboard")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def change_url(doc):
    return reverse("admin:documents_document_change", args=[doc.pk])


def chunks_url(doc):
    return reverse("admin:documents_document_chunks", args=[doc.pk])


@pytest.fixture
def failed_document(personas):
    return make_document(
        personas.tenant_a,
        title="Contract <b>draft</b>",
        status=Status.FAILED,
        stage="embedding",
        failure_kind="unavailable",
        failure_message="The embedding service did not answer; it will be retried.",
        attempts=2,
        attempt_log=[
            {
                "at": "2025-01-01T10:00:00Z",
                "stage": "embedding",
                "kind": "rate_limited",
                "message": "Rate limited by the provider.",
            },
            {
                "at": "2025-01-01T10:00:04Z",
                "stage": "embedding",
                "kind": "unavailable",
                "message": "The embedding service did not answer; it will be retried.",
            },
        ],
        stage_timings={
            "extracting": {"started": "2025-01-01T09:59:58Z", "seconds": 1.25},
            "downloading": {"started": "2025-01-01T09:59:57Z", "seconds": 0.5},
            "embedding": {"started": "2025-01-01T10:00:00Z"},
        },
        last_task_id="task-123",
        vector_count=7,
        chunk_count=3,
        pages_total=2,
    )


def test_the_document_page_shows_facts_timeline_failure_and_attempts(
    client, personas, failed_document
):
    client.force_login(personas.staff_a)
    response = client.get(change_url(failed_document))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Contract &lt;b&gt;draft&lt;/b&gt;" in body  # escaped, never marked safe
    assert failed_document.sha256 in body and "1000\xa0bytes" in body
    # the timeline is in pipeline order with each stage's time
    timeline = body[body.index('class="doc-timeline"') :]
    assert (
        timeline.index("downloading") < timeline.index("extracting") < timeline.index("embedding")
    )
    assert "1.25 s" in timeline and "0.50 s" in timeline and "running" in timeline
    assert "Service unavailable" in body
    assert "Rate limited by the provider." in body
    download = reverse("admin:documents_document_download", args=[failed_document.pk])
    assert f'<a href="{download}" class="doc-download">' in body
    assert chunks_url(failed_document) in body and "View the 3 chunks" in body
    # task results are not tenant-scoped: a tenant's staff member gets no link to them
    assert "taskresult" not in body
    # only the title is editable
    assert 'name="title"' in body and 'name="failure_message"' not in body


def test_a_superuser_gets_links_to_the_documents_task_results(client, personas, failed_document):
    client.force_login(personas.superuser)
    body = client.get(change_url(failed_document)).content.decode()
    results = reverse("admin:django_celery_results_taskresult_changelist")
    assert f"{results}?task_id=task-123" in body
    assert f"{results}?q={failed_document.pk}" in body
    assert client.get(f"{results}?task_id=task-123").status_code == 200


def test_the_title_can_be_edited_and_nothing_else(client, personas, failed_document):
    client.force_login(personas.staff_a)
    response = client.post(
        change_url(failed_document),
        {"title": "Signed contract", "failure_message": "hacked", "status": "completed"},
    )
    assert response.status_code == 302
    failed_document.refresh_from_db()
    assert failed_document.title == "Signed contract"
    assert failed_document.status == Status.FAILED
    assert failed_document.failure_message.startswith("The embedding service")


def test_another_tenants_document_page_is_not_found_and_cannot_be_changed(
    client, personas, failed_document
):
    client.force_login(personas.staff_b)
    response = client.get(change_url(failed_document))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    client.post(change_url(failed_document), {"title": "Owned"})
    failed_document.refresh_from_db()
    assert failed_document.title == "Contract <b>draft</b>"


def test_the_chunks_page_is_paginated_with_page_spans_and_token_counts(client, personas):
    doc = make_document(
        personas.tenant_a, title="Long one", chunk_count=120, status=Status.COMPLETED
    )
    make_chunks(doc, 120)
    client.force_login(personas.staff_a)
    response = client.get(chunks_url(doc))
    body = response.content.decode()
    assert response.status_code == 200
    assert "120 chunks" in body and "Page 1 of 3" in body
    assert len(response.context["page"].object_list) == 50
    assert "<td>pp. 1–2</td>" in body and "<td>11</td>" in body
    last = client.get(chunks_url(doc), {"page": 3})
    assert [c.index for c in last.context["page"].object_list] == list(range(100, 120))


def test_another_tenants_chunks_page_is_404(client, personas):
    doc = make_document(personas.tenant_a, status=Status.COMPLETED)
    make_chunks(doc, 2)
    client.force_login(personas.staff_b)
    assert client.get(chunks_url(doc)).status_code == 404


# --- search: the production embedder and store, against the Gemini and Pinecone doubles -----
# (the search itself is tested in tests/documents/test_search.py; here: the page)

QUERY = "when do the apples ripen"


def test_search_returns_the_tenants_top_chunks_with_scores_links_and_marked_words(
    client, personas, indexed
):
    mine = make_document(personas.tenant_a, title="Orchard guide", status=Status.COMPLETED)
    other = make_document(personas.tenant_a, title="Pear notes", status=Status.COMPLETED)
    theirs = make_document(personas.tenant_b, title="Globex orchard", status=Status.COMPLETED)
    indexed(mine, ["Intro.", "Apples of Acme <b>ripen</b> in autumn."], like=1, query=QUERY)
    indexed(other, ["Pears of Acme keep well."])
    indexed(theirs, ["Apples of Globex ripen in autumn."], like=0, query=QUERY)
    client.force_login(personas.staff_a)
    response = client.get(SEARCH, {"tenant": personas.tenant_a.pk, "q": QUERY})
    hits = [hit for hit, _ in response.context["hits"]]
    assert hits[0].document_id == str(mine.pk) and hits[0].found_by == "both"
    assert {h.document_id for h in hits} <= {str(mine.pk), str(other.pk)}
    body = response.content.decode()
    assert change_url(mine) in body and "p. 2" in body
    # the chunk's own markup is shown as text; the matched words are marked
    assert "<mark>Apples</mark> of Acme &lt;b&gt;<mark>ripen</mark>&lt;/b&gt; in autumn." in body
    assert "Globex" not in body


def test_search_marks_hits_whose_chunk_comes_from_a_flagged_page(client, personas, indexed):
    poor = make_document(personas.tenant_a, title="Poor scan", status=Status.COMPLETED)
    clean = make_document(personas.tenant_a, title="Clean memo", status=Status.COMPLETED)
    indexed(poor, ["Apples ripen in the scanned orchard."])
    indexed(clean, ["Apples ripen in the typed orchard."])
    Chunk.objects.filter(document=poor).update(low_quality=True)
    client.force_login(personas.staff_a)
    response = client.get(SEARCH, {"tenant": personas.tenant_a.pk, "q": "apples ripen"})
    marks = {hit.document_id: hit.low_quality for hit, _ in response.context["hits"]}
    assert marks == {str(poor.pk): True, str(clean.pk): False}
    assert response.content.decode().count("flagged page</span>") == 1


def test_search_filters_by_status_and_document(client, personas, indexed):
    done = make_document(personas.tenant_a, title="Done", status=Status.COMPLETED)
    failed = make_document(personas.tenant_a, title="Broken", status=Status.FAILED)
    indexed(done, ["Apples ripen in the done orchard."])
    indexed(failed, ["Apples ripen in the broken orchard."])
    client.force_login(personas.staff_a)
    query = {"tenant": personas.tenant_a.pk, "q": "apples ripen"}

    def titles(**filters):
        response = client.get(SEARCH, {**query, **filters})
        assert response.status_code == 200
        return {hit.title for hit, _ in response.context["hits"]}

    assert titles() == {"Done", "Broken"}
    assert titles(status=Status.FAILED) == {"Broken"}
    assert titles(document=str(done.pk)) == {"Done"}
    assert titles(uploaded_to="2000-01-01") == set()


def test_search_refuses_another_tenant_and_ignores_a_namespace_parameter(
    client, personas, indexed, search_backends
):
    theirs = make_document(personas.tenant_b, title="Globex orchard", status=Status.COMPLETED)
    indexed(theirs, ["Apples of Globex ripen."], like=0, query=QUERY)
    client.force_login(personas.staff_a)
    response = client.get(
        SEARCH,
        {
            "tenant": personas.tenant_b.pk,
            "q": QUERY,
            "namespace": personas.tenant_b.vector_namespace,
        },
    )
    assert response.context["hits"] is None
    assert "Select a valid choice" in response.content.decode()
    assert "Globex orchard" not in response.content.decode()
    assert not [r for r in search_backends.requests if r.path == "/query"]


def test_the_search_selector_checks_the_tenant_itself(personas, search_backends):
    from documents.errors import NotAMember
    from documents.search import chunks_search

    with pytest.raises(NotAMember):
        chunks_search(user=personas.staff_a, tenant_id=personas.tenant_b.pk, query=QUERY)


def test_the_search_page_renders_empty(client, personas):
    client.force_login(personas.staff_a)
    response = client.get(SEARCH)
    assert response.status_code == 200 and response.context["hits"] is None
    assert f'<option value="{personas.tenant_a.pk}" selected>' in response.content.decode()


# --- dashboard ------------------------------------------------------------------------------


def test_the_dashboard_shows_the_users_figures_only(client, personas):
    now = timezone.now()
    for i in range(3):
        make_document(
            personas.tenant_a,
            n=i,
            finished_at=now - timedelta(hours=i),
            pages_total=4,
            status=Status.COMPLETED,
        )
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    oldest = make_document(
        personas.tenant_a,
        status=Status.PROCESSING,
        title="Stuck scan",
        queued_at=now - timedelta(hours=5),
    )
    make_document(personas.tenant_a, status=Status.PROCESSING, title="Fresh one")
    make_document(
        personas.tenant_b,
        status=Status.PROCESSING,
        title="Globex ancient",
        queued_at=now - timedelta(days=3),
    )
    make_document(personas.tenant_b, status=Status.FAILED, failure_kind="encrypted")

    client.force_login(personas.staff_a)
    response = client.get(DASHBOARD)
    body = response.content.decode()
    assert response.status_code == 200
    figures = response.context["figures"]
    assert figures.status_by_tenant == [("Acme", {"processing": 2, "completed": 3, "failed": 1})]
    assert figures.failures_by_kind == [("Corrupt or truncated file", 1)]
    assert figures.oldest_processing == oldest
    assert sum(n for _, n, _ in figures.hourly_day) == 3
    assert sum(p for _, _, p in figures.hourly_week) == 12
    assert "Globex" not in body and "Encrypted" not in body
    assert "Stuck scan" in body
    assert (
        body.count('<svg class="doc-chart"') == 2
        and "last 24 hours (3 documents, 12 pages)" in body
    )
    # the broker answered (Redis here): a number, not "unknown"
    health = response.context["health"]
    assert health.queue_length is not None and health.workers is not None
    # beat and results admins are not tenant-scoped: no links for a tenant's staff member
    assert "periodictask" not in body and "taskresult" not in body


def test_a_superuser_dashboard_covers_every_tenant_and_links_beat_and_results(client, personas):
    make_document(personas.tenant_a, status=Status.COMPLETED)
    make_document(personas.tenant_b, status=Status.FAILED, failure_kind="encrypted")
    client.force_login(personas.superuser)
    response = client.get(DASHBOARD)
    names = [name for name, _ in response.context["figures"].status_by_tenant]
    assert names == ["Acme", "Globex"]
    body = response.content.decode()
    assert reverse("admin:django_celery_beat_periodictask_changelist") in body
    assert reverse("admin:django_celery_results_taskresult_changelist") in body


def test_the_dashboard_says_unknown_when_the_broker_does_not_answer(client, personas, monkeypatch):
    # Celery reads the broker URL from this variable before its own configuration. Nothing
    # listens on port 1: the queue probe fails and the page still renders.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    client.force_login(personas.staff_a)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert response.context["health"].queue_length is None
    body = response.content.decode()
    assert '<td id="dash-queue">unknown</td>' in body
