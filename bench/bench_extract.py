"""Benchmark of text extraction on the shared corpus (not a test; timings never go in tests).

    .venv/bin/python bench/bench_extract.py [--corpus ../shared/corpus]

Measures, in one run on the same files:
1. pages/s of our extract_text (pypdfium2, OCR switched off so only the text layer is timed)
   against pdfplumber with each page closed after use, on the corpus text PDFs (the books
   are left out: pdfplumber would take minutes on them), and the ratio;
2. OCR seconds per page at 200 DPI on synthetic-scan-8p.pdf, Tesseract single-threaded,
   one page at a time and two pages in parallel;
3. peak RSS of a fresh process extracting the 607-page PDF against one extracting a
   20-page PDF, as the pipeline runs and for the text layer alone, and the ratio (the
   target is 1.2 at most), next to a process that only imports the modules.
Prints a table and writes bench/results/extract.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

from child_rss import run_child
from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pdfplumber  # noqa: E402

from documents.pipeline.extract import PDF, extract_text  # noqa: E402
from documents.pipeline.types import ExtractOptions  # noqa: E402

LONG_PDF = "synthetic-concat-607p.pdf"
SHORT_PDF = "issue-71-duplicate-chars-2.pdf"  # 20 pages
SCAN_PDF = "synthetic-scan-8p.pdf"

# ocr_min_chars=0: every page counts as having a text layer, so no page goes to OCR and the
# comparison with pdfplumber (which does no OCR) times the same work.
TEXT_ONLY = ExtractOptions(ocr_min_chars=0)

# Peak RSS is read from /proc (VmHWM), not getrusage: on Linux ru_maxrss survives exec, so a
# child started from this (larger) process would report the parent's size.
_CHILD = """
import itertools, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from documents.pipeline.extract import extract_text
from documents.pipeline.types import ExtractOptions
pages = chars = 0
if {path!r}:
    options = ExtractOptions() if {ocr!r} else ExtractOptions(ocr_min_chars=0)
    extraction = extract_text(Path({path!r}), content_type="application/pdf", options=options)
    for page in itertools.islice(extraction.pages, {limit!r}):
        pages += 1
        chars += len(page.text)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(int(status["VmHWM"].split()[0]), pages, chars)
"""


def text_pdfs(corpus: Path) -> list[Path]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    return [
        corpus / row["file"]
        for row in rows
        if row["kind"].startswith("text-pdf") and not row["kind"].startswith("text-pdf-long")
    ]


def bench_pypdfium2(files: list[Path]) -> tuple[int, float, int]:
    pages = chars = 0
    start = time.perf_counter()
    for path in files:
        for page in extract_text(path, content_type=PDF, options=TEXT_ONLY).pages:
            pages += 1
            chars += len(page.text)
    return pages, time.perf_counter() - start, chars


def bench_pdfplumber(files: list[Path]) -> tuple[int, float, int]:
    pages = chars = 0
    start = time.perf_counter()
    for path in files:
        with pdfplumber.open(path) as pdf:
            for page in pdf.pages:
                chars += len(page.extract_text() or "")
                page.close()  # without this pdfplumber keeps every page's objects in memory
                pages += 1
    return pages, time.perf_counter() - start, chars


def bench_ocr(path: Path, parallel: int) -> tuple[int, float]:
    options = ExtractOptions(ocr_parallel_pages=parallel, ocr_dpi=200)
    start = time.perf_counter()
    extraction = extract_text(path, content_type=PDF, options=options)
    pages = list(extraction.pages)
    assert all(page.ocr for page in pages), "expected every page of the scan to need OCR"
    return len(pages), time.perf_counter() - start


def peak_rss_mb(path: Path | None, *, ocr: bool = True, limit: int | None = None):
    code = _CHILD.format(root=str(ROOT), path=str(path) if path else "", ocr=ocr, limit=limit)
    return run_child(code)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT / "../shared/corpus")
    parser.add_argument("--skip-ocr", action="store_true")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "corpus": str(corpus),
    }

    files = text_pdfs(corpus)
    fast_pages, fast_time, fast_chars = bench_pypdfium2(files)
    slow_pages, slow_time, slow_chars = bench_pdfplumber(files)
    assert fast_pages == slow_pages
    results["text_layer"] = {
        "files": len(files),
        "pages": fast_pages,
        "pypdfium2_pages_per_s": round(fast_pages / fast_time, 1),
        "pdfplumber_pages_per_s": round(slow_pages / slow_time, 1),
        "ratio": round((fast_pages / fast_time) / (slow_pages / slow_time), 1),
        "pypdfium2_chars": fast_chars,
        "pdfplumber_chars": slow_chars,
    }

    if not args.skip_ocr:
        ocr: dict = {"file": SCAN_PDF, "dpi": 200, "omp_thread_limit": 1}
        for parallel in (1, 2):
            pages, seconds = bench_ocr(corpus / SCAN_PDF, parallel)
            ocr[f"parallel_{parallel}_s_per_page"] = round(seconds / pages, 2)
        ocr["pages"] = pages
        results["ocr"] = ocr

    baseline, _, _ = peak_rss_mb(None)
    memory: dict = {"imports_only_mb": round(baseline, 1)}
    # As the pipeline runs (pages without a text layer rendered for OCR), then the text layer
    # alone: the long file's first page is a full-page picture (the book cover) that goes to
    # OCR, and rendering it is a one-page peak that says nothing about the page count; the
    # "first page only" run isolates it.
    for label, ocr in (("pipeline", True), ("text_layer_only", False)):
        long_rss, long_pages, long_chars = peak_rss_mb(corpus / LONG_PDF, ocr=ocr)
        short_rss, short_pages, _ = peak_rss_mb(corpus / SHORT_PDF, ocr=ocr)
        memory[label] = {
            "long_pages": long_pages,
            "long_peak_rss_mb": round(long_rss, 1),
            "short_pages": short_pages,
            "short_peak_rss_mb": round(short_rss, 1),
            "ratio": round(long_rss / short_rss, 2),
        }
    first_rss, _, _ = peak_rss_mb(corpus / LONG_PDF, limit=1)
    memory["long_first_page_only_peak_rss_mb"] = round(first_rss, 1)
    memory["files"] = {"long": LONG_PDF, "short": SHORT_PDF}
    results["memory"] = memory

    print_table(results)
    write_result("extract", results)


def print_table(results: dict) -> None:
    text = results["text_layer"]
    print(f"Text layer, {text['files']} corpus PDFs, {text['pages']} pages")
    print(f"  {'pypdfium2 (extract_text)':32} {text['pypdfium2_pages_per_s']:>8} pages/s")
    print(f"  {'pdfplumber, pages closed':32} {text['pdfplumber_pages_per_s']:>8} pages/s")
    print(f"  {'ratio':32} {text['ratio']:>8} x")
    if "ocr" in results:
        ocr = results["ocr"]
        print(f"OCR, {ocr['file']} ({ocr['pages']} pages, 200 DPI, OMP_THREAD_LIMIT=1)")
        print(f"  {'1 page at a time':32} {ocr['parallel_1_s_per_page']:>8} s/page")
        print(f"  {'2 pages in parallel':32} {ocr['parallel_2_s_per_page']:>8} s/page")
    memory = results["memory"]
    files = memory["files"]
    print(f"Peak RSS, fresh process: {files['long']} vs {files['short']}")
    print(f"  {'imports only':32} {memory['imports_only_mb']:>8} MB")
    for label in ("pipeline", "text_layer_only"):
        row = memory[label]
        print(
            f"  {label:32} {row['long_peak_rss_mb']:>8} MB ({row['long_pages']} p) vs "
            f"{row['short_peak_rss_mb']} MB ({row['short_pages']} p): ratio {row['ratio']}"
        )
    first = memory["long_first_page_only_peak_rss_mb"]
    print(f"  {'long file, first page only':32} {first:>8} MB")


if __name__ == "__main__":
    main()
