"""Messages to the workers (documents/dispatch.py): sent by task name after commit; a bulk
action's thousands of messages leave the request as a few fan-out messages."""

from __future__ import annotations

import pytest

from documents import broker, dispatch, services
from documents.models import Document, Status
from documents.tasks import fan_out
from tests.factories import make_documents
from tests.queued import take_calls

pytestmark = pytest.mark.django_db


def take_messages(queue: str) -> list[tuple[str, list]]:
    """Every message waiting in ``queue`` as (task name, args), removed from it."""
    return [(task, args) for task, args, _kwargs in take_calls(queue)]


def test_a_few_documents_are_queued_one_message_each(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    failed = make_documents(personas.tenant_a, 3, status=Status.FAILED, failure_kind="corrupt")
    with django_capture_on_commit_callbacks(execute=True):
        services.documents_retry_failed(queryset=Document.objects.all())
    messages = take_messages(isolated_queue)
    assert sorted(messages) == sorted((dispatch.PROCESS_DOCUMENT, [str(d.pk)]) for d in failed)


def test_a_bulk_action_leaves_as_fan_out_messages_that_become_one_message_per_document(
    personas, isolated_queue, django_capture_on_commit_callbacks
):
    count = dispatch.FAN_OUT_BATCH * 2 + 7
    failed = make_documents(personas.tenant_a, count, status=Status.FAILED, failure_kind="x")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.documents_retry_failed(queryset=Document.objects.all())
    assert result.done == count
    fan_outs = take_messages(isolated_queue)
    assert [name for name, _ in fan_outs] == [dispatch.FAN_OUT] * 3
    assert [len(args[1]) for _, args in fan_outs] == [dispatch.FAN_OUT_BATCH] * 2 + [7]
    for _, args in fan_outs:  # what a worker does with each
        assert fan_out.apply(args=args).get() == len(args[1])
    assert broker.queue_length(isolated_queue) == count
    sent = take_messages(isolated_queue)
    assert {name for name, _ in sent} == {dispatch.PROCESS_DOCUMENT}
    assert sorted(args[0] for _, args in sent) == sorted(str(d.pk) for d in failed)
