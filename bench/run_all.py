"""Run every benchmark in sequence and print one table of the headline figures.

    .venv/bin/python bench/run_all.py [--corpus ../shared/corpus] [--runs 3] [--no-llamaindex]
        [--no-services] [--database-url postgres://…] [--broker-url redis://…]

With BENCH_QUOTA_DATABASE_URL=postgres://.../<scratch database> it also runs
bench_gemini_quota.py (about ten minutes; it needs PostgreSQL and redis-server).

(`make bench` runs this.) Each bench runs in its own process, writes bench/results/<name>.json,
and this script reads those files back for the summary, which it also writes to
bench/results/summary.json. The end-to-end bench sets up LlamaIndex's separate virtualenv
(var/bench-llamaindex-venv) the first time, which takes a few minutes; if that fails it says
why and reports only our ratio to the embedding bound. The upload-latency and bulk-action
benches need PostgreSQL and Redis (defaults in bench/services_env.py; ``--no-services`` leaves
them out). About 30-40 minutes on 2 cores, plus about 5 for bench_quality.py (OCR of the
corpus scans) and 10 for bench_tables.py (pdfplumber on every table page, --runs times).
The retrieval bench (issue 12, docs/retrieval.md) comes last; its PostgreSQL rows use
BENCH_DATABASE_URL. bench_int8_recall.py follows it (the int8 embedder's recall against
torch's on the same sets; a few minutes to embed the tenant with int8 the first time), then
bench_context.py (chunks embedded with their title and heading; a few minutes the first time).
bench_preflight.py runs the whole corpus (OCR and embedding included), 10-30 minutes more;
bench_hostile_worker.py (the hostile corpus through a real worker) a few.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import RESULTS, write_result
from services_env import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-llamaindex", action="store_true")
    parser.add_argument("--no-services", action="store_true", help="skip the PostgreSQL benches")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument(
        "--summary-only", action="store_true", help="print the table from the last results"
    )
    args = parser.parse_args()
    if args.summary_only:
        previous = _read("summary")
        print_summary(summarise(previous.get("walls", {})))
        return
    corpus = ["--corpus", str(args.corpus)]
    runs = ["--runs", str(args.runs)]
    benches = [
        ("extract", ["bench_extract.py", *corpus]),
        ("chunk_embed", ["bench_chunk_embed.py", *corpus, *runs]),
        (
            "end_to_end",
            ["bench_end_to_end.py", *corpus, *runs]
            + (["--no-llamaindex"] if args.no_llamaindex else []),
        ),
        ("memory", ["bench_memory.py", *corpus, *runs]),
        ("quality", ["bench_quality.py", *corpus]),
        ("tables", ["bench_tables.py", *corpus, *runs]),
        ("onnx", ["bench_onnx.py", *corpus, "--runs", str(min(args.runs, 2))]),
        (
            "embedding_threads",
            ["bench_embedding_threads.py", *corpus, "--runs", str(min(args.runs, 2))],
        ),
        # each hostile file's extraction against the README's stated peak (exits 1 over it)
        ("hostile", ["bench_hostile.py"]),
        (
            "retrieval",
            ["bench_retrieval.py", *corpus] + (["--no-llamaindex"] if args.no_llamaindex else []),
        ),
        # after the retrieval bench: it reuses that bench's torch vectors
        ("int8_recall", ["bench_int8_recall.py", *corpus]),
        # after int8_recall: it reuses that bench's int8 vectors of the plain chunk texts
        ("context", ["bench_context.py", *corpus]),
        ("preflight", ["bench_preflight.py", *corpus]),
        # the hostile corpus through a real worker on the embedded defaults (a few minutes)
        ("hostile_worker", ["bench_hostile_worker.py", *corpus]),
    ]
    if not args.no_services:
        services = ["--database-url", args.database_url, "--broker-url", args.broker_url]
        benches += [
            (
                "upload_latency",
                ["bench_upload_latency.py", *corpus, *services, "--configs", "baseline,procfile"],
            ),
            ("bulk_actions", ["bench_bulk_actions.py", *services, "--runs", "1"]),
        ]
    # The Gemini quota bench needs PostgreSQL (and starts its own Redis): run it when a
    # PostgreSQL DATABASE_URL names a scratch database for it.
    if os.environ.get("BENCH_QUOTA_DATABASE_URL", "").startswith("postgres"):
        benches.append(("gemini_quota", ["bench_gemini_quota.py", *corpus]))
    walls: dict[str, float] = {}
    failed: list[str] = []
    for name, command in benches:
        print(f"\n=== {name} (load {_load()}) ===", flush=True)
        start = time.perf_counter()
        env = dict(os.environ)
        if name == "gemini_quota":
            env["DATABASE_URL"] = env["BENCH_QUOTA_DATABASE_URL"]
        code = subprocess.call(
            [sys.executable, str(ROOT / "bench" / command[0]), *command[1:]], env=env
        )
        walls[name] = round(time.perf_counter() - start, 1)
        if code != 0:
            failed.append(f"{name} (exit {code})")

    summary = summarise(walls)
    summary["failed"] = failed
    write_result("summary", summary)
    print_summary(summary)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        sys.exit(1)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _read(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def summarise(walls: dict) -> dict:
    rows: list[tuple[str, str]] = []
    (
        extract,
        chunk_embed,
        e2e,
        memory,
        quality,
        tables,
        onnx,
        upload,
        bulk,
        quota,
        retrieval,
        preflight,
        hostile_worker,
    ) = (
        _read(n)
        for n in (
            "extract",
            "chunk_embed",
            "end_to_end",
            "memory",
            "quality",
            "tables",
            "onnx",
            "upload_latency",
            "bulk_actions",
            "gemini_quota",
            "retrieval",
            "preflight",
            "hostile_worker",
        )
    )
    if extract:
        t = extract["text_layer"]
        rows.append(
            (
                f"extraction, {t['files']} text PDFs / {t['pages']} pages",
                f"{t['pypdfium2_pages_per_s']} pages/s vs pdfplumber "
                f"{t['pdfplumber_pages_per_s']}: {t['ratio']}x",
            )
        )
        if "ocr" in extract:
            o = extract["ocr"]
            rows.append(
                (
                    "OCR, 200 DPI",
                    f"{o['parallel_1_s_per_page']} s/page (1 at a time), "
                    f"{o['parallel_2_s_per_page']} s/page (2 in parallel)",
                )
            )
    if chunk_embed:
        c, e = chunk_embed["chunking"], chunk_embed["embedding"]
        rows.append(("chunking 256/32", f"{c['tokens_per_second']:,} tokens/s"))
        rows.append(
            (
                f"embedding, MiniLM batch {e['batch_size']}",
                f"{e['chunks_per_second']} chunks/s (~{e['tokens_per_chunk_mean']} tokens)",
            )
        )
    if e2e:
        m = e2e["median"]
        head = f"end to end, {e2e['documents']} docs / {e2e['pages']} pages / {e2e['chunks']} ch"
        o = m["ours"]
        rows.append(
            (
                head,
                f"{o['docs_per_min']} docs/min, {o['pages_per_min']} pages/min ({o['seconds']} s)",
            )
        )
        rows.append(
            (
                "  ratio bound / end to end",
                f"{m['ratio_bound_over_ours']} (bound {m['bound']['seconds']} s, "
                f"{m['bound']['chunks_per_s']} chunks/s); target >= 0.95",
            )
        )
        rows.append(
            (
                "  stricter bound / end to end",
                f"{m['ratio_bound_own_over_ours']} (our batching over all chunks at once, "
                f"{m['bound_own']['seconds']} s)",
            )
        )
        if "ours_batched" in m:
            v = m["ours_batched"]
            rows.append(
                (
                    "  batches across documents",
                    f"{v['docs_per_min']} docs/min ({v['seconds']} s); stricter bound / it "
                    f"{m['ratio_bound_own_over_ours_batched']} (target >= 0.95), bound / it "
                    f"{m['ratio_bound_over_ours_batched']}",
                )
            )
        for key, label in (
            ("ours_readahead", "  reading the next group while embedding"),
            ("ours_pool", "  the worker's pool of processes"),
        ):
            if key in m:
                v = m[key]
                rows.append(
                    (
                        label,
                        f"{v['docs_per_min']} docs/min ({v['seconds']} s); stricter bound / it "
                        f"{m[f'ratio_bound_own_over_{key}']}",
                    )
                )
        if "ours_stream" in m:
            v = m["ours_stream"]
            rows.append(
                (
                    "  prototype: extract+chunk in a thread",
                    f"{v['docs_per_min']} docs/min ({v['seconds']} s), ratio "
                    f"{m['ratio_bound_over_ours_stream']}",
                )
            )
        if "llamaindex" in m:
            li = m["llamaindex"]
            rows.append(
                (
                    "  LlamaIndex IngestionPipeline",
                    f"{li['docs_per_min']} docs/min ({li['seconds']} s), ratio to its bound "
                    f"{m['llamaindex_ratio_own_bound']}; ours/LlamaIndex time "
                    f"{m['ours_over_llamaindex_seconds']}"
                    + (
                        f", across documents/LlamaIndex {m['ours_batched_over_llamaindex_seconds']}"
                        if "ours_batched_over_llamaindex_seconds" in m
                        else ""
                    )
                    + (
                        f", streamed/LlamaIndex {m['ours_stream_over_llamaindex_seconds']}"
                        if "ours_stream_over_llamaindex_seconds" in m
                        else ""
                    ),
                )
            )
        else:
            rows.append(("  LlamaIndex", e2e.get("llamaindex_status", "not run")))
    if extract:
        mem = extract["memory"]
        rows.append(
            (
                f"peak RSS 607 p vs unrelated {mem['pipeline']['short_pages']} p",
                f"pipeline {mem['pipeline']['long_peak_rss_mb']}/"
                f"{mem['pipeline']['short_peak_rss_mb']} MB = {mem['pipeline']['ratio']}; "
                f"text layer {mem['text_layer_only']['ratio']}",
            )
        )
    if memory:
        for mode in ("pipeline", "text_layer_only", "text_layer_no_tables", "to_chunks"):
            if mode not in memory:
                continue
            r = memory[mode]
            rows.append(
                (
                    f"peak RSS 607 p vs its first 20 p, {mode}",
                    f"{r['long_peak_rss_mb']}/{r['short_peak_rss_mb']} MB = {r['ratio']} "
                    f"(limit {memory['limit']})",
                )
            )
    if quality:
        t = quality["text_layers"]
        rows.append(
            (
                f"garbage scores, {t['pages']} corpus pages",
                f"{len(t['pages_at_or_above_threshold'])} at or above {t['threshold']}; "
                f"scoring costs {t['cost']['ratio']}x reading the text layer",
            )
        )
        if "ocr" in quality:
            flagged = len(quality["ocr"]["flagged"])
            rows.append(
                (
                    f"OCR confidence, {len(quality['ocr']['pages'])} corpus OCR pages",
                    f"{flagged} below {quality['ocr']['threshold']}",
                )
            )
    if tables:
        b, a = tables["totals"]["before"], tables["totals"]["after"]
        s, d = tables["pdf_seconds"], tables["detection"]
        rows.append(
            (
                f"table rows whole with header, {len(tables['files'])} table files",
                f"{b['whole_with_header']} -> {a['whole_with_header']} of {a['rows']} "
                f"(whole: {b['whole']} -> {a['whole']})",
            )
        )
        rows.append(
            (
                "  PDF table files, tables off / on",
                f"{s['tables_off']} s / {s['tables_on']} s ({s['table_pages']} table pages); "
                f"page check {d['check_ms_per_page']} ms/page = {d['ratio']}x reading the text",
            )
        )
    rows += _onnx_rows(onnx) + _upload_rows(upload) + _bulk_rows(bulk)
    if quota:
        bound = quota[quota["binding"]]
        rows.append(
            (
                f"Gemini quota, {quota['worker_processes']} processes, {quota['documents']} docs",
                f"{quota['binding']} per minute {bound['per_minute']} (mean {bound['mean']}); "
                f"failed {quota['failed_documents']}, 429s {quota['gemini_429s']}, in attempt "
                f"logs {quota['rate_limited_attempt_log_entries']}; reprocess: "
                f"{quota['reprocess']['embedding_requests']} embedding requests",
            )
        )
    if retrieval:
        rows += retrieval_rows(retrieval)
    rows += int8_recall_rows(_read("int8_recall"))
    rows += context_rows(_read("context"))
    if preflight:
        rows.extend(preflight_rows(preflight))
    if hostile_worker:
        rows.append(hostile_worker_row(hostile_worker))
    threads = _read("embedding_threads")
    for name, layout in threads.items() if threads else ():
        if isinstance(layout, dict) and "chunks_per_second" in layout:
            rate = statistics.median(layout["chunks_per_second"])
            share = statistics.median(layout["of_bound"])
            rows.append((f"embedding: {name}", f"{rate:.1f} chunks/s, {share:.2f} of one process"))
    hostile = _read("hostile")
    if hostile:
        peaks = [f["after"]["peak_rss_mb"] for f in hostile["files"].values()]
        rows.append(
            (
                f"hostile files extracted, {len(peaks)} files",
                f"highest peak {max(peaks)} MB (stated {hostile.get('stated_peak_mb')} MB); over "
                f"it: {', '.join(hostile.get('over_stated_peak', [])) or 'none'}",
            )
        )
    rows.append(("wall time per bench (s)", ", ".join(f"{k} {v}" for k, v in walls.items())))
    return {"rows": rows, "walls": walls, "load_at_end": _load()}


def hostile_worker_row(result: dict) -> tuple[str, str]:
    """How the hostile files ended in a real worker: the outcomes, the slowest, the peak."""
    files = result["files"]
    ended = [f for f in files.values() if "seconds" in f]
    failed = sum(1 for f in ended if f["status"] == "failed")
    slowest = max((f["seconds"] for f in ended), default=0)
    peak = max((f.get("peak_worker_mb", 0) for f in files.values()), default=0)
    return (
        f"hostile files through a worker, {len(files)} files",
        f"{failed} failed, {len(ended) - failed} completed, {len(files) - len(ended)} still "
        f"running; slowest {slowest} s; worker peak {peak} MB (idle "
        f"{result['idle_worker_mb']} MB); alive at the end: {result['worker_alive_at_end']}",
    )


def retrieval_rows(retrieval: dict) -> list[tuple[str, str]]:
    """Recall@1 / recall@5 of the single sides and the chosen hybrid, all queries of each set."""
    rows = []
    fusion = retrieval.get("fusion", {})
    backend = list(fusion)[-1] if fusion else None
    picks = [("vector", "vector"), ("sqlite", "SQLite FTS5")]
    if backend and backend != "sqlite":
        picks.append((backend, backend.replace("_", " ")))
    if backend:
        family = fusion[backend]["chosen_family"]
        picks.append((f"hybrid[{backend}] {family}", f"hybrid ({family})"))
    for set_name in ("known_item", "keyword", "low_overlap"):
        parts = []
        for key, label in picks:
            figures = retrieval["rows"].get(key, {}).get("figures", {}).get(set_name)
            if figures:
                a = figures["all"]
                parts.append(f"{label} {a['recall@1']:.2f}/{a['recall@5']:.2f}")
        rows.append((f"retrieval R@1/R@5, {set_name}", "; ".join(parts)))
    li = retrieval.get("llamaindex") or {}
    if "figures" in li:
        k = li["figures"]["known_item"]["all"]
        rows.append(
            ("  LlamaIndex reference, known_item", f"{k['recall@1']:.2f}/{k['recall@5']:.2f}")
        )
    return rows


def int8_recall_rows(result: dict) -> list[tuple[str, str]]:
    """The int8 backend's worst recall difference to torch, and whether all are noise."""
    rows = []
    for config, by_set in result.get("comparisons", {}).items():
        worst = min(
            (c[m]["difference"], name, key, m)
            for name, by_row in by_set.items()
            for key, c in by_row.items()
            for m in c
        )
        rows.append(
            (
                f"retrieval, MiniLM {config} vs torch",
                f"worst difference {worst[0]:+.4f} ({worst[3]}, {worst[1]}, {worst[2]}); "
                f"within noise everywhere: {result['within_noise_everywhere'][config]}",
            )
        )
    return rows


def context_rows(result: dict) -> list[tuple[str, str]]:
    """Contextual embedding against plain: each set's vector-only and hybrid R@1/R@5 change."""
    rows = []
    for variant, by_set in result.get("comparisons", {}).items():
        parts = []
        for name, by_row in by_set.items():
            for key, label in (("vector", "vector"), ("hybrid[sqlite] chosen", "hybrid")):
                c = by_row[key]
                parts.append(
                    f"{name} {label} {c['recall@1']['difference']:+.3f}/"
                    f"{c['recall@5']['difference']:+.3f}"
                )
        rows.append(
            (f"retrieval, chunks embedded with {variant}, R@1/R@5 change", "; ".join(parts))
        )
    return rows


def _onnx_rows(onnx: dict) -> list[tuple[str, str]]:
    rows = []
    for name, r in onnx.get("variants", {}).items():
        rows.append(
            (
                f"MiniLM {name}, {onnx['chunks']} chunks",
                f"{r['chunks_per_second']} chunks/s, {r['ratio_to_torch']}x torch; cosine to "
                f"torch mean {r['cosine_mean']}, p1 {r['cosine_p1']}, worst {r['cosine_worst']}",
            )
        )
    return rows


def _upload_rows(upload: dict) -> list[tuple[str, str]]:
    return [
        (
            f"16 x 1 MB uploads, {name}",
            f"p50 {r['concurrent_p50_ms']} ms, p99 {r['concurrent_p99_ms']} ms (one at a time "
            f"{r['one_at_a_time_p50_ms']} ms); workers used {r['worker_cores_used']} cores",
        )
        for name, r in upload.get("configs", {}).items()
    ]


def _bulk_rows(bulk: dict) -> list[tuple[str, str]]:
    return [
        (
            f"bulk {name}, {bulk['documents']:,} documents",
            f"{r['seconds_median']} s (target < {bulk['target_seconds']} s); a timed repeat "
            f"{r['profiled_seconds']} s, {r['of_which_publishing_seconds']} s of it publishing "
            f"{r['messages']:,} messages",
        )
        for name, r in bulk.get("actions", {}).items()
        if "seconds_median" in r
    ] + [
        (
            f"  {p['messages']:,} messages alone",
            f"one call each {p['one_call_each_seconds']} s, one producer "
            f"{p['shared_producer_seconds']} s, batches of 500 ids {p['batches_of_500_seconds']} s",
        )
        for p in [bulk.get("actions", {}).get("publishing_alone")]
        if p
    ]


def preflight_rows(preflight: dict) -> list[tuple[str, str]]:
    cost = preflight["preflight_cost_ms"]
    rows = [
        (
            "preflight per file, structure / full",
            f"median {cost['structure_ms']['median']} / {cost['full_ms']['median']} ms; full "
            f"{cost['full_ms_per_pdf_page']} ms per PDF page vs text-layer extraction "
            f"{cost['extracting_ms_per_text_page']} ms",
        )
    ]
    judged = [("", "error_leave_one_out"), (", structure", "error_leave_one_out_structure")]
    for depth, key in judged:
        for name, summary in preflight.get(key, {}).items():
            ocr = summary["pages_to_ocr"]
            parts = [f"OCR pages exact in {ocr['files_exact']}/{ocr['files']} files"]
            for quantity in ("tokens_without_ocr", "tokens_with_ocr", "requests", "seconds"):
                if quantity in summary:
                    q = summary[quantity]
                    parts.append(
                        f"{quantity} median {q['median_error']:.0%} (total {q['total_error']:+.1%})"
                    )
            rows.append((f"estimate error{depth}, leave-one-out, {name}", "; ".join(parts)))
    return rows


def print_summary(summary: dict) -> None:
    print("\n=== summary (bench/results/*.json) ===")
    width = max(len(k) for k, _ in summary["rows"])
    for key, value in summary["rows"]:
        print(f"{key:<{width}}  {value}")
    print(f"{'load average at the end':<{width}}  {summary['load_at_end']}")


if __name__ == "__main__":
    main()
