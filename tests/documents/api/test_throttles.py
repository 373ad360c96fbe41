"""API throttles: per user, per upload, and wrong tokens per client address.

The suite runs with the throttles off (settings_test); these tests switch them on with small
rates and count real requests through the real authentication and throttle classes."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

WRONG = "Token 0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def rates(settings):
    """Set throttle rates for this test (the others stay off) on an empty counter cache."""
    cache.clear()

    def set_rates(**scoped):
        settings.API_THROTTLE_RATES = {
            "user": None,
            "ingest": None,
            "anon": None,
            "failed_auth": None,
            **scoped,
        }

    yield set_rates
    cache.clear()


def wrong_token_client(address="203.0.113.7") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=WRONG)
    return client


def test_without_a_throttle_thirty_wrong_tokens_are_all_answered_401(rates):
    rates()
    client = wrong_token_client()
    codes = [client.get("/api/documents/").status_code for _ in range(30)]
    assert codes == [401] * 30


def test_wrong_tokens_past_the_rate_are_refused_with_429_and_a_retry_after(rates):
    rates(failed_auth="10/minute")
    client = wrong_token_client()
    codes = [client.get("/api/documents/").status_code for _ in range(30)]
    assert codes == [401] * 10 + [429] * 20
    refused = client.get("/api/documents/")
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


def test_once_an_address_is_refused_even_a_right_token_from_it_is_refused(rates, personas):
    rates(failed_auth="3/minute")
    for _ in range(3):
        assert wrong_token_client().get("/api/documents/").status_code == 401
    right = api_client_for(personas.staff_a)
    right.defaults["REMOTE_ADDR"] = "203.0.113.7"
    assert right.get("/api/documents/").status_code == 429
    # Another address is not affected.
    elsewhere = api_client_for(personas.staff_a)
    elsewhere.defaults["REMOTE_ADDR"] = "198.51.100.2"
    assert elsewhere.get("/api/documents/").status_code == 200


def test_a_forged_forwarded_for_header_does_not_make_a_new_client(rates, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    rates(failed_auth="3/minute")
    codes = [
        wrong_token_client().get("/api/documents/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(6)
    ]
    assert codes == [401] * 3 + [429] * 3


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(rates, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    rates(failed_auth="2/minute")
    proxy = wrong_token_client(address="10.0.0.1")
    first = [
        proxy.get("/api/documents/", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code
        for _ in range(3)
    ]
    other = proxy.get("/api/documents/", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code
    assert first == [401, 401, 429]
    assert other == 401


def test_a_user_over_the_rate_gets_429_in_the_error_shape(rates, personas):
    rates(user="5/minute")
    client = api_client_for(personas.staff_a)
    codes = [client.get("/api/documents/").status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    body = client.get("/api/documents/").json()
    assert body["error"]["code"] == "throttled"
    assert "available in" in body["error"]["message"]
    # The budget is the user's: another user is served.
    assert api_client_for(personas.staff_b).get("/api/documents/").status_code == 200


def test_uploads_have_a_budget_of_their_own(rates, personas, isolated_queue):
    rates(user="100/minute", ingest="2/minute")
    client = api_client_for(personas.staff_a)

    notes = iter(range(3))

    def upload():
        # Different bytes each time: the same file twice is answered as a duplicate (200).
        handle = io.BytesIO(f"A short note about tides, number {next(notes)}.\n".encode())
        handle.name = "note.txt"
        return client.post("/api/ingest/", {"file": handle}, format="multipart").status_code

    assert [upload(), upload(), upload()] == [202, 202, 429]
    # Reading is still allowed.
    assert client.get("/api/documents/").status_code == 200


def test_anonymous_requests_are_throttled_per_address(rates):
    rates(anon="2/minute")
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    codes = [client.get("/api/schema/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
