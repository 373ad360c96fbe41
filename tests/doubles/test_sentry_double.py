"""The Sentry double records what sentry-sdk really sends: gzipped envelopes with event items."""

from __future__ import annotations

import json

import httpx
import sentry_sdk

from tests.doubles.sentry import SentryDouble, parse_envelope


def test_it_records_an_event_the_sdk_sends(sentry_double):
    # A client of our own in an isolation scope, so the process-wide Sentry setup is untouched.
    client = sentry_sdk.Client(dsn=sentry_double.dsn, default_integrations=False)
    with sentry_sdk.isolation_scope() as scope:
        scope.set_client(client)
        scope.set_tag("document", "d-1")
        try:
            raise RuntimeError("the parser broke")
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
    client.flush(timeout=5)
    client.close()

    assert sentry_double.exception_types() == ["RuntimeError"]
    event = sentry_double.events[0]
    assert event["exception"]["values"][-1]["value"] == "the parser broke"
    assert event["tags"]["document"] == "d-1"
    request = sentry_double.requests[0]
    assert request.path == "/api/42/envelope/"
    assert request.headers["content-encoding"] == "gzip"


def test_only_event_items_count_as_events(sentry_double):
    envelope = b"\n".join(
        [
            json.dumps({"event_id": "e1"}).encode(),
            json.dumps({"type": "client_report"}).encode(),
            json.dumps({"discarded_events": []}).encode(),
            json.dumps({"type": "event", "length": 18}).encode(),
            b'{"message": "hi"} ',  # 18 bytes, a length-delimited payload
        ]
    )
    r = httpx.post(
        f"{sentry_double.url}/api/42/envelope/",
        content=envelope,
        headers={"X-Sentry-Auth": "Sentry sentry_key=publickey, sentry_version=7"},
    )
    assert r.status_code == 200
    assert sentry_double.events == [{"message": "hi"}]
    assert [h["type"] for h, _ in sentry_double.items] == ["client_report", "event"]


def test_a_wrong_key_or_project_is_refused(sentry_double):
    url = f"{sentry_double.url}/api/42/envelope/"
    assert httpx.post(url, content=b"{}\n").status_code == 401
    other = f"{sentry_double.url}/api/7/envelope/"
    auth = {"X-Sentry-Auth": "Sentry sentry_key=publickey"}
    assert httpx.post(other, content=b"{}\n", headers=auth).status_code == 403
    assert sentry_double.events == []


def test_the_dsn_names_the_public_key_and_project():
    with SentryDouble() as double:
        assert double.dsn == f"http://publickey@127.0.0.1:{double.port}/42"


def test_parse_envelope_reads_newline_and_length_delimited_items():
    header, items = parse_envelope(
        b'{"a":1}\n{"type":"event"}\n{"x":1}\n{"type":"t","length":2}\nab'
    )
    assert header == {"a": 1}
    assert items == [({"type": "event"}, b'{"x":1}'), ({"type": "t", "length": 2}, b"ab")]
