"""Personas, factories and the real Celery worker processes the end-to-end tests use."""

from __future__ import annotations

import contextlib
import os

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.workers import WorkerProcess

pytest_plugins = ["tests.doubles.plugin"]


def pytest_collection_modifyitems(items):
    # Every test that needs a Celery worker runs on the same xdist node, so one worker
    # process (per configuration) serves them all instead of one per node.
    for item in items:
        if item.get_closest_marker("worker") or item.get_closest_marker("embedded"):
            item.add_marker(pytest.mark.xdist_group("celery-worker"))


class Personas:
    """Two tenants with an owner and a staff member each, an outsider and a superuser."""

    def __init__(self):
        self.tenant_a = TenantFactory(name="Acme", slug="acme")
        self.tenant_b = TenantFactory(name="Globex", slug="globex")
        self.owner_a = MembershipFactory(tenant=self.tenant_a, role="owner").user
        self.staff_a = MembershipFactory(tenant=self.tenant_a).user
        self.owner_b = MembershipFactory(tenant=self.tenant_b, role="owner").user
        self.staff_b = MembershipFactory(tenant=self.tenant_b).user
        self.outsider = UserFactory()
        self.superuser = UserFactory(is_superuser=True)


@pytest.fixture
def personas(db):
    return Personas()


def api_client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_for():
    return api_client_for


def _worker_env(extra: dict | None = None) -> dict:
    from django.db import connection

    env = os.environ.copy()
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def sentry_session_double():
    from tests.doubles.sentry import SentryDouble

    with SentryDouble() as double:
        yield double


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, sentry_session_double):
    """One real ``celery worker`` process (prefork) on the test database, for the session.

    It runs the production configuration: the local embedder, LanceDB, the local file
    storage of this test process, and reports to a loopback Sentry double."""
    with django_db_blocker.unblock():
        env = _worker_env({"SENTRY_DSN": sentry_session_double.dsn})
    worker = WorkerProcess(env=env, name="local")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def provider_doubles():
    """Session-wide Gemini and Pinecone doubles for the worker that uses the production
    clients; tests clear their faults and logs before use. Pinecone's reads lag its writes
    by 2-3 s (seeded), as the real service's do."""
    from tests.doubles.gemini import GeminiDouble
    from tests.doubles.pinecone import PineconeDouble

    lag = {"lag_seconds": 2.0, "lag_jitter": 1.0, "seed": 23}
    with GeminiDouble() as gemini, PineconeDouble(dimension=768, **lag) as pinecone:
        yield gemini, pinecone


@pytest.fixture(scope="session")
def celery_worker_remote(
    django_db_setup, django_db_blocker, sentry_session_double, provider_doubles
):
    """A second real worker process configured for production: Gemini and Pinecone (the
    doubles), on its own queue. In-task retry backoff is shortened to keep the suite fast;
    the 2-4-8 s schedule itself is checked in tests/documents/test_tasks.py."""
    gemini, pinecone = provider_doubles
    queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"] + "-remote"
    with django_db_blocker.unblock():
        env = _worker_env(
            {
                "SENTRY_DSN": sentry_session_double.dsn,
                "EMBEDDER": "gemini",
                "GEMINI_API_KEY": gemini.API_KEY,
                "GEMINI_BASE_URL": gemini.url,
                "VECTOR_STORE": "pinecone",
                "PINECONE_API_KEY": pinecone.API_KEY,
                "PINECONE_INDEX_HOST": pinecone.url,
                "PIPELINE_RETRY_BASE_SECONDS": "0.25",
                "CELERY_TASK_DEFAULT_QUEUE": queue,
            }
        )
    worker = WorkerProcess(env=env, name="remote", queue=queue)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def remote_queue(celery_worker_remote, settings):
    """Send this test's tasks to the production-configured worker."""
    from backoffice.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = celery_worker_remote.queue
    yield celery_worker_remote
    app.conf.task_default_queue = previous


@pytest.fixture
def isolated_queue():
    """Send this test's messages to a queue no worker reads, and drop them afterwards, so a
    test can look at what was queued without a session worker consuming it."""
    import uuid

    from backoffice.celery import app

    previous = app.conf.task_default_queue
    queue = f"isolated-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    yield queue
    app.conf.task_default_queue = previous
    # The queue may never have been declared: nothing to purge then.
    with app.connection_for_write() as conn, contextlib.suppress(Exception):
        conn.default_channel.queue_purge(queue)


@contextlib.contextmanager
def dedicated_worker(name: str, settings_env: dict, *, django_db_blocker, concurrency: int = 1):
    """A real worker of its own, on a queue of its own, started with ``settings_env`` on top
    of the session's (budgets set low, a tiny time limit), with this process's messages sent
    to its queue while the block runs. The worker sees the settings; this process keeps its
    own, so what the worker does with them is what is tested."""
    from backoffice.celery import app

    queue = f"{os.environ['CELERY_TASK_DEFAULT_QUEUE']}-{name}"
    with django_db_blocker.unblock():
        env = _worker_env({**settings_env, "CELERY_TASK_DEFAULT_QUEUE": queue})
    worker = WorkerProcess(env=env, name=name, queue=queue, concurrency=concurrency)
    worker.start()
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield worker
    finally:
        app.conf.task_default_queue = previous
        worker.stop()
