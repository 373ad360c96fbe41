"""What the admin and the API show of a document's vectors and of the reconciliations: a
pending purge says so, the embedding cache's share, the last reconciliation per tenant, and
the tenant actions that queue one."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from documents import broker
from documents.models import Reconciliation, Status, VectorState
from tests.factories import make_document

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:documents_document_dashboard")
TENANTS = reverse("admin:documents_tenant_changelist")


def change_url(doc):
    return reverse("admin:documents_document_change", args=[doc.pk])


def test_a_pending_purge_is_shown_as_pending_with_the_count_before_it(client, personas):
    document = make_document(
        personas.tenant_a,
        status=Status.COMPLETED,
        chunk_count=12,
        vector_count=12,
        vector_high=14,
        vector_lsn=41,
        vector_state=VectorState.PURGE_PENDING,
        chunks_from_cache=5,
    )
    client.force_login(personas.staff_a)
    body = client.get(change_url(document)).content.decode()
    assert "Purge pending" in body and "12 (until the index shows the delete)" in body
    assert "chunk indexes 0 to 13" in body and "41" in body
    assert "5 of 12 chunks came from the cache" in body
    listed = client.get(
        reverse("admin:documents_document_changelist") + "?vector_state=purge_pending"
    )
    assert str(document.pk) in listed.content.decode()


def test_the_api_says_what_is_known_of_the_vectors(personas, api_for):
    document = make_document(
        personas.tenant_a,
        status=Status.COMPLETED,
        vector_count=3,
        vector_state=VectorState.PURGE_PENDING,
        chunks_from_cache=2,
    )
    body = api_for(personas.staff_a).get(f"/api/documents/{document.pk}/").json()
    assert body["vectors"] == {
        "state": "purge_pending",
        "label": "Purge pending",
        "count": 3,
        "from_cache": 2,
    }


def report(tenant, **fields) -> Reconciliation:
    defaults = {"ended_at": timezone.now(), "outcome": Reconciliation.Outcome.DRIFT}
    return Reconciliation.objects.create(tenant=tenant, **{**defaults, **fields})


def test_the_dashboard_shows_each_tenants_last_reconciliation_with_counts(client, personas):
    report(personas.tenant_a, started_at=timezone.now().replace(year=2020), listed=1)
    report(
        personas.tenant_a,
        listed=120,
        expected=118,
        orphans_deleted=3,
        orphans_stale=1,
        orphans_foreign=2,
        wrong_namespace=1,
        missing=7,
        documents_missing=2,
    )
    report(personas.tenant_b, listed=999)
    client.force_login(personas.staff_a)
    body = client.get(DASHBOARD).content.decode()
    section = body[body.index('id="dash-reconciliation"') :]
    section = section[: section.index("</table>")]
    assert "Acme" in section and "Drift found" in section
    assert "<td>120</td><td>118</td>" in section and "6 (3 / 1 / 2)" in section
    assert "7 in 2 documents" in section
    assert "Globex" not in section and "999" not in section  # another tenant's report


def test_a_tenant_never_reconciled_says_so(client, personas):
    client.force_login(personas.superuser)
    body = client.get(DASHBOARD).content.decode()
    assert body.count("never reconciled") == 2


def test_the_tenant_actions_queue_a_reconciliation_per_tenant(
    client, personas, isolated_queue, django_capture_on_commit_callbacks
):
    client.force_login(personas.superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            TENANTS,
            {
                "action": "reconcile_and_repair_vectors",
                "_selected_action": [personas.tenant_a.pk, personas.tenant_b.pk],
            },
            follow=True,
        )
    assert "2 tenants queued for reconciliation and repair" in response.content.decode()
    assert broker.queue_length(isolated_queue) == 2
    report(personas.tenant_a, outcome=Reconciliation.Outcome.REPAIRED)
    listing = client.get(TENANTS).content.decode()
    assert "Drift repaired (" in listing and "never" in listing


def test_a_tenants_staff_member_may_reconcile_but_not_repair(
    client, personas, isolated_queue, django_capture_on_commit_callbacks
):
    client.force_login(personas.staff_a)
    page = client.get(TENANTS).content.decode()
    assert "reconcile_vectors" in page and "reconcile_and_repair_vectors" not in page
    with django_capture_on_commit_callbacks(execute=True):
        # another tenant's row is not in the scoped queryset: nothing is queued for it
        client.post(
            TENANTS,
            {"action": "reconcile_vectors", "_selected_action": [personas.tenant_b.pk]},
            follow=True,
        )
        assert broker.queue_length(isolated_queue) == 0
        response = client.post(
            TENANTS,
            {"action": "reconcile_vectors", "_selected_action": [personas.tenant_a.pk]},
            follow=True,
        )
    assert "1 tenant queued for reconciliation;" in response.content.decode()
    assert broker.queue_length(isolated_queue) == 1
