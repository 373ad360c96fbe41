"""Upload latency while the workers embed: sixteen 1 MB uploads at once, web-server settings.

    .venv/bin/python bench/bench_upload_latency.py [--rounds 20] [--configs all|procfile]
        [--database-url postgres://…] [--broker-url redis://…]

On PostgreSQL and Redis (the production shape; the defaults are in bench/services_env.py and
the database is created if missing), with local files and the local MiniLM embedder, in a
temporary VAR_DIR:

1. migrates the database and creates a tenant, a user in it and the user's API token;
2. starts a real ``celery worker`` (prefork, concurrency 4, as the Procfile) on a queue of its
   own and queues eight copies of freeculture.pdf (352 pages, about 1,800 chunks each) through
   ``document_create``, then waits until the workers are embedding: from then on all four
   worker processes compete for the two cores for longer than the whole measurement lasts;
3. starts one gunicorn per web configuration (worker class, processes, threads), as the
   Procfile does, each on its own port; then, round after round, sends each configuration in
   turn (rotating the order) a burst of sixteen ``POST /api/ingest/`` with a 1 MB text file at
   once (sixteen client threads released together), then two uploads one at a time; every
   upload's first bytes are made unique, so none is answered as a duplicate. Before a
   configuration's turn the celery worker processes get that configuration's nice value (on
   every thread, and on the worker's session's autogroup, as ``documents/priority.py`` does
   at start; the worker has a session of its own, as under honcho). Taking turns round by
   round means every configuration meets the same load from the rest of the shared machine.
   Reports each configuration's median and 99th percentile, and the CPU the worker processes
   got during its bursts (cores' worth), which is what a lower priority costs the embedding;
4. stops everything, purges the queue, deletes the bench's tenants, documents and files, and
   writes bench/results/upload_latency.json (with the load average after each round).

The uploaded documents are queued behind the eight books and are never processed: the queue
is purged at the end. About 20 s per round with the six configurations, plus two minutes of set-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from results_file import write_result  # noqa: E402
from services_env import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, drop_queue, ensure_database  # noqa: E402

CONCURRENT = 16
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "if so no will more out up into do any your what some can only other new time could "
    "culture property law creative commons public domain copyright market"
)
UPLOAD_BYTES = 1024 * 1024
BOOK = "freeculture.pdf"
BOOKS_QUEUED = 8
WORKER_CONCURRENCY = 4

BASELINE = "sync x2 / workers nice 0 (old Procfile)"
SYNC2 = ["--workers", "2"]
SYNC4 = ["--workers", "4"]
GTHREAD2 = ["--workers", "2", "--worker-class", "gthread", "--threads", "4"]
GTHREAD4 = ["--workers", "4", "--worker-class", "gthread", "--threads", "4"]
# name: (gunicorn arguments, nice value of the celery worker processes)
CONFIGS = {
    BASELINE: (SYNC2, 0),
    "sync x2 / workers nice 19": (SYNC2, 19),
    "sync x4 / workers nice 19": (SYNC4, 19),
    "gthread 2x4 / workers nice 0": (GTHREAD2, 0),
    "gthread 2x4 / workers nice 10": (GTHREAD2, 10),
    "gthread 2x4 / workers nice 19": (GTHREAD2, 19),
    "gthread 4x4 / workers nice 19": (GTHREAD4, 19),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upload_body(seed: int) -> bytes:
    """1 MB of plain English-looking text, different for every upload."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS.split())
    out, size = [], 0
    while size < UPLOAD_BYTES:
        sentence = " ".join(rng.choice(words, 14)).capitalize() + ". "
        out.append(sentence)
        size += len(sentence)
    return "".join(out).encode()[:UPLOAD_BYTES]


class Stack:
    """The database, the worker and the web server the bench starts and stops."""

    def __init__(self, env: dict, var_dir: Path):
        self.env, self.var_dir = env, var_dir
        self.worker: subprocess.Popen | None = None
        self.webs: list[subprocess.Popen] = []

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, *args], env=self.env, cwd=ROOT, check=True)

    def start_worker(self) -> None:
        log = open(self.var_dir / "worker.log", "wb")  # noqa: SIM115 - lives as long as the worker
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "backoffice", "worker", "--pool=prefork"]
            + [f"--concurrency={WORKER_CONCURRENCY}", "--loglevel=INFO", "-Q"]
            + [self.env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"bench-upload-{os.getpid()}@%h"]
            + ["--without-gossip", "--without-mingle"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while b"ready." not in (self.var_dir / "worker.log").read_bytes():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.var_dir / "worker.log").read_text(errors="replace"))
            time.sleep(0.2)

    def worker_processes(self) -> list[int]:
        """The worker's main process and its pool processes."""
        pids = [self.worker.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.worker.pid:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def renice_worker(self, value: int) -> None:
        # Linux keeps a nice value per thread: torch's and ONNX Runtime's pool threads exist
        # already, so each is set; threads and processes made later inherit it. On a kernel
        # with autogroup the worker's session (it has one of its own, as under honcho) gets
        # the value too, as the worker does at start (documents/priority.py): otherwise the
        # nice value only ranks the worker's threads against each other.
        autogroup = Path(f"/proc/{self.worker.pid}/autogroup")
        if autogroup.exists():
            autogroup.write_text(f"{value}\n")
        for pid in self.worker_processes():
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.setpriority(os.PRIO_PROCESS, int(task.name), value)

    def worker_cpu_seconds(self) -> float:
        """CPU time of the worker's processes so far (all their threads, user and system)."""
        total = 0
        for pid in self.worker_processes():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def start_web(self, args: list[str], port: int) -> str:
        """Start gunicorn as the Procfile does (its timeouts), with ``args``; returns its base
        URL."""
        web = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "backoffice.wsgi"]
            + ["--bind", f"127.0.0.1:{port}", *procfile_web_timeouts(), *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.var_dir / "web.log", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self.webs.append(web)
        deadline = time.monotonic() + 120
        while True:  # listening is enough: the warm-up rounds load the rest
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                if web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.var_dir / "web.log").read_text(errors="replace"))
                time.sleep(0.2)

    def stop(self) -> None:
        for web in self.webs:
            if web.poll() is None:
                os.killpg(web.pid, signal.SIGTERM)
                web.wait(timeout=60)
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()


def set_up_django(env: dict):
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from documents.models import Membership, Tenant

    tenant = Tenant.objects.create(name=f"bench upload {uuid.uuid4().hex[:8]}")
    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:12]}")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.STAFF)
    return tenant, user, Token.objects.create(user=user).key


def queue_books(tenant, user, corpus: Path) -> list:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents.services import document_create

    data = (corpus / BOOK).read_bytes()
    return [
        document_create(
            tenant=tenant,
            uploaded_file=SimpleUploadedFile(BOOK, data, content_type="application/pdf"),
            uploaded_by=user,
            title=f"load {i}",
        ).pk
        for i in range(BOOKS_QUEUED)
    ]


def wait_until_embedding(ids: list, timeout: float = 300) -> None:
    from documents.models import Document

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stages = list(Document.objects.filter(pk__in=ids).values_list("stage", flat=True))
        if sum(s == "embedding" for s in stages) >= 2:
            return
        time.sleep(1)
    raise RuntimeError(f"the workers did not start embedding in {timeout:.0f} s: {stages}")


def forget(user) -> None:
    """Remove the rows the run made: its user (and token), tenant and documents. The files
    (the books and every upload, about 2 GB) go with the temporary VAR_DIR."""
    from documents.models import Document, Membership, Tenant

    tenants = list(Tenant.objects.filter(memberships__user=user))
    Document.objects.filter(tenant__in=tenants).delete()
    Membership.objects.filter(user=user).delete()
    Tenant.objects.filter(pk__in=[t.pk for t in tenants]).delete()
    user.delete()


def _unique(body: bytes) -> bytes:
    """``body`` with its first bytes made unique: the same bytes twice would be answered as a
    duplicate, without being stored or queued."""
    mark = f"Upload {uuid.uuid4().hex}. ".encode()
    return mark + body[len(mark) :]


class UploadFailed(Exception):
    """An upload that got no 202: refused, or its connection reset."""


def upload(session: requests.Session, url: str, token: str, body: bytes) -> float:
    body = _unique(body)
    start = time.perf_counter()
    response = session.post(
        url,
        headers={"Authorization": f"Token {token}"},
        files={"file": ("notes.txt", body, "text/plain")},
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    if response.status_code != 202:  # 200 would be a duplicate: nothing stored
        raise UploadFailed(f"upload answered {response.status_code}: {response.text[:300]}")
    return elapsed


def attempt(session: requests.Session, url: str, token: str, body: bytes) -> float | str:
    """An upload's seconds, or what went wrong: a failed upload is counted against its
    configuration, not allowed to end a run of many."""
    try:
        return upload(session, url, token, body)
    except (UploadFailed, requests.RequestException) as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


def _burst(url: str, token: str, sessions, bodies) -> list[float | str]:
    barrier = threading.Barrier(CONCURRENT)
    results: list[float | str] = [0.0] * CONCURRENT

    def one(i: int) -> None:
        barrier.wait()
        results[i] = attempt(sessions[i], url, token, bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--configs",
        default="all",
        help="'all', or names comma-separated ('baseline' and 'procfile' name the old and the "
        "current Procfile)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    args = parser.parse_args()
    aliases = {"baseline": BASELINE, "procfile": procfile_config()}
    if args.configs == "all":
        names = list(CONFIGS)
    else:
        names = list(dict.fromkeys(aliases.get(n, n) for n in args.configs.split(",")))

    var_dir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "VAR_DIR": str(var_dir),
        "CELERY_TASK_DEFAULT_QUEUE": f"bench-upload-{os.getpid()}",
        "EMBEDDER": "local",
        "VECTOR_STORE": "lancedb",
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        # The throttles still run (their cache reads and writes are part of every upload),
        # at rates a bench's hundreds of uploads a minute stay under.
        "API_THROTTLE_USER": "1000000/minute",
        "API_THROTTLE_INGEST": "1000000/minute",
    }
    stack = Stack(env, var_dir)
    results: dict[str, dict] = {}
    user = None
    try:
        ensure_database(args.database_url)
        stack.run("manage.py", "migrate", "--noinput", "-v", "0")
        tenant, user, token = set_up_django(env)
        stack.start_worker()
        books = queue_books(tenant, user, args.corpus)
        wait_until_embedding(books)
        bodies = [_upload_body(i) for i in range(CONCURRENT)]
        servers = {}
        for name in names:  # all up at once; a server nobody calls costs nothing
            servers[name] = stack.start_web(CONFIGS[name][0], _free_port())
        sessions = [requests.Session() for _ in range(CONCURRENT)]
        samples = {
            n: {"concurrent": [], "one": [], "failed": [], "cpu": 0.0, "wall": 0.0} for n in names
        }
        loads = []
        for round_no in range(-2, args.rounds):  # two rounds of warm-up, not recorded
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                stack.renice_worker(CONFIGS[name][1])
                url = f"{servers[name]}/api/ingest/"
                cpu0, t0 = stack.worker_cpu_seconds(), time.monotonic()
                burst = _burst(url, token, sessions, bodies)
                cpu, wall = stack.worker_cpu_seconds() - cpu0, time.monotonic() - t0
                one = [attempt(sessions[0], url, token, bodies[i]) for i in range(2)]
                if round_no >= 0:
                    sample = samples[name]
                    sample["concurrent"] += [x for x in burst if isinstance(x, float)]
                    sample["one"] += [x for x in one if isinstance(x, float)]
                    sample["failed"] += [x for x in burst + one if isinstance(x, str)]
                    sample["cpu"] += cpu
                    sample["wall"] += wall
                time.sleep(0.3)
            loads.append(os.getloadavg()[0])
            print(f"round {round_no + 1} done (load {loads[-1]:.1f})", flush=True)
        for name in names:
            c, one = samples[name]["concurrent"], samples[name]["one"]
            failed = samples[name]["failed"]
            if not c or not one:
                results[name] = {"failed_uploads": len(failed), "first_failure": failed[0]}
                print(f"{name}: every upload failed, e.g. {failed[0]}", flush=True)
                continue
            results[name] = {
                "gunicorn": CONFIGS[name][0],
                "worker_nice": CONFIGS[name][1],
                "concurrent_requests": len(c),
                "concurrent_p50_ms": ms(c, 50),
                "concurrent_p99_ms": ms(c, 99),
                "concurrent_max_ms": ms(c, 100),
                "one_at_a_time_p50_ms": ms(one, 50),
                "worker_cores_used": round(samples[name]["cpu"] / samples[name]["wall"], 2),
                # the percentiles are of the uploads that were answered 202
                "failed_uploads": len(failed),
                "first_failure": failed[0] if failed else None,
            }
            r = results[name]
            print(
                f"{name}: sixteen at once p50 {r['concurrent_p50_ms']} ms, "
                f"p99 {r['concurrent_p99_ms']} ms (max {r['concurrent_max_ms']}); one at a "
                f"time p50 {r['one_at_a_time_p50_ms']} ms; workers used "
                f"{r['worker_cores_used']} cores during the bursts; {len(failed)} uploads failed"
                + (f" (first: {failed[0]})" if failed else ""),
                flush=True,
            )
    finally:
        stack.stop()
        drop_queue(args.broker_url, env["CELERY_TASK_DEFAULT_QUEUE"], env)
        if user is not None:
            forget(user)
        shutil.rmtree(var_dir, ignore_errors=True)
    write_result(
        "upload_latency",
        {
            "database": "PostgreSQL",
            "broker": "Redis",
            "upload_bytes": UPLOAD_BYTES,
            "concurrent": CONCURRENT,
            "rounds": args.rounds,
            "worker_concurrency": WORKER_CONCURRENCY,
            "cpus": os.cpu_count(),
            "procfile": procfile_config(),
            "load_average_1min_per_round": [round(x, 1) for x in loads],
            "configs": results,
        },
    )


def _web_shape(args: list[str]) -> dict:
    """Worker class, processes and threads from gunicorn's command-line options."""
    shape = {"--workers": "1", "--worker-class": "sync", "--threads": "1"}
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in shape:
            shape[name] = value or args[i + 1]
    return shape


def procfile_web_timeouts() -> list[str]:
    """The Procfile web line's --timeout and --keep-alive, given to every configuration: a
    keep-alive shorter than the pause between bursts makes the server close connections the
    client is about to reuse, and those uploads fail with a reset."""
    web = shlex.split(_procfile_lines()["web"])
    return [
        part
        for option in ("--timeout", "--keep-alive")
        if option in web
        for part in (option, web[web.index(option) + 1])
    ]


def _procfile_lines() -> dict[str, str]:
    return dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line
    )


def procfile_config() -> str:
    """The CONFIGS entry that the Procfile's web and worker lines correspond to."""
    lines = _procfile_lines()
    web, worker = shlex.split(lines["web"]), shlex.split(lines["worker"])
    nice = int(worker[worker.index("-n") + 1]) if worker[0] == "nice" else 0
    for name, (gunicorn_args, config_nice) in CONFIGS.items():
        if config_nice == nice and _web_shape(gunicorn_args) == _web_shape(web):
            return name
    raise SystemExit(f"no configuration here matches the Procfile: {web} / {worker}")


if __name__ == "__main__":
    main()
