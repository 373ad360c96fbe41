"""The audit trail in the admin: scoped like everything else, and never editable, by anyone.
Tenant and membership changes made in the admin are recorded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from documents import services
from documents.models import AuditEntry, Document, Membership, Status, Tenant
from tests.factories import UserFactory, make_document

pytestmark = pytest.mark.django_db

LIST = reverse("admin:documents_auditentry_changelist")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def entries(personas, isolated_queue):
    a = make_document(personas.tenant_a, status=Status.COMPLETED)
    b = make_document(personas.tenant_b, status=Status.COMPLETED)
    services.documents_reprocess(
        queryset=Document.objects.all(), actor=personas.superuser, source="admin"
    )
    return (
        AuditEntry.objects.get(tenant=personas.tenant_a),
        AuditEntry.objects.get(tenant=personas.tenant_b),
        a,
        b,
    )


def test_staff_list_only_their_tenants_entries(client, personas, entries):
    mine, theirs, a, b = entries
    client.force_login(personas.staff_a)
    html = client.get(LIST).content.decode()
    assert reverse("admin:documents_auditentry_change", args=[mine.pk]) in html
    assert reverse("admin:documents_auditentry_change", args=[theirs.pk]) not in html
    # Another tenant's entry by its URL: not found, redirected to the admin index.
    response = client.get(reverse("admin:documents_auditentry_change", args=[theirs.pk]))
    assert response.status_code == 302


def test_the_search_box_finds_the_entries_naming_a_document(client, personas, entries):
    mine, theirs, a, b = entries
    client.force_login(personas.superuser)
    html = client.get(LIST, {"q": str(b.pk)}).content.decode()
    assert reverse("admin:documents_auditentry_change", args=[theirs.pk]) in html
    assert reverse("admin:documents_auditentry_change", args=[mine.pk]) not in html


@pytest.mark.parametrize("who", ["staff_a", "superuser"])
def test_nobody_can_add_change_or_delete_an_entry(client, personas, entries, who):
    mine = entries[0]
    client.force_login(getattr(personas, who))
    change = reverse("admin:documents_auditentry_change", args=[mine.pk])
    page = client.get(change).content.decode()
    assert 'name="_save"' not in page  # a read-only view
    assert client.post(change, {"action": "x"}).status_code == 403
    assert client.get(reverse("admin:documents_auditentry_add")).status_code == 403
    delete = reverse("admin:documents_auditentry_delete", args=[mine.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        LIST, {"action": "delete_selected", "_selected_action": [mine.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.filter(pk=mine.pk).exists()


def test_a_superuser_setting_a_tenants_limits_is_recorded(client, personas):
    tenant = personas.tenant_a
    client.force_login(personas.superuser)
    response = client.post(
        reverse("admin:documents_tenant_change", args=[tenant.pk]),
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "max_pages_per_document": "300",
            "max_cost_per_document": "0.5",
            "over_limit_action": "refuse",
        },
    )
    assert response.status_code == 302, response.content
    tenant.refresh_from_db()
    assert (tenant.max_pages_per_document, tenant.over_limit_action) == (300, "refuse")
    entry = AuditEntry.objects.get(action="tenant.edit")
    assert entry.details == {
        "max_pages_per_document": [None, 300],
        "max_cost_per_document": [None, "0.5"],
        "over_limit_action": ["hold", "refuse"],
    }
    assert entry.actor == personas.superuser and entry.tenant == tenant


def test_staff_cannot_change_their_tenants_limits(client, personas):
    client.force_login(personas.owner_a)
    url = reverse("admin:documents_tenant_change", args=[personas.tenant_a.pk])
    client.post(url, {"name": "Acme", "slug": "acme", "max_pages_per_document": "1"})
    assert Tenant.objects.get(pk=personas.tenant_a.pk).max_pages_per_document is None


def test_adding_and_removing_a_member_is_recorded(client, personas):
    newcomer = UserFactory()
    client.force_login(personas.superuser)
    client.post(
        reverse("admin:documents_membership_add"),
        {"user": newcomer.pk, "tenant": personas.tenant_a.pk, "role": "staff"},
    )
    membership = Membership.objects.get(user=newcomer)
    client.post(reverse("admin:documents_membership_delete", args=[membership.pk]), {"post": "yes"})
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "details", "tenant"))
    assert rows == [
        ("membership.add", {"user": newcomer.username, "role": "staff"}, personas.tenant_a.pk),
        ("membership.remove", {"user": newcomer.username, "role": "staff"}, personas.tenant_a.pk),
    ]
