"""Run every benchmark in sequence and print one table of the headline figures.

    .venv/bin/python bench/run_all.py [--corpus ../shared/corpus] [--runs 3] [--no-llamaindex]

(`make bench` runs this.) Each bench runs in its own process, writes bench/results/<name>.json,
and this script reads those files back for the summary, which it also writes to
bench/results/summary.json. The end-to-end bench sets up LlamaIndex's separate virtualenv
(var/bench-llamaindex-venv) the first time, which takes a few minutes; if that fails it says
why and reports only our ratio to the embedding bound. About 15-25 minutes on 2 cores, plus
bench_preflight.py's run of the whole corpus (OCR and embedding included), 10-30 more.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results_file import RESULTS, write_result

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-llamaindex", action="store_true")
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
        ("preflight", ["bench_preflight.py", *corpus]),
    ]
    walls: dict[str, float] = {}
    failed: list[str] = []
    for name, command in benches:
        print(f"\n=== {name} (load {_load()}) ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(ROOT / "bench" / command[0]), *command[1:]])
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
    extract, chunk_embed, e2e, memory, preflight = (
        _read(n) for n in ("extract", "chunk_embed", "end_to_end", "memory", "preflight")
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
        for mode in ("pipeline", "text_layer_only", "to_chunks"):
            r = memory[mode]
            rows.append(
                (
                    f"peak RSS 607 p vs its first 20 p, {mode}",
                    f"{r['long_peak_rss_mb']}/{r['short_peak_rss_mb']} MB = {r['ratio']} "
                    f"(limit {memory['limit']})",
                )
            )
    if preflight:
        rows.extend(preflight_rows(preflight))
    rows.append(("wall time per bench (s)", ", ".join(f"{k} {v}" for k, v in walls.items())))
    return {"rows": rows, "walls": walls, "load_at_end": _load()}


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
    for name, summary in preflight["error_leave_one_out"].items():
        ocr = summary["pages_to_ocr"]
        parts = [f"OCR pages exact in {ocr['files_exact']}/{ocr['files']} files"]
        for quantity in ("tokens_without_ocr", "tokens_with_ocr", "requests", "seconds"):
            if quantity in summary:
                q = summary[quantity]
                parts.append(
                    f"{quantity} median {q['median_error']:.0%} (total {q['total_error']:+.1%})"
                )
        rows.append((f"estimate error, leave-one-out, {name}", "; ".join(parts)))
    return rows


def print_summary(summary: dict) -> None:
    print("\n=== summary (bench/results/*.json) ===")
    width = max(len(k) for k, _ in summary["rows"])
    for key, value in summary["rows"]:
        print(f"{key:<{width}}  {value}")
    print(f"{'load average at the end':<{width}}  {summary['load_at_end']}")


if __name__ == "__main__":
    main()
