"""GET /api/audit/: the audit trail, scoped to the caller's tenants, filterable, paginated."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from documents import services
from documents.models import Document, Status
from tests.doubles.gemini import fake_vector
from tests.factories import make_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def actions(personas, isolated_queue):
    a = make_document(personas.tenant_a, status=Status.COMPLETED)
    a2 = make_document(personas.tenant_a, n=1, status=Status.COMPLETED)
    b = make_document(personas.tenant_b, status=Status.COMPLETED)
    services.documents_reprocess(
        queryset=Document.objects.all(), actor=personas.superuser, source="admin"
    )
    services.documents_cancel(
        queryset=Document.objects.filter(pk=a2.pk), actor=personas.staff_a, source="admin"
    )
    return a, a2, b


def test_staff_see_only_their_tenants_entries(personas, api_for, actions):
    a, a2, b = actions
    body = api_for(personas.staff_b).get("/api/audit/").json()
    assert body["count"] == 1
    [entry] = body["results"]
    assert entry["object_ids"] == [str(b.pk)] and entry["tenant"] == "Globex"
    assert entry["action"] == "reprocess" and entry["source"] == "admin"
    assert entry["actor"] == personas.superuser.username
    mine = api_for(personas.staff_a).get("/api/audit/").json()
    assert [e["action"] for e in mine["results"]] == ["cancel", "reprocess"]
    assert api_for(personas.outsider).get("/api/audit/").json()["count"] == 0


def test_entries_filter_by_document_and_action(personas, api_for, actions):
    a, a2, b = actions
    client = api_for(personas.owner_a)
    naming = client.get("/api/audit/", {"document": str(a2.pk)}).json()["results"]
    assert [e["action"] for e in naming] == ["cancel", "reprocess"]
    cancels = client.get("/api/audit/", {"action": "cancel"}).json()["results"]
    assert [e["object_ids"] for e in cancels] == [[str(a2.pk)]]


def test_another_tenants_document_id_finds_nothing(personas, api_for, actions):
    a, a2, b = actions
    body = api_for(personas.staff_a).get("/api/audit/", {"document": str(b.pk)}).json()
    assert body["count"] == 0


def test_a_bad_filter_is_a_400_with_a_reason(personas, api_for, actions):
    client = api_for(personas.staff_a)
    assert client.get("/api/audit/", {"document": "nope"}).status_code == 400
    response = client.get("/api/audit/", {"action": "explode"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == 'action: "explode" is not a valid choice.'


def test_the_audit_list_needs_credentials(client):
    assert client.get("/api/audit/").status_code == 401


def test_a_reconciliation_of_one_tenant_is_not_shown_to_another_tenants_staff(
    personas, api_for, search_backends, isolated_queue
):
    search_backends.seed(
        personas.tenant_a.vector_namespace,
        [("legacy-import-17", fake_vector("legacy", "RETRIEVAL_DOCUMENT", 768), {})],
    )
    call_command("reconcile", "--tenant", "acme", stdout=StringIO(), stderr=StringIO())
    [entry] = (
        api_for(personas.staff_a).get("/api/audit/", {"action": "reconcile"}).json()["results"]
    )
    assert (entry["tenant"], entry["source"]) == ("Acme", "command")
    assert entry["object_ids"] == [str(personas.tenant_a.pk)]
    assert entry["details"]["outcome"] == "drift" and entry["details"]["orphans"] == 1
    for outsider in (personas.staff_b, personas.owner_b):
        theirs = api_for(outsider).get("/api/audit/").json()
        assert theirs["count"] == 0 and theirs["results"] == []
        filtered = api_for(outsider).get("/api/audit/", {"action": "reconcile"}).json()
        assert filtered["count"] == 0
