"""The admin login locks a user name out from an address after repeated wrong passwords
(django-axes, settings AXES_*), through the real login form and authentication backends."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def attempt(username: str, password: str, address: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_fifteen_wrong_passwords_lock_the_user_name_out_from_that_address(settings):
    settings.AXES_FAILURE_LIMIT = 5
    user = UserFactory()
    codes = [attempt(user.username, "wrong-password").status_code for _ in range(15)]
    # The login form answers 200 with an error for the first four, then refuses.
    assert codes == [200] * 4 + [429] * 11
    # The right password is refused too while the lockout lasts: a guess cannot be confirmed.
    locked = attempt(user.username, PASSWORD)
    assert locked.status_code == 429
    assert "too many login attempts" in locked.content.decode()


def test_the_lockout_does_not_reach_another_address_or_another_user(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory()
    other = UserFactory()
    for _ in range(3):
        attempt(user.username, "wrong-password")
    assert attempt(user.username, PASSWORD).status_code == 429
    assert logged_in(attempt(user.username, PASSWORD, address="198.51.100.2"))
    assert logged_in(attempt(other.username, PASSWORD))


def test_a_success_before_the_limit_clears_the_count(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory()
    attempt(user.username, "wrong-password")
    attempt(user.username, "wrong-password")
    assert logged_in(attempt(user.username, PASSWORD))
    attempt(user.username, "wrong-password")
    attempt(user.username, "wrong-password")
    assert logged_in(attempt(user.username, PASSWORD))


def test_the_lockout_ends_after_the_cool_off(settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory()
    for _ in range(3):
        attempt(user.username, "wrong-password")
    assert attempt(user.username, PASSWORD).status_code == 429
    # Age the recorded failures past the cool-off instead of sleeping through it.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert logged_in(attempt(user.username, PASSWORD))
