"""Bulk actions and delete in the Document admin: counts, skips, select-across, scoping."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from documents.models import DeletedDocument, Document, Status
from tests.factories import make_document, make_documents

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:documents_document_changelist")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def act(client, user, action, ids, **extra):
    client.force_login(user)
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": 0, **extra}
    response = client.post(CHANGELIST, data, follow=True)
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]


def statuses(ids):
    return dict(Document.objects.filter(pk__in=ids).values_list("pk", "status"))


def test_reprocess_queues_the_idle_and_skips_the_processing(client, personas):
    done = [make_document(personas.tenant_a, n=i, status=Status.COMPLETED) for i in range(2)]
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    busy = make_document(personas.tenant_a, status=Status.PROCESSING, stage="embedding")
    ids = [d.pk for d in [*done, failed, busy]]
    messages = act(client, personas.staff_a, "reprocess", ids)
    assert messages == [
        "3 documents queued for reprocessing, 1 skipped because they are already processing."
    ]
    assert set(statuses(ids).values()) == {Status.PROCESSING}
    failed.refresh_from_db()
    assert failed.failure_kind == "" and failed.stage == "queued"
    busy.refresh_from_db()
    assert busy.stage == "embedding"  # untouched


def test_retry_failed_only_touches_failed_documents(client, personas):
    failed = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="unavailable")
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    messages = act(client, personas.staff_a, "retry_failed", [failed.pk, done.pk])
    assert messages == ["1 document queued for a retry, 1 skipped because they have not failed."]
    assert statuses([failed.pk, done.pk]) == {
        failed.pk: Status.PROCESSING,
        done.pk: Status.COMPLETED,
    }


def test_cancel_stops_processing_documents_and_names_who_did_it(client, personas):
    busy = make_document(personas.tenant_a, status=Status.PROCESSING)
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    messages = act(client, personas.staff_a, "cancel", [busy.pk, done.pk])
    assert messages == ["1 document cancelled, 1 skipped because they were not processing."]
    busy.refresh_from_db()
    assert busy.status == Status.FAILED and busy.failure_kind == "cancelled"
    assert personas.staff_a.username in busy.failure_message


def test_purge_vectors_skips_processing_documents(
    client, personas, django_capture_on_commit_callbacks
):
    done = make_document(personas.tenant_a, vector_count=5, status=Status.COMPLETED)
    busy = make_document(personas.tenant_a, status=Status.PROCESSING)
    with django_capture_on_commit_callbacks() as callbacks:
        messages = act(client, personas.staff_a, "purge_vectors", [done.pk, busy.pk])
    assert messages == [
        "1 document queued for a vector purge, 1 skipped because they are still processing."
    ]
    assert len(callbacks) == 1  # one after-commit send, for the one eligible document


def test_nothing_eligible_is_reported_as_a_warning(client, personas):
    busy = make_document(personas.tenant_a, status=Status.PROCESSING)
    client.force_login(personas.staff_a)
    response = client.post(
        CHANGELIST,
        {"action": "reprocess", "_selected_action": [str(busy.pk)], "index": 0},
        follow=True,
    )
    [message] = list(response.context["messages"])
    assert message.level_tag == "warning"
    assert str(message) == (
        "0 documents queued for reprocessing, 1 skipped because they are already processing."
    )


def test_select_across_acts_on_all_10000_documents_of_the_users_tenants(client, personas):
    mine = make_documents(personas.tenant_a, 10_000, status=Status.FAILED, failure_kind="corrupt")
    theirs = make_documents(personas.tenant_b, 5, status=Status.FAILED, failure_kind="corrupt")
    messages = act(client, personas.staff_a, "retry_failed", [mine[0].pk], select_across="1")
    assert messages == ["10000 documents queued for a retry."]
    assert (
        Document.objects.filter(tenant=personas.tenant_a, status=Status.PROCESSING).count()
        == 10_000
    )
    assert set(statuses([d.pk for d in theirs]).values()) == {Status.FAILED}


def test_a_crafted_post_with_another_tenants_ids_does_nothing(client, personas):
    theirs = [
        make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt"),
        make_document(personas.tenant_a, status=Status.PROCESSING),
    ]
    ids = [d.pk for d in theirs]
    for action in ("reprocess", "retry_failed", "cancel", "purge_vectors"):
        act(client, personas.staff_b, action, ids)
    assert statuses(ids) == {theirs[0].pk: Status.FAILED, theirs[1].pk: Status.PROCESSING}
    # deleting through the bulk action does nothing to them either
    client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [str(i) for i in ids], "post": "yes"},
    )
    assert Document.objects.filter(pk__in=ids).count() == 2


def test_delete_selected_goes_through_the_delete_service(client, personas):
    docs = [make_document(personas.tenant_a, n=i, status=Status.COMPLETED) for i in range(3)]
    other = make_document(personas.tenant_b, status=Status.COMPLETED)
    client.force_login(personas.staff_a)
    response = client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "_selected_action": [str(d.pk) for d in docs],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not Document.objects.filter(pk__in=[d.pk for d in docs]).exists()
    # the service records what lives outside the database, for removal after commit
    recorded = set(DeletedDocument.objects.values_list("document_id", flat=True))
    assert recorded == {d.pk for d in docs}
    assert DeletedDocument.objects.first().vector_namespace == personas.tenant_a.vector_namespace
    assert Document.objects.filter(pk=other.pk).exists()


def test_delete_from_the_document_page_goes_through_the_delete_service(client, personas):
    doc = make_document(personas.tenant_a, status=Status.COMPLETED)
    client.force_login(personas.staff_a)
    url = reverse("admin:documents_document_delete", args=[doc.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert DeletedDocument.objects.filter(document_id=doc.pk).exists()


def test_another_tenants_delete_page_is_not_found(client, personas):
    doc = make_document(personas.tenant_a, status=Status.COMPLETED)
    client.force_login(personas.staff_b)
    url = reverse("admin:documents_document_delete", args=[doc.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert Document.objects.filter(pk=doc.pk).exists()
