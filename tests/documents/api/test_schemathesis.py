"""schemathesis against /api/schema/, with every check it has, authenticated as a persona's
token, on the project's WSGI application served in-process by pytest-django's live server.

(Not through schemathesis's own WSGI transport: in 4.32.5 its `ignored_auth` check re-sends
requests with a `max_redirects` argument that werkzeug's test client refuses, so every
operation ends in a runtime error there.) The schema must describe every answer the API gives
(statuses, error shapes, content types, headers) and the API must take what the schema says it
takes and refuse what it says it refuses."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig
from schemathesis.core.file_samples import FILE_SAMPLES
from schemathesis.engine import Status, events, from_schema

pytestmark = pytest.mark.django_db(transaction=True)

# A run explores this many inputs per operation and phase: enough to cover every parameter's
# edge cases (the coverage phase draws those exhaustively), few enough for a quick suite.
MAX_EXAMPLES = 20
SEED = 20261201


def accepted_files():
    """What a valid upload is. The schema can say "a file" but not "a file whose bytes are a
    PDF, DOCX, text, Markdown or image", so positive inputs are drawn from files the API takes;
    negative ones (a missing file, bad fields) still come from the schema."""
    text = st.text(
        alphabet=st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]),
        min_size=1,
        max_size=400,
    ).map(str.encode)
    samples = st.sampled_from([FILE_SAMPLES["pdf"], FILE_SAMPLES["png"], FILE_SAMPLES["jpg"]])
    return st.one_of(text, samples)


@pytest.fixture
def binary_uploads_the_api_takes():
    schemathesis.openapi.format("binary", accepted_files())
    yield
    from schemathesis.specs.openapi.formats import unregister_string_format

    unregister_string_format("binary")


def run_schemathesis(base_url: str, token: str) -> list[str]:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Token {token}"},
            "workers": 1,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            # Every check schemathesis has, each with its default expectations.
            "checks": {"enabled": True},
            # The stateful phase chains calls (an upload, then its document and its file) with
            # valid data; invalid data is the coverage and fuzzing phases' job. Its negative
            # mode mutates multipart fields by type, e.g. a title sent as "6.06e+16", which
            # it then counts as a wrong type accepted, though every form value is text.
            "phases": {"stateful": {"generation": {"mode": "positive"}}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/", config=config)
    problems = []
    tested = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status != Status.SKIP:
            tested += 1

            if event.status in (Status.FAILURE, Status.ERROR):
                for checks in event.recorder.checks.values():
                    for check in checks:
                        if check.failure_info is not None:
                            failure = check.failure_info.failure
                            problems.append(
                                f"{event.phase.value} {event.label} [{check.name}]: "
                                f"{failure.title}\n{failure.message}\n"
                                f"{check.failure_info.code_sample}"
                            )
        elif isinstance(event, events.NonFatalError):
            problems.append(f"error in {event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    assert tested, "schemathesis ran no scenario"
    return problems


@pytest.fixture
def connections_closed_after_each_request(monkeypatch):
    """The live server keeps a client's connection alive between requests, and with it the
    request thread's database connection (CONN_MAX_AGE): one left open at the end keeps the
    test database from being dropped."""
    from django.db import connections

    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)


def test_schemathesis_finds_nothing_with_every_check_on(
    live_server,
    personas,
    binary_uploads_the_api_takes,
    connections_closed_after_each_request,
    isolated_queue,
    search_backends,
):
    # search_backends: searches embed the query through the Gemini double and query the
    # Pinecone double, which answer at once; the local model's first load can take longer
    # than schemathesis's 10 s read timeout on a busy machine.
    token = Token.objects.create(user=personas.staff_a)
    problems = run_schemathesis(live_server.url, token.key)
    assert not problems, "\n\n".join(dict.fromkeys(problems))
