"""The one owner of a document's life (documents/lifecycle.py): each change is a conditional
UPDATE whose condition is its rule. Claim before work is DESIGN invariant 4."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from documents import lifecycle
from documents.errors import FailureKind, PermanentError, RepeatedWorkerLoss, TransientError
from documents.lifecycle import ClaimLost
from documents.models import Document, Stage, Status
from tests.factories import make_document, make_documents

pytestmark = pytest.mark.django_db


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def claim(document, task_id="t1", retries=0):
    return lifecycle.claim(str(document.pk), task_id=task_id, retries=retries)


# --- claiming ---------------------------------------------------------------------------------


def test_the_first_delivery_claims_and_a_second_delivery_of_the_same_message_does_nothing(
    personas,
):
    document = make_document(personas.tenant_a)
    first = claim(document)
    assert first is not None and first.owner.startswith("t1:0@")
    assert first.document.attempts == 1 and first.document.stage == Stage.DOWNLOADING
    assert claim(document) is None
    document.refresh_from_db()
    assert document.attempts == 1


def test_another_task_cannot_take_a_live_claim(personas):
    document = make_document(personas.tenant_a)
    claim(document)
    assert claim(document, task_id="t2") is None


def test_a_resend_after_the_worker_died_takes_over_and_records_the_lost_attempt(personas):
    document = make_document(personas.tenant_a)
    claim(document)
    # task_retry_on_worker_lost re-sends the same task id with the retry count raised
    taken = claim(document, retries=1)
    assert taken is not None and taken.owner.startswith("t1:1@")
    assert taken.document.attempts == 2
    assert [e["kind"] for e in taken.document.attempt_log] == [FailureKind.WORKER_LOST]


def test_a_claim_with_a_stale_heartbeat_can_be_taken(personas, settings):
    document = make_document(personas.tenant_a)
    claim(document)
    Document.objects.filter(pk=document.pk).update(
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 1)
    )
    assert claim(document, task_id="t2") is not None


@pytest.mark.parametrize("status", [Status.FAILED, Status.COMPLETED])
def test_a_document_that_is_not_processing_is_never_claimed(personas, status):
    document = make_document(personas.tenant_a, status=status)
    assert claim(document) is None


def test_a_claim_resets_progress_and_clears_a_parked_resume_time(personas):
    document = make_document(
        personas.tenant_a, pages_done=4, chunks_done=9, resume_at=timezone.now(), stage="waiting"
    )
    held = claim(document)
    assert held.document.pages_done == 0 and held.document.chunks_done == 0
    assert held.document.resume_at is None and held.document.stage == Stage.DOWNLOADING


# --- a held claim -----------------------------------------------------------------------------


def test_every_write_under_a_claim_is_a_heartbeat(personas):
    document = make_document(personas.tenant_a)
    held = claim(document)
    Document.objects.filter(pk=document.pk).update(heartbeat_at=ago(100))
    held.write(pages_done=3)
    document.refresh_from_db()
    assert document.pages_done == 3
    assert timezone.now() - document.heartbeat_at < timedelta(seconds=5)


@pytest.mark.parametrize("field", ["status", "claimed_by", "failure_kind", "attempts"])
def test_a_claim_reports_progress_but_cannot_end_or_hand_over_its_run(personas, field):
    document = make_document(personas.tenant_a)
    held = claim(document)
    with pytest.raises(ValueError, match=field):
        held.write(pages_done=2, **{field: None})
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.pages_done == 0
    held.write(stage=Stage.EMBEDDING, pages_done=2)  # the stage is progress
    document.refresh_from_db()
    assert (document.stage, document.pages_done) == (Stage.EMBEDDING, 2)


def test_a_writer_whose_claim_was_cancelled_stops_at_its_next_write(personas):
    document = make_document(personas.tenant_a)
    held = claim(document)
    assert lifecycle.cancel(Document.objects.filter(pk=document.pk), by="staff") == [document.pk]
    with pytest.raises(ClaimLost):
        held.write(pages_done=1)
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_kind == FailureKind.CANCELLED
    assert document.failure_message == "Cancelled by staff."


def test_a_writer_whose_claim_was_taken_over_can_neither_write_nor_lock(personas, settings):
    document = make_document(personas.tenant_a)
    held = claim(document)
    Document.objects.filter(pk=document.pk).update(
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 1)
    )
    assert claim(document, task_id="t2") is not None
    with pytest.raises(ClaimLost):
        held.write(pages_done=1)
    with pytest.raises(ClaimLost):
        held.lock()


def test_complete_releases_the_claim_and_clears_the_last_failure(personas):
    document = make_document(personas.tenant_a, failure_kind="unavailable", failure_message="x")
    held = claim(document)
    held.complete(chunks_done=2, vector_count=2)
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.COMPLETED, Stage.DONE)
    assert document.claimed_by == "" and document.heartbeat_at is None
    assert document.failure_kind == "" and document.vector_count == 2
    assert document.finished_at is not None


# --- the end of an attempt --------------------------------------------------------------------


def test_failed_attempts_are_all_logged_and_the_last_one_fails_the_document(personas):
    document = make_document(personas.tenant_a)
    claim(document)
    assert lifecycle.requeue_after_failure(document.pk, TransientError("Gemini is down."))
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.stage == Stage.QUEUED
    assert document.claimed_by == "" and document.heartbeat_at is None
    claim(document, retries=1)
    assert lifecycle.fail(document.pk, TransientError("Still down."))
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.failure_message == "Still down."
    assert [e["message"] for e in document.attempt_log] == ["Gemini is down.", "Still down."]
    assert [e["stage"] for e in document.attempt_log] == [Stage.DOWNLOADING] * 2


def test_a_parked_attempt_waits_with_its_resume_time(personas):
    document = make_document(personas.tenant_a)
    claim(document)
    resume_at = timezone.now() + timedelta(minutes=5)
    error = TransientError("Quota.", FailureKind.RATE_LIMITED, retry_after=300)
    assert lifecycle.requeue_after_failure(document.pk, error, resume_at=resume_at)
    document.refresh_from_db()
    assert document.stage == Stage.WAITING and document.resume_at == resume_at
    assert document.failure_kind == FailureKind.RATE_LIMITED


def test_a_failure_reported_after_a_cancel_writes_nothing(personas):
    document = make_document(personas.tenant_a)
    claim(document)
    lifecycle.cancel(Document.objects.filter(pk=document.pk))
    assert not lifecycle.fail(document.pk, PermanentError("Corrupt."))
    document.refresh_from_db()
    assert document.failure_kind == FailureKind.CANCELLED and document.attempt_log == []


# --- people and schedules ---------------------------------------------------------------------


def test_queue_again_resets_many_documents_in_one_update(personas):
    failed = make_documents(
        personas.tenant_a, 30, status=Status.FAILED, failure_kind="corrupt", pages_done=3
    )
    with CaptureQueriesContext(connection) as queries:
        ids = lifecycle.queue_again(Document.objects.filter(status=Status.FAILED))
    assert sorted(ids) == sorted(d.pk for d in failed)
    updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    row = Document.objects.get(pk=failed[0].pk)
    assert (row.status, row.stage, row.failure_kind, row.pages_done) == (
        Status.PROCESSING,
        Stage.QUEUED,
        "",
        0,
    )


def test_cancel_touches_only_processing_documents(personas):
    busy = make_document(personas.tenant_a)
    done = make_document(personas.tenant_a, status=Status.COMPLETED)
    ids = lifecycle.cancel(Document.objects.all())
    assert ids == [busy.pk]
    done.refresh_from_db()
    assert done.status == Status.COMPLETED


def test_a_stalled_release_loses_to_a_heartbeat_written_after_it_looked(personas, settings):
    document = make_document(
        personas.tenant_a,
        claimed_by="t1:0@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
    )
    seen = Document.objects.get(pk=document.pk)
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now())
    assert not lifecycle.release_stalled(seen, now=timezone.now())
    document.refresh_from_db()
    assert document.claimed_by == "t1:0@gone:1"


def test_a_stalled_release_records_the_lost_worker(personas, settings):
    document = make_document(
        personas.tenant_a,
        claimed_by="t1:0@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
        stage=Stage.EMBEDDING,
    )
    assert lifecycle.release_stalled(document, now=timezone.now())
    document.refresh_from_db()
    assert document.claimed_by == "" and document.stage == Stage.QUEUED
    assert document.attempt_log[-1]["kind"] == FailureKind.WORKER_LOST
    assert document.attempt_log[-1]["stage"] == Stage.EMBEDDING


def test_the_stalled_rule_finds_dead_claims_lost_messages_and_overdue_resumes(personas, settings):
    now = timezone.now()
    stale = settings.CLAIM_TIMEOUT_SECONDS + 5
    dead = make_document(personas.tenant_a, claimed_by="a", heartbeat_at=ago(stale))
    live = make_document(personas.tenant_a, claimed_by="b", heartbeat_at=now)
    lost = make_document(personas.tenant_a, queued_at=ago(settings.STALLED_QUEUED_SECONDS + 5))
    fresh = make_document(personas.tenant_a, queued_at=now)
    overdue = make_document(personas.tenant_a, resume_at=ago(60), queued_at=now)
    waiting = make_document(personas.tenant_a, resume_at=now + timedelta(minutes=5))
    finished = make_document(
        personas.tenant_a, status=Status.FAILED, queued_at=ago(settings.STALLED_QUEUED_SECONDS + 5)
    )
    found = set(Document.objects.filter(lifecycle.stalled(now)).values_list("pk", flat=True))
    assert found == {dead.pk, lost.pk, overdue.pk}
    assert not found & {live.pk, fresh.pk, waiting.pk, finished.pk}


def test_only_transient_failures_count_as_transient(personas):
    transient = make_document(personas.tenant_a, status=Status.FAILED, failure_kind="unavailable")
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="corrupt")
    make_document(personas.tenant_a, status=Status.FAILED, failure_kind="cancelled")
    found = list(
        Document.objects.filter(lifecycle.transient_failure()).values_list("pk", flat=True)
    )
    assert found == [transient.pk]


# --- the lost-worker cap (no poison loops) ----------------------------------------------------


def test_each_takeover_counts_a_lost_worker_and_the_one_past_the_cap_fails_for_good(
    personas, settings
):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    document = make_document(personas.tenant_a)
    claim(document, retries=0)
    # Celery re-sends the task each time its worker is killed (task_retry_on_worker_lost).
    assert claim(document, retries=1).document.worker_losses == 1
    assert claim(document, retries=2).document.worker_losses == 2
    with pytest.raises(RepeatedWorkerLoss) as raised:
        claim(document, retries=3)
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "repeatedly stopped the worker (3 times)" in document.failure_message
    assert raised.value.message == document.failure_message
    assert document.worker_losses == 3 and document.claimed_by == ""
    assert document.finished_at is not None
    assert [e["kind"] for e in document.attempt_log] == [FailureKind.WORKER_LOST] * 3
    # The message that comes after finds nothing to do.
    assert claim(document, retries=4) is None


def test_a_stale_claim_taken_by_another_task_counts_as_a_lost_worker_too(personas, settings):
    settings.PIPELINE_MAX_WORKER_LOSSES = 0
    document = make_document(personas.tenant_a)
    claim(document, task_id="slow")
    Document.objects.filter(pk=document.pk).update(
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 1)
    )
    with pytest.raises(RepeatedWorkerLoss):
        claim(document, task_id="sweep-message")
    document.refresh_from_db()
    assert document.status == Status.FAILED and document.worker_losses == 1


def test_the_stalled_sweep_fails_a_document_for_good_past_the_cap_instead_of_requeueing(
    personas, settings
):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    document = make_document(
        personas.tenant_a,
        claimed_by="t1:2@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
        stage=Stage.EXTRACTING,
        worker_losses=2,
    )
    assert lifecycle.release_stalled(document, now=timezone.now()) is False
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "repeatedly stopped the worker (3 times)" in document.failure_message
    assert document.claimed_by == "" and document.worker_losses == 3
    assert document.attempt_log[-1]["stage"] == Stage.EXTRACTING


def test_the_stalled_sweep_counts_a_dead_claim_below_the_cap_and_requeues_it(personas, settings):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    document = make_document(
        personas.tenant_a,
        claimed_by="t1:0@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
        worker_losses=1,
    )
    assert lifecycle.release_stalled(document, now=timezone.now()) is True
    document.refresh_from_db()
    assert (document.status, document.stage) == (Status.PROCESSING, Stage.QUEUED)
    assert document.worker_losses == 2


def test_a_document_queued_too_long_without_a_claim_is_not_a_lost_worker(personas, settings):
    document = make_document(
        personas.tenant_a, queued_at=ago(settings.STALLED_QUEUED_SECONDS + 5), worker_losses=2
    )
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    assert lifecycle.release_stalled(document, now=timezone.now()) is True
    document.refresh_from_db()
    assert document.worker_losses == 2 and document.attempt_log == []


def test_a_document_failed_for_good_is_not_a_transient_failure_for_the_scheduled_retry(
    personas, settings
):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    failed = {"status": Status.FAILED, "failure_kind": FailureKind.WORKER_LOST}
    retried_later = make_document(personas.tenant_a, worker_losses=1, **failed)
    make_document(personas.tenant_a, worker_losses=3, **failed)
    found = list(
        Document.objects.filter(lifecycle.transient_failure()).values_list("pk", flat=True)
    )
    assert found == [retried_later.pk]


def test_queued_again_by_a_person_a_document_gets_a_fresh_budget_of_lost_workers(personas):
    document = make_document(
        personas.tenant_a,
        status=Status.FAILED,
        failure_kind=FailureKind.WORKER_LOST,
        worker_losses=3,
    )
    assert lifecycle.queue_again(Document.objects.filter(pk=document.pk)) == [document.pk]
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.worker_losses == 0


def test_when_celery_gives_up_on_a_lost_worker_the_document_it_held_fails(personas, settings):
    settings.PIPELINE_MAX_WORKER_LOSSES = 5
    document = make_document(personas.tenant_a, last_task_id="t1")
    claim(document, task_id="t1", retries=3)
    error = lifecycle.fail_after_worker_lost(str(document.pk), task_id="t1")
    assert error is not None and error.kind == FailureKind.WORKER_LOST
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, FailureKind.WORKER_LOST)
    assert "no retries were left" in document.failure_message
    assert document.worker_losses == 1 and document.claimed_by == ""
    # Below the cap: the scheduled retry may try it again later.
    assert Document.objects.filter(lifecycle.transient_failure(), pk=document.pk).exists()


def test_when_celery_gives_up_past_the_cap_the_document_fails_for_good(personas, settings):
    settings.PIPELINE_MAX_WORKER_LOSSES = 1
    document = make_document(personas.tenant_a, last_task_id="t1", worker_losses=1)
    claim(document, task_id="t1", retries=3)
    error = lifecycle.fail_after_worker_lost(str(document.pk), task_id="t1")
    assert isinstance(error, RepeatedWorkerLoss)
    document.refresh_from_db()
    assert "repeatedly stopped the worker (2 times)" in document.failure_message
    assert not Document.objects.filter(lifecycle.transient_failure(), pk=document.pk).exists()


def test_when_celery_gives_up_on_another_tasks_document_nothing_is_written(personas):
    document = make_document(personas.tenant_a, last_task_id="t2")
    claim(document, task_id="t2")
    assert lifecycle.fail_after_worker_lost(str(document.pk), task_id="t1") is None
    document.refresh_from_db()
    assert document.status == Status.PROCESSING and document.claimed_by.startswith("t2:")


# --- held documents (over a tenant's limit) ---------------------------------------------------


def test_a_held_document_is_never_claimed_nor_taken_for_stalled(personas, settings):
    held = lifecycle.create(
        held=True,
        tenant=personas.tenant_a,
        title="big",
        original_filename="big.pdf",
        content_type="application/pdf",
        size_bytes=1,
        sha256="0" * 64,
        storage_key="k",
    )
    Document.objects.filter(pk=held.pk).update(queued_at=ago(settings.STALLED_QUEUED_SECONDS + 60))
    assert (held.status, held.stage) == (Status.PROCESSING, Stage.HELD)
    assert claim(held) is None
    assert not Document.objects.filter(lifecycle.stalled(timezone.now()), pk=held.pk).exists()


def test_release_queues_only_held_documents(personas):
    held = make_document(personas.tenant_a, stage=Stage.HELD, queued_at=ago(3600))
    queued = make_document(personas.tenant_a, n=1)
    done = make_document(personas.tenant_a, n=2, status=Status.COMPLETED)
    ids = lifecycle.release(Document.objects.all())
    assert ids == [held.pk]
    held.refresh_from_db()
    assert held.stage == Stage.QUEUED and held.queued_at > ago(60)
    assert claim(held) is not None
    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.stage, done.stage) == (Stage.QUEUED, Stage.DONE)
