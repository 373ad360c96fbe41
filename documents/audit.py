"""The audit trail: every staff action on documents and tenants, written where it happens.

The services call ``record`` (or ``record_documents`` for document ids) with the ``source``
their caller passes -- the admin, the API, a command, a schedule -- and the user acting. The
rules:

* **Recording never makes the action fail.** The entry is written in a savepoint; any error
  (a database error, a value that does not serialise) is logged and swallowed, and the
  action's own transaction carries on untouched.
* **A bulk action is one entry per tenant**, with every id in one JSON list and the count,
  written in one INSERT -- never one write per row. Entries of one action share a ``batch``.
* **Entries are scoped like everything else**: each belongs to one tenant, so a tenant's
  staff see exactly their tenants' entries (``selectors.audit_entries_for_user``).

``manage.py reconcile`` (and anything else that acts on a tenant's documents) records its
work with ``record_documents(action=RECONCILE, ...)``.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction

from documents.models import AuditEntry, Document, Tenant

logger = logging.getLogger(__name__)

Source = AuditEntry.Source

# The actions, as stored in AuditEntry.action.
UPLOAD = "upload"
REPROCESS = "reprocess"
RETRY = "retry"
CANCEL = "cancel"
PURGE = "purge"
DELETE = "delete"
EDIT = "edit"
RELEASE = "release"
HOLD = "hold"
REQUEUE = "requeue"
RECONCILE = "reconcile"
TENANT_CREATE = "tenant.create"
TENANT_EDIT = "tenant.edit"
TENANT_DELETE = "tenant.delete"
MEMBERSHIP_ADD = "membership.add"
MEMBERSHIP_EDIT = "membership.edit"
MEMBERSHIP_REMOVE = "membership.remove"

ACTIONS = {
    UPLOAD: "Upload",
    REPROCESS: "Reprocess",
    RETRY: "Retry",
    CANCEL: "Cancel",
    PURGE: "Purge vectors",
    DELETE: "Delete",
    EDIT: "Edit",
    RELEASE: "Release held",
    HOLD: "Hold",
    REQUEUE: "Re-queue stalled",
    RECONCILE: "Reconcile",
    TENANT_CREATE: "Tenant created",
    TENANT_EDIT: "Tenant edited",
    TENANT_DELETE: "Tenant deleted",
    MEMBERSHIP_ADD: "Member added",
    MEMBERSHIP_EDIT: "Member's role changed",
    MEMBERSHIP_REMOVE: "Member removed",
}


def _actor(by) -> tuple:
    if by is None or not getattr(by, "pk", None):
        return None, ""
    return by, by.get_username()


def record(
    *,
    action: str,
    source: str | None,
    by=None,
    tenant: Tenant | None = None,
    object_ids: Iterable = (),
    count: int | None = None,
    details: dict | None = None,
) -> AuditEntry | None:
    """Record one action on one tenant (or on none: a superuser's action on the whole
    system). Returns the entry, or None when it could not be written (logged)."""

    def rows():
        ids = [str(pk) for pk in object_ids]
        return [
            _entry(
                action=action,
                source=source,
                by=by,
                tenant=tenant,
                ids=ids,
                count=len(ids) if count is None else count,
                details=details,
                batch=uuid.uuid4(),
            )
        ]

    entries = _write(action, rows)
    return entries[0] if entries else None


def record_documents(
    *,
    action: str,
    source: str | None,
    ids: Iterable,
    by=None,
    details: dict | None = None,
    tenant_of: dict | None = None,
) -> list[AuditEntry]:
    """Record an action on documents: one entry per tenant of ``ids``, written in one INSERT.
    ``tenant_of`` ({document id as a string: tenant}) is for rows that no longer exist (a
    delete); otherwise the tenants are read in one query. Nothing is written for no ids."""
    ids = [str(pk) for pk in ids]
    if not ids:
        return []

    def rows():
        tenants = _tenants_of(ids) if tenant_of is None else tenant_of
        by_tenant: dict = defaultdict(list)
        for pk in ids:
            by_tenant[tenants.get(pk)].append(pk)
        batch = uuid.uuid4()
        return [
            _entry(
                action=action,
                source=source,
                by=by,
                tenant=tenant,
                ids=tenant_ids,
                count=len(tenant_ids),
                details=details,
                batch=batch,
            )
            for tenant, tenant_ids in by_tenant.items()
        ]

    return _write(action, rows)


def _tenants_of(ids: list[str]) -> dict:
    pairs = list(Document.objects.filter(pk__in=ids).values_list("pk", "tenant_id"))
    tenants = Tenant.objects.in_bulk({tenant_id for _, tenant_id in pairs})
    return {str(pk): tenants.get(tenant_id) for pk, tenant_id in pairs}


def _entry(*, action, source, by, tenant, ids, count, details, batch) -> AuditEntry:
    actor, name = _actor(by)
    return AuditEntry(
        actor=actor,
        actor_name=name,
        source=source or Source.UNKNOWN,
        tenant=tenant,
        tenant_name=tenant.name if tenant is not None else "",
        action=action,
        object_ids=ids,
        count=count,
        details=details or {},
        batch=batch,
    )


def _write(action: str, rows) -> list[AuditEntry]:
    """Build the entries (``rows()``, which may read the database) and insert them; any
    failure of either is logged and swallowed."""
    try:
        if not transaction.get_connection().in_atomic_block:
            # Autocommit: each statement is its own transaction, and a failed one leaves
            # nothing behind; no BEGIN and COMMIT around the INSERT (uploads stay fast).
            return AuditEntry.objects.bulk_create(rows())
        # Inside the action's transaction, a savepoint: if reading the tenants or the INSERT
        # fails, only they are rolled back, and the action's transaction is still usable.
        with transaction.atomic():
            return AuditEntry.objects.bulk_create(rows())
    except Exception:  # noqa: BLE001 - recording must never make the action fail
        logger.exception("could not record the audit entry for %s", action)
        return []
