from __future__ import annotations

from documents.tasks import longest_backoff, retry_countdown


def test_in_task_retries_wait_2_4_and_8_seconds(settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    assert [retry_countdown(n, None) for n in range(3)] == [2.0, 4.0, 8.0]
    assert longest_backoff() == 8.0


def test_a_longer_delay_given_by_the_server_wins(settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 2.0
    assert retry_countdown(0, 38.9) == 38.9
    assert retry_countdown(2, 1.0) == 8.0
