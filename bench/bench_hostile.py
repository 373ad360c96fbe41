"""What each file of the hostile corpus costs to extract: outcome, time, peak memory (not a test).

    .venv/bin/python bench/bench_hostile.py [--baseline DIR] [--timeout 120] [--cap-gb 4]
                                            [--stated-peak-mb 160] [NAME ...]
    .venv/bin/python bench/bench_hostile.py --corpus-cost [--corpus ../shared/corpus] [--runs 3]

The files come from tests/hostile/make_hostile.py, written to a temporary folder. Each one is
sniffed and extracted (every page consumed, as the worker does) in a fresh interpreter capped
with RLIMIT_AS (``--cap-gb``, 4 GB) and killed after ``--timeout`` seconds, so a file that
would take the machine down only takes down its child; the peak resident memory is the
kernel's figure for the reaped child (bench/child_rss.py), held against the peak the README
states for any hostile file (``--stated-peak-mb``; a file over it is listed at the end and the
bench exits 1). ``--baseline DIR`` runs the same
files against another checkout too (e.g. ``git archive <commit> | tar -x -C DIR``), for a
before/after table. Writes bench/results/hostile.json.

``--corpus-cost`` measures what the budgets cost on normal files instead: for the corpus's
text PDFs, the time of the PDF stream check alone (documents/pipeline/pdf_streams.py, every
page) against the time of extracting them (text layers only, the check included), best of
``--runs`` each, in one process. Writes bench/results/hostile_corpus_cost.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from child_rss import run_child_capped
from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import make_hostile  # noqa: E402

_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from documents.uploads import sniff_content_type
from documents.pipeline.extract import extract_text
from documents.pipeline.types import ExtractOptions
path = Path({path!r})
started = time.perf_counter()
with path.open("rb") as handle:
    content_type = sniff_content_type(handle, path.name)
result = {{"content_type": content_type}}
try:
    extraction = extract_text(path, content_type=content_type or "", options=ExtractOptions())
    pages = chars = 0
    for page in extraction.pages:
        pages += 1
        chars += len(page.text)
    result["outcome"] = f"text: {{pages}} pages, {{chars:,}} characters"
except BaseException as exc:
    kind = getattr(exc, "kind", None)
    result["outcome"] = type(exc).__name__ + (f" ({{kind}})" if kind else "")
    result["message"] = str(exc)[:400]
result["seconds"] = round(time.perf_counter() - started, 2)
print(json.dumps(result))
"""


def measure(root: Path, path: Path, *, cap: int, timeout: float) -> dict:
    run = run_child_capped(
        _CHILD.format(root=str(root), path=str(path)), address_space_bytes=cap, timeout=timeout
    )
    lines = run.stdout.strip().splitlines()
    if run.returncode is None:
        result = {"outcome": f"still running after {timeout:.0f} s, killed"}
    elif lines:
        result = json.loads(lines[-1])
    else:
        last = run.stderr.strip().splitlines()[-1:] or [""]
        result = {"outcome": f"crashed (exit {run.returncode})", "message": last[0][:400]}
    result["wall_seconds"] = round(run.seconds, 2)
    result["peak_rss_mb"] = round(run.peak_rss_mb, 1)
    return result


def corpus_cost(corpus: Path, runs: int) -> None:
    from documents.pipeline.extract import PDF, extract_text
    from documents.pipeline.pdf_streams import PageStreams
    from documents.pipeline.types import ExtractOptions

    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = [
            r for r in csv.DictReader(handle, delimiter="\t") if r["kind"].startswith("text-pdf")
        ]
    options = ExtractOptions(ocr_min_chars=0)  # text layers only: OCR would swamp the figure
    files: dict = {}
    for row in rows:
        path = corpus / row["file"]
        check, extract = [], []
        for _ in range(runs):
            started = time.perf_counter()
            extraction = extract_text(path, content_type=PDF, options=options)
            pages = sum(1 for _ in extraction.pages)
            extract.append(time.perf_counter() - started)
            started = time.perf_counter()
            streams = PageStreams(
                path,
                password="",
                max_stream_bytes=options.max_pdf_stream_bytes,
                max_image_pixels=options.max_image_pixels,
            )
            for index in range(pages):
                streams.check_page(index)
            streams.close()
            check.append(time.perf_counter() - started)
        files[row["file"]] = {
            "pages": pages,
            "extract_seconds": round(min(extract), 4),
            "stream_check_seconds": round(min(check), 4),
        }
        print(
            f"{row['file']:40} {pages:4} p  extract {min(extract):7.3f} s  "
            f"check {min(check):6.3f} s",
            flush=True,
        )
    extract_total = sum(f["extract_seconds"] for f in files.values())
    check_total = sum(f["stream_check_seconds"] for f in files.values())
    share = check_total / extract_total
    print(
        f"total: extract {extract_total:.2f} s, of which the stream check {check_total:.2f} s "
        f"({share:.1%})"
    )
    write_result(
        "hostile_corpus_cost",
        {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "runs": runs,
            "files": files,
            "extract_seconds": round(extract_total, 3),
            "stream_check_seconds": round(check_total, 3),
            "stream_check_share": round(share, 4),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", help="files of make_hostile.FILES (default: all)")
    parser.add_argument("--baseline", type=Path, help="another checkout to run the files against")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cap-gb", type=float, default=4.0)
    parser.add_argument(
        "--stated-peak-mb",
        type=float,
        default=160.0,
        help="the README's stated peak for extracting any hostile file (checked on 'after')",
    )
    parser.add_argument("--corpus-cost", action="store_true")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.corpus_cost:
        corpus_cost(args.corpus, args.runs)
        return
    names = args.names or list(make_hostile.FILES)
    cap = int(args.cap_gb * (1 << 30))
    roots = {"after": ROOT}
    if args.baseline:
        roots = {"before": args.baseline.resolve(), **roots}
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "address_space_cap_gb": args.cap_gb,
        "timeout_seconds": args.timeout,
        "stated_peak_mb": args.stated_peak_mb,
        "roots": {label: str(root) for label, root in roots.items()},
        "files": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for name in names:
            path = make_hostile.make(name, Path(tmp))
            entry = {"file": path.name, "bytes": path.stat().st_size}
            for label, root in roots.items():
                entry[label] = measure(root, path, cap=cap, timeout=args.timeout)
                print(
                    f"{path.name:28} {label:6} {entry[label]['wall_seconds']:7.2f} s "
                    f"{entry[label]['peak_rss_mb']:8.1f} MB  {entry[label]['outcome']}",
                    flush=True,
                )
            result["files"][name] = entry
            path.unlink()
    over = [
        name
        for name, entry in result["files"].items()
        if entry["after"]["peak_rss_mb"] > args.stated_peak_mb
    ]
    result["over_stated_peak"] = over
    write_result("hostile", result)
    peak = max(entry["after"]["peak_rss_mb"] for entry in result["files"].values())
    print(f"highest peak {peak:.1f} MB; stated peak {args.stated_peak_mb:.0f} MB")
    if over:
        print(f"over the stated peak: {', '.join(over)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
