"""Scoped reads. Every queryset the admin or the API shows goes through these functions, so
the tenant rule is written once: superusers see every tenant, everyone else only the tenants
they are members of."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from documents import broker
from documents.clients import get_embedder, get_vector_store
from documents.errors import InvalidUpload, NotAMember
from documents.models import FAILURE_KIND_CHOICES, Chunk, Document, Membership, Status, Tenant
from documents.pipeline.vectors import search


def tenants_for_user(user) -> QuerySet[Tenant]:
    if not user or not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user).distinct()


def documents_for_user(user) -> QuerySet[Document]:
    if user and user.is_active and user.is_superuser:
        return Document.objects.all()
    return Document.objects.filter(tenant__in=tenants_for_user(user))


def chunks_for_user(user) -> QuerySet[Chunk]:
    if user and user.is_active and user.is_superuser:
        return Chunk.objects.all()
    return Chunk.objects.filter(document__tenant__in=tenants_for_user(user))


def memberships_for_user(user) -> QuerySet[Membership]:
    if user and user.is_active and user.is_superuser:
        return Membership.objects.all()
    return Membership.objects.filter(tenant__in=tenants_for_user(user))


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


@dataclass(frozen=True)
class SearchHit:
    score: float
    document_id: str
    title: str
    chunk_index: int | None
    page_start: int | None
    page_end: int | None
    text: str
    # False when the vector outlived its document (deleted since): shown without a link.
    document_exists: bool


def chunks_search(*, user, tenant_id, query: str, top_k: int = 10) -> list[SearchHit]:
    """The top chunks of one tenant for a query, through the pipeline's embedder and store.

    The namespace is read from the tenant row, never from the request; the tenant must be one
    of the user's (checked here, not only in the form)."""

    tenant = tenants_for_user(user).filter(pk=tenant_id).first()
    if tenant is None:
        raise NotAMember("You are not a member of that tenant.")
    query = (query or "").strip()
    if not query:
        raise InvalidUpload("Type something to search for.")
    vector = get_embedder().embed_query(query)
    matches = search(
        get_vector_store(), namespace=tenant.vector_namespace, vector=vector, top_k=top_k
    )
    ids = {str(m.metadata.get("document_id") or m.id.split("#", 1)[0]) for m in matches}
    existing = {
        str(pk)
        for pk in documents_for_user(user)
        .filter(tenant=tenant, pk__in=[i for i in ids if _is_uuid(i)])
        .values_list("pk", flat=True)
    }
    hits = []
    for match in matches:
        meta = match.metadata or {}
        document_id = str(meta.get("document_id") or match.id.split("#", 1)[0])
        hits.append(
            SearchHit(
                score=float(match.score),
                document_id=document_id,
                title=str(meta.get("title") or ""),
                chunk_index=_int_or_none(meta.get("chunk_index")),
                page_start=_int_or_none(meta.get("page_start")),
                page_end=_int_or_none(meta.get("page_end")),
                text=str(meta.get("text") or ""),
                document_exists=document_id in existing,
            )
        )
    return hits


def _is_uuid(value: str) -> bool:

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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

    tenants = {t.pk: t.name for t in tenants_for_user(user)}
    counts: dict = {pk: {} for pk in tenants}
    for row in documents.values("tenant_id", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["tenant_id"], {})[row["status"]] = row["n"]
    status_by_tenant = [
        (tenants.get(pk, "?"), {s: counts[pk].get(s, 0) for s in Status.values})
        for pk in sorted(counts, key=lambda pk: tenants.get(pk, ""))
    ]

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

    labels = dict(FAILURE_KIND_CHOICES)
    failures = [
        (labels.get(row["failure_kind"], row["failure_kind"] or "unknown"), row["n"])
        for row in documents.filter(status=Status.FAILED)
        .values("failure_kind")
        .annotate(n=Count("id"))
        .order_by("-n")
    ]
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


@dataclass(frozen=True)
class BrokerHealth:
    queue_name: str
    queue_length: int | None  # None: the broker did not answer in time
    workers: list | None  # worker names that answered a ping; None: the ping failed


# Threads, so a broker that hangs (a half-open socket, a connection retry loop) can never hang
# the page: the result is awaited with a timeout and the thread is left to finish on its own.
_HEALTH_POOL = None


def _health_pool():
    global _HEALTH_POOL
    if _HEALTH_POOL is None:
        _HEALTH_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broker-health")
    return _HEALTH_POOL


def broker_health(*, timeout: float = 3.0) -> BrokerHealth:

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    pool = _health_pool()
    length_future = pool.submit(broker.queue_length, queue)
    workers_future = pool.submit(broker.workers_online)
    deadline = time.monotonic() + timeout
    results = []
    for future in (length_future, workers_future):
        try:
            results.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except (FutureTimeout, Exception):  # noqa: BLE001 - shown as "unknown"
            results.append(None)
    return BrokerHealth(queue_name=queue, queue_length=results[0], workers=results[1])
