"""The audit trail: one append-only model, written by the services where each action
happens, one entry per tenant for a bulk action, and never the reason an action fails."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from documents import audit, recovery, services
from documents.models import AuditEntry, Document, Status, Tenant
from documents.selectors import audit_entries_for_user, document_history
from documents.tasks import reconcile_vectors
from tests.doubles.gemini import fake_vector
from tests.factories import make_document, make_documents

pytestmark = pytest.mark.django_db


def inserts_into_audit(queries) -> int:
    return sum(1 for q in queries if q["sql"].startswith('INSERT INTO "documents_auditentry"'))


def test_a_bulk_action_across_tenants_is_one_entry_per_tenant_in_one_insert(
    personas, isolated_queue
):
    a = make_documents(personas.tenant_a, 3, status=Status.COMPLETED)
    b = make_documents(personas.tenant_b, 2, status=Status.COMPLETED)
    assert len(b) == 2
    busy = make_document(personas.tenant_a, n=99)  # processing: skipped
    with CaptureQueriesContext(connection) as queries:
        result = services.documents_reprocess(
            queryset=Document.objects.all(), actor=personas.superuser, source="admin"
        )
    assert result.done == 5
    assert inserts_into_audit(queries) == 1
    entries = {e.tenant: e for e in AuditEntry.objects.all()}
    assert set(entries) == {personas.tenant_a, personas.tenant_b}
    assert sorted(entries[personas.tenant_a].object_ids) == sorted(str(d.pk) for d in a)
    assert str(busy.pk) not in entries[personas.tenant_a].object_ids
    assert entries[personas.tenant_b].count == 2
    assert entries[personas.tenant_a].details == {"selected": 6, "skipped": 1}
    assert len({e.batch for e in entries.values()}) == 1
    assert {e.actor_name for e in entries.values()} == {personas.superuser.username}


def test_a_large_bulk_action_is_one_entry_with_every_id(personas, isolated_queue):
    make_documents(personas.tenant_a, 3000, status=Status.FAILED, failure_kind="corrupt")
    with CaptureQueriesContext(connection) as queries:
        services.documents_retry_failed(queryset=Document.objects.all(), source="command")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.count, len(entry.object_ids)) == ("retry", 3000, 3000)
    assert inserts_into_audit(queries) == 1


def test_a_failure_to_record_is_logged_and_the_action_still_happens(
    personas, isolated_queue, caplog
):
    document = make_document(personas.tenant_a, status=Status.COMPLETED)
    with connection.cursor() as cursor:
        # A real failure of the real INSERT: the table is not where the model says.
        cursor.execute("ALTER TABLE documents_auditentry RENAME TO documents_auditentry_away")
    with caplog.at_level(logging.ERROR, logger="documents.audit"):
        result = services.documents_reprocess(
            queryset=Document.objects.filter(pk=document.pk), source="admin"
        )
        # The transaction the action ran in is still usable afterwards.
        assert Document.objects.get(pk=document.pk).status == Status.PROCESSING
    assert result.done == 1
    assert "could not record the audit entry for reprocess" in caplog.text


def test_a_value_that_cannot_be_stored_is_logged_not_raised(personas, caplog):
    with caplog.at_level(logging.ERROR, logger="documents.audit"):
        entry = audit.record(
            action=audit.EDIT, source="admin", tenant=personas.tenant_a, details={"x": object()}
        )
    assert entry is None and "could not record" in caplog.text
    assert not AuditEntry.objects.exists()


def test_entries_are_append_only(personas):
    entry = audit.record(action=audit.EDIT, source="admin", tenant=personas.tenant_a)
    entry.action = "something else"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert AuditEntry.objects.get().action == audit.EDIT


def test_each_action_records_what_how_many_and_from_where(personas, isolated_queue):
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    busy = make_document(personas.tenant_a, n=1)
    gone = make_document(personas.tenant_a, n=2, status=Status.COMPLETED)
    services.documents_purge_vectors(queryset=Document.objects.filter(pk=done.pk), source="api")
    services.documents_cancel(
        queryset=Document.objects.filter(pk=busy.pk), actor=personas.staff_a, source="admin"
    )
    services.documents_delete(queryset=Document.objects.filter(pk=gone.pk), source="admin")
    services.document_update(document=done, title="Renamed", actor=personas.staff_a, source="admin")
    rows = list(
        AuditEntry.objects.order_by("id").values_list("action", "source", "count", "object_ids")
    )
    assert rows == [
        ("purge", "api", 1, [str(done.pk)]),
        ("cancel", "admin", 1, [str(busy.pk)]),
        ("delete", "admin", 1, [str(gone.pk)]),
        ("edit", "admin", 1, [str(done.pk)]),
    ]
    assert AuditEntry.objects.get(action="edit").details == {"title": ["acme report 0", "Renamed"]}
    # The deleted document's entry still belongs to its tenant.
    assert AuditEntry.objects.get(action="delete").tenant == personas.tenant_a


def test_the_schedule_and_the_commands_say_where_they_came_from(personas, isolated_queue, settings):
    settings.RETRY_FAILED_BASE_SECONDS = 1
    failed = make_document(
        personas.tenant_a,
        status=Status.FAILED,
        failure_kind="unavailable",
        finished_at=timezone.now() - timedelta(minutes=5),
    )
    recovery.failed_documents_retry()
    assert AuditEntry.objects.get(action="retry").source == "schedule"
    Document.objects.filter(pk=failed.pk).update(status=Status.COMPLETED)
    call_command("reprocess", str(failed.pk), stdout=StringIO(), stderr=StringIO())
    assert AuditEntry.objects.get(action="reprocess").source == "command"


def test_a_sweep_that_finds_nothing_records_nothing(personas):
    recovery.stalled_documents_requeue()
    assert not AuditEntry.objects.exists()


def test_tenant_changes_are_recorded_and_outlive_the_tenant(personas, isolated_queue):
    tenant = Tenant(name="Initech", slug="initech")
    services.tenant_save(tenant=tenant, actor=personas.superuser, source="admin")
    tenant.max_pages_per_document = 50
    services.tenant_save(tenant=tenant, actor=personas.superuser, source="admin")
    make_document(tenant)
    services.tenants_delete(queryset=Tenant.objects.filter(pk=tenant.pk), source="admin")
    rows = list(
        AuditEntry.objects.filter(tenant_name="Initech")
        .order_by("id")
        .values_list("action", "details", "tenant")
    )
    assert rows[0][:2] == ("tenant.create", {"slug": "initech"})
    assert rows[1][:2] == ("tenant.edit", {"max_pages_per_document": [None, 50]})
    assert [r[0] for r in rows[2:]] == ["tenant.delete", "delete"]
    assert {r[2] for r in rows} == {None}  # the tenant is gone, its name stays


def test_staff_see_their_tenants_entries_and_a_documents_history_is_its_own(
    personas, isolated_queue
):
    a = make_document(personas.tenant_a, status=Status.COMPLETED)
    b = make_document(personas.tenant_b, status=Status.COMPLETED)
    services.documents_reprocess(queryset=Document.objects.all(), source="admin")
    assert {e.tenant for e in audit_entries_for_user(personas.staff_b)} == {personas.tenant_b}
    assert audit_entries_for_user(personas.outsider).count() == 0
    assert audit_entries_for_user(personas.superuser).count() == 2
    assert [e.object_ids for e in document_history(a)] == [[str(a.pk)]]
    assert [e.object_ids for e in document_history(b)] == [[str(b.pk)]]


@pytest.mark.django_db(transaction=True)
def test_a_failure_to_record_outside_any_transaction_is_swallowed_too(
    personas, isolated_queue, caplog
):
    document = make_document(personas.tenant_a, status=Status.COMPLETED)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE documents_auditentry RENAME TO documents_auditentry_away")
    try:
        with caplog.at_level(logging.ERROR, logger="documents.audit"):
            # The purge runs in autocommit: the INSERT is not protected by a savepoint.
            result = services.documents_purge_vectors(
                queryset=Document.objects.filter(pk=document.pk), source="api"
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE documents_auditentry_away RENAME TO documents_auditentry")
    assert result.done == 1
    assert "could not record the audit entry for purge" in caplog.text


# --- reconciliation --------------------------------------------------------------------------


def foreign_vector_in(pinecone, tenant) -> None:
    """An id this project never makes in the tenant's namespace: drift a reconciliation finds
    whatever the grace period."""
    pinecone.seed(
        tenant.vector_namespace,
        [("legacy-import-17", fake_vector("legacy", "RETRIEVAL_DOCUMENT", 768), {})],
    )


def reconcile_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=audit.RECONCILE).order_by("id"))


def test_the_admin_action_records_who_queued_a_reconciliation_of_which_tenant(
    client, personas, isolated_queue, django_capture_on_commit_callbacks
):
    client.force_login(personas.staff_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:documents_tenant_changelist"),
            {"action": "reconcile_vectors", "_selected_action": [personas.tenant_a.pk]},
            follow=True,
        )
    [entry] = reconcile_entries()
    assert (entry.source, entry.actor, entry.actor_name) == (
        "admin",
        personas.staff_a,
        personas.staff_a.username,
    )
    assert (entry.tenant, entry.object_ids, entry.count) == (
        personas.tenant_a,
        [str(personas.tenant_a.pk)],
        1,
    )
    assert entry.details == {"repair": False, "queued": True}


def test_the_schedule_records_one_reconciliation_per_tenant_with_its_repair_setting(
    personas, settings, isolated_queue, django_capture_on_commit_callbacks
):
    settings.RECONCILE_REPAIR_SCHEDULED = True
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_vectors.apply().get()
    entries = reconcile_entries()
    assert {e.tenant for e in entries} == {personas.tenant_a, personas.tenant_b}
    for entry in entries:
        assert (entry.source, entry.actor, entry.actor_name) == ("schedule", None, "")
        assert entry.object_ids == [str(entry.tenant.pk)]
        assert entry.details == {"repair": True, "queued": True}


def test_the_command_records_what_each_reconciliation_found_and_did(
    personas, search_backends, isolated_queue
):
    foreign_vector_in(search_backends, personas.tenant_a)
    call_command("reconcile", "--tenant", "acme", stdout=StringIO(), stderr=StringIO())
    call_command("reconcile", "--tenant", "acme", "--repair", stdout=StringIO(), stderr=StringIO())
    report, repair = reconcile_entries()
    for entry in (report, repair):
        assert (entry.source, entry.actor, entry.tenant) == ("command", None, personas.tenant_a)
        assert entry.object_ids == [str(personas.tenant_a.pk)]
    found = {"orphans": 1, "wrong_namespace": 0, "missing": 0, "requeued": 0}
    assert report.details == {"repair": False, "outcome": "drift", "deleted": 0, **found}
    assert repair.details == {"repair": True, "outcome": "repaired", "deleted": 1, **found}
    assert search_backends.ids(personas.tenant_a.vector_namespace) == []
