"""Scoped reads. Every queryset the admin or the API shows goes through these functions, so
the tenant rule is written once: superusers see every tenant, everyone else only the tenants
they are members of."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum, TextField
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone

from documents.errors import InvalidUpload, NotAMember
from documents.models import (
    FAILURE_KIND_CHOICES,
    AuditEntry,
    Document,
    Membership,
    Reconciliation,
    Status,
    Tenant,
)


def tenants_for_user(user) -> QuerySet[Tenant]:
    if not user or not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user).distinct()


def tenant_of_caller(*, user, tenant_slug: str | None, cannot: str, parameter: str) -> Tenant:
    """The tenant a caller (an upload, an API search) acts in: the one named, if a member,
    else the caller's only tenant. A superuser sees every tenant but, without naming one,
    acts only in their own. ``cannot`` and ``parameter`` finish the refusals' sentences."""
    tenants = tenants_for_user(user)
    if tenant_slug:
        tenant = tenants.filter(slug=tenant_slug).first()
        if tenant is None:
            raise NotAMember(f"You are not a member of a tenant called {tenant_slug!r}.")
        return tenant
    mine = list((tenants.filter(memberships__user=user) if user.is_superuser else tenants)[:2])
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise NotAMember(f"You are not a member of any tenant, so {cannot}.")
    raise InvalidUpload(f"You belong to several tenants: say which one with the {parameter}.")


def documents_for_user(user) -> QuerySet[Document]:
    if user and user.is_active and user.is_superuser:
        return Document.objects.all()
    return Document.objects.filter(tenant__in=tenants_for_user(user))


def memberships_for_user(user) -> QuerySet[Membership]:
    if user and user.is_active and user.is_superuser:
        return Membership.objects.all()
    return Membership.objects.filter(tenant__in=tenants_for_user(user))


def audit_entries_for_user(user) -> QuerySet[AuditEntry]:
    """Superusers see every entry (those of deleted tenants and system-wide ones too); staff
    see the entries of their tenants."""
    if user and user.is_active and user.is_superuser:
        return AuditEntry.objects.all()
    return AuditEntry.objects.filter(tenant__in=tenants_for_user(user))


def audit_entries_naming(entries: QuerySet[AuditEntry], document_id) -> QuerySet[AuditEntry]:
    """The entries whose ids include ``document_id``."""
    pk = str(document_id)
    if connection.vendor == "postgresql":
        # jsonb containment, answered by the GIN index of migration 0400.
        return entries.filter(object_ids__contains=[pk])
    # SQLite has no JSON containment lookup; a UUID's text cannot occur by accident.
    return entries.annotate(ids_text=Cast("object_ids", TextField())).filter(
        ids_text__contains=f'"{pk}"'
    )


def document_history(document: Document) -> QuerySet[AuditEntry]:
    """The entries naming a document. Its tenant's only: whoever may see the document sees
    them, and an action across tenants recorded each tenant's ids in that tenant's entry."""
    return audit_entries_naming(
        AuditEntry.objects.filter(tenant_id=document.tenant_id), document.pk
    )


def near_duplicates(document: Document) -> QuerySet[Document]:
    """Other documents of the same tenant with the same extracted text (fingerprint); never
    another tenant's."""
    if not document.text_fingerprint:
        return Document.objects.none()
    return (
        Document.objects.filter(
            tenant_id=document.tenant_id, text_fingerprint=document.text_fingerprint
        )
        .exclude(pk=document.pk)
        .order_by("created_at")
    )


# --- admin back-office reads (issue 4) -------------------------------------------------------


def documents_progress(*, user, ids) -> list[dict]:
    """Status, stage and progress of the given documents the user may see (others are ignored,
    so a crafted id list reveals nothing). For the change list's auto-refresh."""

    valid = []
    for raw in ids:
        try:
            valid.append(uuid.UUID(str(raw)))
        except ValueError:
            continue
    rows = (
        documents_for_user(user)
        .filter(pk__in=valid)
        .only(
            "id",
            "status",
            "stage",
            "pages_total",
            "pages_done",
            "chunks_total",
            "chunks_done",
            "chunk_count",
            "failure_kind",
        )
    )
    return [
        {
            "id": str(doc.pk),
            "status": doc.status,
            "status_label": doc.get_status_display(),
            "stage": doc.stage,
            "stage_label": doc.get_stage_display(),
            "percent": doc.progress_percent,
            "chunk_count": doc.chunk_count,
            "failure_label": doc.get_failure_kind_display() or "-",
        }
        for doc in rows
    ]


def status_counts_by_tenant(documents: QuerySet[Document], tenants: QuerySet[Tenant]) -> list:
    """[(tenant name, {status: count})] for each of ``tenants``, in name order."""
    names = {t.pk: t.name for t in tenants}
    counts: dict = {pk: {} for pk in names}
    for row in documents.values("tenant_id", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["tenant_id"], {})[row["status"]] = row["n"]
    return [
        (names.get(pk, "?"), {s: counts[pk].get(s, 0) for s in Status.values})
        for pk in sorted(counts, key=lambda pk: names.get(pk, ""))
    ]


def failures_by_kind(documents: QuerySet[Document]) -> list:
    """[(failure kind label, count)] of the failed documents, largest first."""
    labels = dict(FAILURE_KIND_CHOICES)
    return [
        (labels.get(row["failure_kind"], row["failure_kind"] or "unknown"), row["n"])
        for row in documents.filter(status=Status.FAILED)
        .values("failure_kind")
        .annotate(n=Count("id"))
        .order_by("-n")
    ]


@dataclass(frozen=True)
class DashboardFigures:
    # [(tenant name, {status: count})], one row per tenant the user sees
    status_by_tenant: list
    # [(hour start, documents, pages)] for the last 24 hours and the last 7 days, oldest first
    hourly_day: list
    hourly_week: list
    # [(failure kind label, count)], largest first
    failures_by_kind: list
    oldest_processing: Document | None


def dashboard_figures(*, user, now=None) -> DashboardFigures:
    """The dashboard's figures, every one computed on the user's documents only."""

    now = now or timezone.now()
    documents = documents_for_user(user)

    status_by_tenant = status_counts_by_tenant(documents, tenants_for_user(user))

    hour = now.replace(minute=0, second=0, microsecond=0)
    week_start = hour - timedelta(hours=167)
    per_hour = {
        row["hour"]: (row["n"], row["pages"] or 0)
        for row in documents.filter(status=Status.COMPLETED, finished_at__gte=week_start)
        .annotate(hour=TruncHour("finished_at"))
        .values("hour")
        .annotate(n=Count("id"), pages=Sum("pages_total"))
        .order_by()
    }
    week = []
    for i in range(168):
        start = week_start + timedelta(hours=i)
        n, pages = per_hour.get(start, (0, 0))
        week.append((start, n, pages))

    failures = failures_by_kind(documents)
    oldest = (
        documents.filter(status=Status.PROCESSING)
        .select_related("tenant")
        .order_by("queued_at")
        .first()
    )
    return DashboardFigures(
        status_by_tenant=status_by_tenant,
        hourly_day=week[-24:],
        hourly_week=week,
        failures_by_kind=failures,
        oldest_processing=oldest,
    )


def last_reconciliations(user) -> list[tuple[Tenant, Reconciliation | None]]:
    """Each tenant the user sees, with its latest reconciliation report (or None)."""
    latest = (
        Reconciliation.objects.filter(tenant=OuterRef("pk")).order_by("-started_at").values("pk")
    )
    tenants = list(
        tenants_for_user(user).annotate(last_report=Subquery(latest[:1])).order_by("name")
    )
    reports = Reconciliation.objects.in_bulk([t.last_report for t in tenants if t.last_report])
    return [(tenant, reports.get(tenant.last_report)) for tenant in tenants]
