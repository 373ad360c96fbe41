"""The scheduled services: re-queue stalled documents, retry transient failures, clean up."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backoffice.celery import app
from documents import broker, dispatch, recovery
from documents.models import Document, Reconciliation, Stage, Status
from documents.tasks import reconcile_tenant, reconcile_vectors
from tests.doubles.gemini import fake_vector
from tests.factories import make_document
from tests.queued import take_calls

pytestmark = pytest.mark.django_db


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_the_migration_creates_the_three_schedules_with_their_intervals(settings):
    tasks = {t.task: t for t in PeriodicTask.objects.select_related("interval")}
    assert tasks["documents.retry_failed_documents"].interval.every == (
        settings.RETRY_FAILED_INTERVAL_SECONDS
    )
    assert tasks["documents.requeue_stalled_documents"].interval.every == (
        settings.REQUEUE_STALLED_INTERVAL_SECONDS
    )
    assert tasks["documents.cleanup"].enabled


def test_the_migration_creates_the_weekly_reconciliation_schedule(settings):
    schedule = PeriodicTask.objects.select_related("interval").get(
        task="documents.reconcile_vectors"
    )
    assert schedule.name == "Reconcile vector namespaces with the database"
    assert schedule.enabled and schedule.crontab is None
    assert (schedule.interval.every, schedule.interval.period) == (
        settings.RECONCILE_INTERVAL_SECONDS,
        "seconds",
    )
    # The environment may shorten it, but the default the README promises is a week.
    if "RECONCILE_INTERVAL_SECONDS" not in os.environ:
        assert timedelta(seconds=schedule.interval.every) == timedelta(weeks=1)
    # Beat sends the task by this name: it must be a registered task, not a typo.
    assert schedule.task in app.tasks


@pytest.mark.parametrize("repair", [False, True], ids=["report-only", "repair"])
def test_the_scheduled_reconciliation_runs_one_per_tenant_and_repairs_only_if_set(
    personas, settings, search_backends, isolated_queue, django_capture_on_commit_callbacks, repair
):
    settings.RECONCILE_REPAIR_SCHEDULED = repair
    pinecone = search_backends
    namespace = personas.tenant_a.vector_namespace
    # An id this project never makes: drift in tenant A's namespace whatever the grace period.
    pinecone.seed(
        namespace, [("legacy-import-17", fake_vector("x", "RETRIEVAL_DOCUMENT", 768), {})]
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_vectors.apply().get() == {"queued": 2}
    calls = take_calls(isolated_queue)
    assert sorted(calls) == sorted(
        (dispatch.RECONCILE_TENANT, [tenant.pk], {"repair": repair})
        for tenant in (personas.tenant_a, personas.tenant_b)
    )

    # What a worker does with each message.
    results = {
        r["tenant"]: r
        for r in (reconcile_tenant.apply(args=a, kwargs=k).get() for _, a, k in calls)
    }
    assert results["globex"]["outcome"] == Reconciliation.Outcome.CLEAN
    assert results["acme"]["orphans"] == 1
    report = Reconciliation.objects.get(tenant=personas.tenant_a)
    assert report.repair is repair
    if repair:
        assert report.outcome == Reconciliation.Outcome.REPAIRED and report.deleted == 1
        assert pinecone.ids(namespace) == []
    else:
        assert report.outcome == Reconciliation.Outcome.DRIFT and report.deleted == 0
        assert pinecone.ids(namespace) == ["legacy-import-17"]


def test_a_claim_without_heartbeat_is_requeued_and_the_lost_attempt_recorded(
    personas, settings, isolated_queue
):
    document = make_document(
        personas.tenant_a,
        stage=Stage.EMBEDDING,
        claimed_by="t1:0@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
        last_task_id="t1",
    )
    result = recovery.stalled_documents_requeue()
    assert result.requeued == 1
    document.refresh_from_db()
    assert document.claimed_by == "" and document.stage == Stage.QUEUED
    assert document.attempt_log[-1]["kind"] == "worker_lost"
    assert document.last_task_id != "t1"
    assert document.last_task_id in broker.live_task_ids(timeout=0.5)


def test_a_live_claim_is_left_alone(personas, isolated_queue):
    make_document(personas.tenant_a, claimed_by="t1:0@host:1", heartbeat_at=timezone.now())
    assert recovery.stalled_documents_requeue().requeued == 0


def test_a_document_whose_message_still_waits_for_a_worker_is_not_taken_for_dead(
    personas, settings, isolated_queue
):
    from documents.tasks import test_celery

    waiting = test_celery.apply_async(args=["still queued"])
    document = make_document(
        personas.tenant_a,
        queued_at=ago(settings.STALLED_QUEUED_SECONDS + 60),
        last_task_id=waiting.id,
    )
    assert recovery.stalled_documents_requeue().requeued == 0
    document.refresh_from_db()
    assert document.last_task_id == waiting.id


def test_a_document_queued_long_ago_whose_message_was_lost_is_requeued(
    personas, settings, isolated_queue
):
    document = make_document(
        personas.tenant_a,
        queued_at=ago(settings.STALLED_QUEUED_SECONDS + 60),
        last_task_id="lost-in-a-flushall",
    )
    assert recovery.stalled_documents_requeue().requeued == 1
    document.refresh_from_db()
    assert document.last_task_id in broker.live_task_ids(timeout=0.5)


def test_a_parked_document_resumes_once_its_time_has_passed(personas, isolated_queue):
    later = make_document(
        personas.tenant_a, stage=Stage.WAITING, resume_at=timezone.now() + timedelta(minutes=5)
    )
    due = make_document(
        personas.tenant_a, stage=Stage.WAITING, resume_at=ago(120), last_task_id="gone"
    )
    assert recovery.stalled_documents_requeue().requeued == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.stage == Stage.QUEUED and due.resume_at is None
    assert later.stage == Stage.WAITING


def test_scheduled_retry_takes_transient_failures_with_growing_spacing_and_a_cap(
    personas, settings, isolated_queue
):
    settings.RETRY_FAILED_BASE_SECONDS = 300
    settings.RETRY_FAILED_MAX_ATTEMPTS = 2
    failed = dict(status=Status.FAILED, failure_kind="unavailable")
    due = make_document(personas.tenant_a, finished_at=ago(301), **failed)
    too_soon = make_document(personas.tenant_a, finished_at=ago(100), **failed)
    # after one scheduled retry the spacing doubles: 600 s
    second_too_soon = make_document(
        personas.tenant_a, finished_at=ago(400), scheduled_retries=1, **failed
    )
    capped = make_document(
        personas.tenant_a, finished_at=ago(10_000), scheduled_retries=2, **failed
    )
    permanent = make_document(
        personas.tenant_a, finished_at=ago(10_000), status=Status.FAILED, failure_kind="corrupt"
    )
    result = recovery.failed_documents_retry()
    assert result.done == 1
    states = {
        d.pk: (d.status, d.scheduled_retries)
        for d in Document.objects.filter(
            pk__in=[due.pk, too_soon.pk, second_too_soon.pk, capped.pk, permanent.pk]
        )
    }
    assert states[due.pk] == (Status.PROCESSING, 1)
    assert states[too_soon.pk][0] == Status.FAILED
    assert states[second_too_soon.pk][0] == Status.FAILED
    assert states[capped.pk] == (Status.FAILED, 2)
    assert states[permanent.pk][0] == Status.FAILED


def test_the_queue_length_is_read_from_the_broker(personas, isolated_queue):
    from documents.tasks import test_celery

    assert broker.queue_length() == 0
    test_celery.apply_async(args=["a"])
    test_celery.apply_async(args=["b"])
    assert broker.queue_length() == 2
    assert app.conf.task_default_queue == isolated_queue


def test_the_sweep_fails_a_document_that_lost_too_many_workers_and_sends_no_message(
    personas, settings, isolated_queue
):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    document = make_document(
        personas.tenant_a,
        claimed_by="t1:3@gone:1",
        heartbeat_at=ago(settings.CLAIM_TIMEOUT_SECONDS + 5),
        last_task_id="t1",
        worker_losses=2,
    )
    result = recovery.stalled_documents_requeue()
    assert (result.requeued, result.examined) == (0, 1)
    document.refresh_from_db()
    assert (document.status, document.failure_kind) == (Status.FAILED, "worker_lost")
    assert "repeatedly stopped the worker" in document.failure_message
    assert document.last_task_id == "t1"
    # Only this test's queue: other xdist processes' workers hold tasks of their own.
    assert broker.queue_length() == 0


def test_the_scheduled_retry_does_not_bring_back_a_document_failed_for_good(
    personas, settings, isolated_queue
):
    settings.PIPELINE_MAX_WORKER_LOSSES = 2
    long_ago = ago(24 * 3600)
    for_good = make_document(
        personas.tenant_a,
        status=Status.FAILED,
        failure_kind="worker_lost",
        worker_losses=3,
        finished_at=long_ago,
    )
    below_cap = make_document(
        personas.tenant_a,
        status=Status.FAILED,
        failure_kind="worker_lost",
        worker_losses=1,
        finished_at=long_ago,
    )
    result = recovery.failed_documents_retry()
    assert result.ids == (below_cap.pk,)
    for_good.refresh_from_db()
    assert for_good.status == Status.FAILED
