"""The Gemini path measured against its quota (issue 11, item 7).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bo_bench_quota \\
        .venv/bin/python bench/bench_gemini_quota.py [--minutes 4] [--rpm 3000] [--tpm 300000]

What runs: the production code, unchanged, in one real ``celery worker`` with four prefork
processes, on PostgreSQL (the database DATABASE_URL names: created if missing, migrated; use
a scratch database) and a private ``redis-server`` (the broker, and the counters of the shared
rate limiter). Embeddings go to the Gemini double with 300 ms of latency per request and
per-minute quotas of ``--rpm`` requests (one per text) and ``--tpm`` input tokens, on the
paid tier's names; vectors to the Pinecone double, whose reads lag writes by 2-3 s. The
documents are the end-to-end bench set (the corpus' text PDFs and Word files, 49 files,
about 370,000 tokens by our estimate), uploaded once per tenant into as many tenants as it
takes to keep the quota busy for ``--minutes`` (each tenant has its own embedding cache, so
every copy costs real requests).

What is reported (and written to bench/results/gemini_quota.json):

* the share of the binding quota used: tokens (or texts) the double accepted in each whole
  minute of the busy period -- from the first request to the moment less than a minute's
  quota of work was left -- divided by the quota (at most 1.0 under a 60 s moving window),
  and their mean; the same for the other quota;
* documents failed, 429 answers from the double, and attempt-log entries of kind
  ``rate_limited`` (a 429 that reached a document's attempt log as a failure);
* then every document is reprocessed and the embedding requests that costs are counted (the
  embedding cache: zero expected).

The target of the issue: at least 90 % of the binding quota over several minutes, no failed
document, no 429 in an attempt log.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_file import write_result  # noqa: E402

LEFT_OUT = {"synthetic-concat-607p.pdf", "freeculture.pdf"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_files(corpus: Path) -> list[Path]:
    """The end-to-end bench's set: the text PDFs and Word files of the manifest in which our
    extractor finds text (a file that fails for want of text would count as a failure)."""
    from documents.errors import PermanentError
    from documents.pipeline.extract import DOCX, PDF, extract_text
    from documents.pipeline.types import ExtractOptions

    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    files, seen = [], set()
    for row in rows:
        name, kind = row["file"], row["kind"]
        if name in seen or name in LEFT_OUT:
            continue
        if kind.startswith("text-pdf") or kind.startswith("docx"):
            seen.add(name)
            path = corpus / name
            content_type = PDF if path.suffix.lower() == ".pdf" else DOCX
            try:
                for _ in extract_text(
                    path, content_type=content_type, options=ExtractOptions()
                ).pages:
                    pass
            except PermanentError:
                continue
            files.append(path)
    return files


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class Sampler(threading.Thread):
    """Reads the Gemini double's counters once a second: (time, tokens, texts, 429s)."""

    def __init__(self, gemini):
        super().__init__(daemon=True)
        self.gemini = gemini
        self.samples: list[tuple[float, int, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            refused = sum(1 for r in self.gemini.embed_requests if r.status == 429)
            self.samples.append(
                (
                    time.monotonic(),
                    self.gemini.tokens_embedded,
                    self.gemini.texts_embedded,
                    refused,
                )
            )
            self.stop.wait(1.0)


def busy_period(samples, quota: int, index: int) -> tuple[float, float]:
    """From the first accepted request to the moment less than a minute's ``quota`` of work
    was left (the tail, where the workers run out of documents)."""
    used = [(sample[0], sample[index]) for sample in samples]
    start = next(t for t, n in used if n > 0) - 1.0
    total = used[-1][1]
    end = next(t for t, n in used if n >= total - quota)
    return start, end


def shares(samples, quota: int, index: int, period: tuple[float, float]) -> dict:
    """Usage of one budget (index 1: tokens, 2: texts) against ``quota`` per minute, in each
    whole minute of ``period``: what a moving window of 60 s allows is at most 1.0 in each."""
    used = [(sample[0], sample[index]) for sample in samples]

    def used_by(moment: float) -> int:
        before = [n for t, n in used if t <= moment]
        return before[-1] if before else 0

    start, end = period
    minutes = []
    t = start
    while t + 60 <= end:
        minutes.append(round((used_by(t + 60) - used_by(t)) / quota, 3))
        t += 60
    return {
        "per_minute": minutes,
        "mean": round(sum(minutes) / len(minutes), 3) if minutes else None,
        "lowest": min(minutes) if minutes else None,
        "total": used[-1][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--tpm", type=int, default=300_000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tokens-per-copy", type=int, default=370_000)
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database (it is migrated).")
    ensure_database(database_url)
    work = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=work,
    )

    from tests.doubles.gemini import GeminiDouble
    from tests.doubles.pinecone import PineconeDouble

    gemini = GeminiDouble(
        latency=args.latency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        free_tier=False,
    ).start()
    pinecone = PineconeDouble(
        dimension=768, lag_seconds=2.0, lag_jitter=1.0, seed=7, latency=0.05
    ).start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "VAR_DIR": str(work / "var"),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CELERY_TASK_DEFAULT_QUEUE": "celery",
        "EMBEDDER": "gemini",
        "GEMINI_API_KEY": GeminiDouble.API_KEY,
        "GEMINI_BASE_URL": gemini.url,
        "GEMINI_REQUESTS_PER_MINUTE": str(args.rpm),
        "GEMINI_TOKENS_PER_MINUTE": str(args.tpm),
        "VECTOR_STORE": "pinecone",
        "PINECONE_API_KEY": PineconeDouble.API_KEY,
        "PINECONE_INDEX_HOST": pinecone.url,
        "CELERY_WORKER_CONCURRENCY": str(args.concurrency),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from documents import services
    from documents.models import DeletedDocument, Document, EmbeddingCacheEntry, Status, Tenant

    call_command("migrate", verbosity=0)
    # A clean slate: an earlier run's cached vectors would answer this run's chunks.
    Document.objects.all().delete()
    DeletedDocument.objects.all().delete()
    EmbeddingCacheEntry.objects.all().delete()
    Tenant.objects.all().delete()

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "worker",
            "--pool=prefork",
            f"--concurrency={args.concurrency}",
            "--loglevel=WARNING",
            "-Q",
            "celery",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=ROOT,
        stdout=open(work / "worker.log", "ab"),  # noqa: SIM115 - lives as long as the worker
        stderr=subprocess.STDOUT,
    )
    sampler = Sampler(gemini)
    try:
        files = bench_files(args.corpus)
        copies = max(1, math.ceil(args.minutes * args.tpm / args.tokens_per_copy) + 1)
        print(f"{len(files)} files x {copies} tenants; quota {args.rpm} RPM, {args.tpm:,} TPM")
        time.sleep(5)  # the worker's children start
        sampler.start()
        started = time.monotonic()
        for n in range(copies):
            tenant, _ = Tenant.objects.get_or_create(slug=f"bench-{n}", defaults={"name": f"B{n}"})
            for path in files:
                services.document_create(
                    tenant=tenant,
                    uploaded_file=SimpleUploadedFile(path.name, path.read_bytes()),
                )
        total = Document.objects.count()
        while Document.objects.filter(status=Status.PROCESSING).exists():
            time.sleep(2)
            done = Document.objects.exclude(status=Status.PROCESSING).count()
            print(f"\r{done}/{total} documents, {gemini.tokens_embedded:,} tokens", end="")
        elapsed = time.monotonic() - started
        print()
        sampler.stop.set()
        sampler.join()

        documents = list(Document.objects.all())
        failed = [d for d in documents if d.status == Status.FAILED]
        rate_limited_entries = sum(
            1 for d in documents for e in d.attempt_log if e.get("kind") == "rate_limited"
        )
        refused = sum(1 for r in gemini.embed_requests if r.status == 429)
        final = sampler.samples[-1]
        binding, index, quota = (
            ("tokens", 1, args.tpm)
            if final[1] / args.tpm >= final[2] / args.rpm
            else ("texts", 2, args.rpm)
        )
        period = busy_period(sampler.samples, quota, index)
        tokens = shares(sampler.samples, args.tpm, 1, period)
        texts = shares(sampler.samples, args.rpm, 2, period)

        # Reprocess everything: the embedding cache should answer every chunk.
        requests_before = len(gemini.embed_requests)
        services.documents_reprocess(queryset=Document.objects.all())
        while Document.objects.filter(status=Status.PROCESSING).exists():
            time.sleep(2)
        reprocess_requests = len(gemini.embed_requests) - requests_before
        reprocessed = list(Document.objects.filter(status=Status.COMPLETED))
        from_cache = sum(d.chunks_from_cache for d in reprocessed)
        chunks = sum(d.chunk_count for d in reprocessed)

        result = {
            "quota": {"requests_per_minute": args.rpm, "tokens_per_minute": args.tpm},
            "latency_s": args.latency,
            "worker_processes": args.concurrency,
            "documents": len(documents),
            "tenants": copies,
            "seconds": round(elapsed, 1),
            "busy_seconds": round(period[1] - period[0], 1),
            "binding": binding,
            "tokens": tokens,
            "texts": texts,
            "failed_documents": len(failed),
            "failures": sorted({d.failure_message for d in failed})[:5],
            "gemini_429s": refused,
            "rate_limited_attempt_log_entries": rate_limited_entries,
            "reprocess": {
                "embedding_requests": reprocess_requests,
                "chunks": chunks,
                "chunks_from_cache": from_cache,
            },
            "load_average": os.getloadavg(),
        }
        write_result("gemini_quota", result)
        bound = tokens if binding == "tokens" else texts
        print(
            f"binding quota: {binding}; share per whole minute of the busy period "
            f"({round(period[1] - period[0])} s): {bound['per_minute']}, mean {bound['mean']}"
        )
        other = texts if binding == "tokens" else tokens
        print(
            f"the other quota: mean {other['mean']}; failed documents {len(failed)}; "
            f"429s at the double {refused}; rate-limited attempt-log entries "
            f"{rate_limited_entries}"
        )
        print(
            f"reprocess: {reprocess_requests} embedding requests, {from_cache}/{chunks} chunks "
            "from the cache"
        )
    finally:
        sampler.stop.set()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        gemini.stop()
        pinecone.stop()
        redis.terminate()
        redis.wait(timeout=10)


if __name__ == "__main__":
    main()
