"""PostgreSQL and Redis for the benches that need them (upload latency, bulk actions).

Defaults keep the benches off the databases the tests and a running back-office use; pass
``--database-url`` / ``--broker-url`` (or set BENCH_DATABASE_URL / BENCH_BROKER_URL) to choose.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

# A DATABASE_URL makes settings demand a secret key of the deployment's own; a bench's
# processes share a random one for the run (they and their children inherit it).
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

DEFAULT_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backoffice_bench"
)
DEFAULT_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(server, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_queue(broker_url: str, queue: str, env: dict) -> None:
    """Empty a bench's own queue (``celery purge``) and remove the routing keys kombu keeps
    for it in Redis, so a bench leaves nothing behind in the broker."""
    import subprocess
    import sys
    from pathlib import Path

    import redis

    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "backoffice", "purge", "-f", "-Q", queue],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
    )
    client = redis.Redis.from_url(broker_url)
    for pattern in (f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"):
        for key in client.scan_iter(pattern):
            client.delete(key)
