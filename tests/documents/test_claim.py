"""Claim before work (DESIGN invariant 4): the conditional UPDATE that decides who processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from documents import processing as run
from documents.models import Status
from tests.factories import make_document

pytestmark = pytest.mark.django_db


def test_the_first_delivery_claims_and_a_second_delivery_of_the_same_message_does_nothing(
    personas,
):
    document = make_document(personas.tenant_a)
    first = run.claim(str(document.pk), task_id="t1", retries=0)
    assert first is not None and first.claimed_by.startswith("t1:0@")
    assert first.attempts == 1 and first.stage == "downloading"
    assert run.claim(str(document.pk), task_id="t1", retries=0) is None
    document.refresh_from_db()
    assert document.attempts == 1


def test_another_task_cannot_take_a_live_claim(personas):
    document = make_document(personas.tenant_a)
    run.claim(str(document.pk), task_id="t1", retries=0)
    assert run.claim(str(document.pk), task_id="t2", retries=0) is None


def test_a_resend_after_the_worker_died_takes_over_and_records_the_lost_attempt(personas):
    document = make_document(personas.tenant_a)
    run.claim(str(document.pk), task_id="t1", retries=0)
    # task_retry_on_worker_lost re-sends the same task id with the retry count raised
    taken = run.claim(str(document.pk), task_id="t1", retries=1)
    assert taken is not None and taken.claimed_by.startswith("t1:1@")
    assert taken.attempts == 2
    assert [e["kind"] for e in taken.attempt_log] == ["worker_lost"]


def test_a_claim_with_a_stale_heartbeat_can_be_taken(personas, settings):
    document = make_document(personas.tenant_a)
    run.claim(str(document.pk), task_id="t1", retries=0)
    document.refresh_from_db()
    document.heartbeat_at = timezone.now() - timedelta(seconds=settings.CLAIM_TIMEOUT_SECONDS + 1)
    document.save(update_fields=["heartbeat_at"])
    assert run.claim(str(document.pk), task_id="t2", retries=0) is not None


def test_a_document_that_is_not_processing_is_never_claimed(personas):
    document = make_document(personas.tenant_a, status=Status.FAILED)
    assert run.claim(str(document.pk), task_id="t1", retries=0) is None


def test_a_runner_whose_claim_was_cancelled_stops_at_its_next_write(personas):
    from documents import services
    from documents.models import Document

    document = make_document(personas.tenant_a)
    claimed = run.claim(str(document.pk), task_id="t1", retries=0)
    runner = run.StageRunner(claimed)
    services.documents_cancel(queryset=Document.objects.filter(pk=document.pk), by="staff")
    with pytest.raises(run.ClaimLost):
        runner.write(pages_done=1)
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == "cancelled"


def test_record_failure_keeps_every_attempt_and_fails_on_the_last(personas):
    from documents.errors import TransientError

    document = make_document(personas.tenant_a)
    run.claim(str(document.pk), task_id="t1", retries=0)
    assert run.record_failure(str(document.pk), TransientError("Gemini is down."), will_retry=True)
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.stage == "queued"
    assert document.claimed_by == ""
    run.claim(str(document.pk), task_id="t1", retries=1)
    assert run.record_failure(str(document.pk), TransientError("Still down."), will_retry=False)
    document.refresh_from_db()
    assert document.status == Status.FAILED
    assert document.failure_message == "Still down."
    assert [e["message"] for e in document.attempt_log] == ["Gemini is down.", "Still down."]


@pytest.mark.parametrize(
    ("status", "kept"),
    [(Status.COMPLETED, True), (Status.PROCESSING, True), (Status.FAILED, False)],
)
def test_a_run_that_lost_its_claim_removes_vectors_only_if_the_document_was_stopped(
    personas, settings, tmp_path, status, kept
):
    from documents.clients import get_vector_store
    from documents.pipeline.types import VectorRecord

    settings.LANCEDB_URI = str(tmp_path / "lancedb")
    get_vector_store.cache_clear()
    try:
        document = make_document(personas.tenant_a, status=status)
        store = get_vector_store()
        namespace = personas.tenant_a.vector_namespace
        store.upsert(namespace, [VectorRecord(f"{document.pk}#0", [1.0] + [0.0] * 383, {})])
        run.remove_partial_vectors(str(document.pk))
        left = store.list_ids(namespace, f"{document.pk}#")
        assert (left == [f"{document.pk}#0"]) is kept
    finally:
        get_vector_store.cache_clear()
