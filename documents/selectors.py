"""Scoped reads. Every queryset the admin or the API shows goes through these functions, so
the tenant rule is written once: superusers see every tenant, everyone else only the tenants
they are members of."""

from __future__ import annotations

from django.db.models import QuerySet

from documents.models import Chunk, Document, Membership, Tenant


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
