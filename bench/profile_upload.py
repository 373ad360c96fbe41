"""Where one upload request's time goes, on PostgreSQL and Redis, in-process.

    .venv/bin/python bench/profile_upload.py [--uploads 40] [--bytes 1048576]
        [--database-url postgres://…] [--broker-url redis://…]

Builds one multipart body per upload (1 MB of English-looking text, different bytes each
time, as ``bench_upload_latency.py`` sends) and hands it to Django's WSGI handler through the
test client's ``generic`` call, so the request goes through the middleware, DRF's
authentication and throttles, the multipart parser and its upload handlers, and
``services.document_upload`` exactly as under gunicorn; only the socket is missing. Each
request runs under cProfile and ``CaptureQueriesContext``; the report gives the median wall
and CPU time of a request, the number of SQL queries, and the median time inside each of the
functions that matter (parsing the body with the handlers, hashing, sniffing, the preflight
pass and its estimate, the duplicate lookup, the storage write, the transaction, the audit
entry, publishing the message after commit). The messages go to a queue of this run's own
that no worker reads; it is purged afterwards, and the run's tenant, user and files are
removed. Writes bench/results/upload_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_upload_latency import _upload_body as text_body  # noqa: E402
from results_file import write_result  # noqa: E402
from services_env import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, drop_queue, ensure_database  # noqa: E402

# (label, file name suffix, function name) as cProfile names them.
SECTIONS = [
    ("parse the body (upload handlers)", "multipartparser.py", "parse"),
    ("sha256 after the parse", "uploads.py", "sha256_of"),
    ("validate + sniff", "uploads.py", "validate_upload"),
    ("preflight pass (structure)", "estimates.py", "inspect"),
    ("estimate from rates", "estimates.py", "preflight_record"),
    ("duplicate lookup", "intake.py", "_existing_copy"),
    ("storage write", "storage.py", "store_file"),
    ("row + transaction", "lifecycle.py", "create"),
    ("audit entry", "audit.py", "record"),
    ("publish after commit", "dispatch.py", "send_many"),
    ("authentication", "authentication.py", "authenticate"),
    ("throttles", "views.py", "check_throttles"),
    ("document_upload (all of intake)", "intake.py", "document_upload"),
]


def _upload_body(seed: int, size: int) -> bytes:
    data = text_body(seed)  # 1 MB
    return (data * (size // len(data) + 1))[:size]


def _section_seconds(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats
    out = dict.fromkeys((label for label, _, _ in SECTIONS), 0.0)
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.items():
        for label, suffix, name in SECTIONS:
            if function == name and filename.endswith(suffix):
                out[label] = max(out[label], cumulative)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--bytes", type=int, default=1024 * 1024)
    parser.add_argument(
        "--timer",
        choices=["cpu", "wall"],
        default="cpu",
        help="what the breakdown counts: CPU time of the request's thread (what sixteen "
        "requests on two cores compete for) or wall time (waits on PostgreSQL and Redis too)",
    )
    parser.add_argument("--top", type=int, default=0, help="also print the N hottest functions")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    args = parser.parse_args()

    queue = f"bench-profile-{os.getpid()}"
    var_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    env = {
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "VAR_DIR": str(var_dir),
        "EMBEDDER": "local",
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
    }
    os.environ.update(env)
    ensure_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from documents.models import Document, Membership, Tenant

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    tenant = Tenant.objects.create(name=f"bench profile {uuid.uuid4().hex[:8]}")
    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:12]}")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.STAFF)
    token = Token.objects.create(user=user).key
    client = Client()
    rows, sections = [], []
    aggregate = None
    try:
        # Two uploads to warm imports, the embedder's tokenizer and the rate cache; then the
        # timed requests alternate with and without cProfile, whose overhead falls hardest on
        # pure-Python loops: wall and CPU time come from the unprofiled ones, the breakdown
        # from the profiled ones.
        for i in range(-2, 2 * args.uploads):
            handle = io.BytesIO(_upload_body(1000 + i, args.bytes))
            handle.name = "notes.txt"
            body = encode_multipart(BOUNDARY, {"file": handle})
            profiled = i >= 0 and i % 2 == 1
            profile = cProfile.Profile(*([time.thread_time] if args.timer == "cpu" else []))
            with CaptureQueriesContext(connection) as queries:
                cpu0, t0 = time.thread_time(), time.perf_counter()
                if profiled:
                    profile.enable()
                response = client.generic(
                    "POST",
                    "/api/ingest/",
                    body,
                    content_type=MULTIPART_CONTENT,
                    HTTP_AUTHORIZATION=f"Token {token}",
                )
                if profiled:
                    profile.disable()
                wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
            if response.status_code != 202:
                raise SystemExit(f"upload answered {response.status_code}: {response.content}")
            if profiled:
                sections.append(_section_seconds(profile))
                aggregate = pstats.Stats(profile) if aggregate is None else aggregate.add(profile)
            elif i >= 0:
                rows.append(
                    {
                        "wall": wall,
                        "cpu": cpu,
                        "queries": len(queries),
                        "sql": [q["sql"][:100] for q in queries.captured_queries],
                    }
                )
    finally:
        Document.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(user=user).delete()
        tenant.delete()
        user.delete()
        drop_queue(args.broker_url, queue, {**os.environ, **env})
        shutil.rmtree(var_dir, ignore_errors=True)

    def med(key, of=rows):
        return round(statistics.median(r[key] for r in of) * 1000, 2)

    result = {
        "uploads": len(rows),
        "bytes": args.bytes,
        "load_average": os.getloadavg(),
        "wall_ms": med("wall"),
        "cpu_ms": med("cpu"),
        "queries": statistics.median(r["queries"] for r in rows),
        "sql": rows[-1]["sql"],
        "timer": args.timer,
        "sections_ms_under_cprofile": {label: med(label, sections) for label, _, _ in SECTIONS},
    }
    print(f"{len(rows)} uploads of {args.bytes} bytes, load {os.getloadavg()[0]:.1f}")
    print(f"request: wall {result['wall_ms']} ms, CPU {result['cpu_ms']} ms (medians)")
    print(f"SQL queries: {result['queries']}")
    for sql in result["sql"]:
        print("   ", sql)
    print(
        f"median {args.timer} time inside each part, under cProfile (which inflates Python loops):"
    )
    for label, value in result["sections_ms_under_cprofile"].items():
        print(f"  {label:<36} {value:>8} ms")
    if args.top:
        print(f"the {args.top} functions with the most time of their own, all profiled requests:")
        aggregate.sort_stats("tottime").print_stats(args.top)
    write_result("upload_profile", result)


if __name__ == "__main__":
    main()
