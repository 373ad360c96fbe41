"""Scoped reads (documents/selectors.py): the tenant rule is written once, here."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from documents import selectors
from documents.models import Document, Status, Tenant
from tests.factories import make_document

pytestmark = pytest.mark.django_db


def test_each_persona_sees_exactly_its_tenants(personas):
    assert list(selectors.tenants_for_user(personas.staff_a)) == [personas.tenant_a]
    assert list(selectors.tenants_for_user(personas.owner_b)) == [personas.tenant_b]
    assert list(selectors.tenants_for_user(personas.outsider)) == []
    assert list(selectors.tenants_for_user(AnonymousUser())) == []
    assert set(selectors.tenants_for_user(personas.superuser)) == set(Tenant.objects.all())


def test_an_inactive_member_sees_nothing(personas):
    personas.staff_a.is_active = False
    personas.staff_a.save()
    make_document(personas.tenant_a)
    assert not selectors.documents_for_user(personas.staff_a).exists()


def test_documents_and_memberships_follow_the_tenants(personas):
    mine = make_document(personas.tenant_a)
    theirs = make_document(personas.tenant_b)
    assert list(selectors.documents_for_user(personas.staff_a)) == [mine]
    assert set(selectors.documents_for_user(personas.superuser)) == {mine, theirs}
    members = selectors.memberships_for_user(personas.staff_a)
    assert {m.tenant for m in members} == {personas.tenant_a} and members.count() == 2


def test_progress_ignores_other_tenants_and_malformed_ids(personas):
    mine = make_document(personas.tenant_a, chunks_total=10, chunks_done=5)
    theirs = make_document(personas.tenant_b)
    rows = selectors.documents_progress(
        user=personas.staff_a, ids=[str(mine.pk), str(theirs.pk), "not-a-uuid", str(uuid.uuid4())]
    )
    assert [row["id"] for row in rows] == [str(mine.pk)]
    assert rows[0]["percent"] == 75 and rows[0]["status_label"] == "Processing"


def test_status_counts_per_tenant_include_tenants_with_no_documents(personas):
    make_document(personas.tenant_a, status=Status.COMPLETED)
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    rows = selectors.status_counts_by_tenant(Document.objects.all(), Tenant.objects.all())
    assert rows == [
        ("Acme", {"processing": 0, "completed": 1, "failed": 1}),
        ("Globex", {"processing": 0, "completed": 0, "failed": 0}),
    ]


def test_failures_are_counted_by_kind_largest_first_with_their_labels(personas):
    for kind in ("corrupt", "encrypted", "encrypted"):
        make_document(personas.tenant_a, status=Status.FAILED, failure_kind=kind)
    make_document(personas.tenant_a, status=Status.COMPLETED)
    assert selectors.failures_by_kind(Document.objects.all()) == [
        ("Encrypted", 2),
        ("Corrupt or truncated file", 1),
    ]


def test_the_dashboard_counts_only_the_users_documents_per_hour(personas):
    now = timezone.now()
    for hours in (0, 0, 5):
        make_document(
            personas.tenant_a,
            status=Status.COMPLETED,
            finished_at=now - timedelta(hours=hours),
            pages_total=3,
        )
    make_document(personas.tenant_b, status=Status.COMPLETED, finished_at=now, pages_total=50)
    figures = selectors.dashboard_figures(user=personas.staff_a, now=now)
    assert len(figures.hourly_week) == 168 and len(figures.hourly_day) == 24
    assert sum(n for _, n, _ in figures.hourly_day) == 3
    assert figures.hourly_day[-1][1:] == (2, 6)
    assert [name for name, _ in figures.status_by_tenant] == ["Acme"]
