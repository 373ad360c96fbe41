"""Peak memory against page count, the fair comparison (not a test).

    .venv/bin/python bench/bench_memory.py [--corpus ../shared/corpus] [--runs 3]

The issue asks that the peak resident memory for the longest PDF in the corpus be at most 1.2
times that for a 20-page one. bench_extract.py compares the 607-page synthetic-concat-607p.pdf
with an unrelated 20-page PDF; but the 607-page file's first page is a full-page picture (the
book cover) that goes to OCR, and rendering it is a one-page peak that has nothing to do with
the page count. Here the 20-page file is the first 20 pages of the same PDF, cut with
pypdfium2 (PdfDocument.new + import_pages) into a temporary directory, so both have the same
cover, fonts and page sizes and only the page count differs. Each file is read in a fresh
process, peak RSS from /proc/self/status (VmHWM), in three modes:

* ``pipeline``: extract_text as the worker runs it (OCR for pages without a text layer);
* ``text_layer_only``: no OCR (every page taken from its text layer);
* ``text_layer_no_tables``: the same without the table reader (tables.py), which imports
  pdfplumber (about 11 MB) at the book's first page that looks like a table (page 355; none
  among the first 20): this mode shows what grows with the page count alone;
* ``to_chunks``: what run.py holds before embedding: every page's text listed, then
  split_text with the MiniLM counter (256/32).

Medians of ``--runs`` runs, alternating long and short. Writes bench/results/memory.json; the
unrelated-file comparison stays in bench/results/extract.json (bench_extract.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

import pypdfium2 as pdfium
from child_rss import run_child
from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
LONG_PDF = "synthetic-concat-607p.pdf"
SHORT_PAGES = 20
LIMIT = 1.2

_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from documents.pipeline.extract import extract_text
from documents.pipeline.types import ExtractOptions
mode, path = {mode!r}, {path!r}
options = {{
    "text_layer_only": ExtractOptions(ocr_min_chars=0),
    "text_layer_no_tables": ExtractOptions(ocr_min_chars=0, tables=False),
}}.get(mode, ExtractOptions())
pages = chunks = 0
if path:
    extraction = extract_text(Path(path), content_type="application/pdf", options=options)
    if mode == "to_chunks":
        from documents.pipeline.chunk import split_text
        from documents.pipeline.embedders.local import LocalEmbedder
        embedder = LocalEmbedder()
        listed = list(extraction.pages)
        pages = len(listed)
        chunks = len(split_text(listed, counter=embedder, max_tokens=256, overlap=32))
    else:
        for page in extraction.pages:
            pages += 1
elif mode == "to_chunks":
    from documents.pipeline.chunk import _sentencizer, split_text
    from documents.pipeline.embedders.local import LocalEmbedder
    _sentencizer()
    LocalEmbedder().count_tokens("x")
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(int(status["VmHWM"].split()[0]), pages, chunks)
"""

MODES = ("pipeline", "text_layer_only", "text_layer_no_tables", "to_chunks")


def cut_first_pages(source: Path, pages: int, target: Path) -> Path:
    src = pdfium.PdfDocument(str(source))
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(src, list(range(pages)))
        out.save(str(target))
    finally:
        out.close()
        src.close()
    return target


def peak_rss_mb(path: Path | None, mode: str) -> tuple[float, int, int]:
    code = _CHILD.format(root=str(ROOT), path=str(path) if path else "", mode=mode)
    return run_child(code)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    long_pdf = (args.corpus / LONG_PDF).resolve()

    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "long": LONG_PDF,
        "short": f"first {SHORT_PAGES} pages of {LONG_PDF} (cut with pypdfium2)",
        "limit": LIMIT,
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        short_pdf = cut_first_pages(long_pdf, SHORT_PAGES, Path(tmp) / f"first-{SHORT_PAGES}.pdf")
        for mode in MODES:
            imports = statistics.median(peak_rss_mb(None, mode)[0] for _ in range(args.runs))
            longs, shorts = [], []
            for _ in range(args.runs):
                long_rss, long_pages, long_chunks = peak_rss_mb(long_pdf, mode)
                short_rss, short_pages, short_chunks = peak_rss_mb(short_pdf, mode)
                longs.append(long_rss)
                shorts.append(short_rss)
            long_mb, short_mb = statistics.median(longs), statistics.median(shorts)
            result[mode] = {
                "imports_only_mb": round(imports, 1),
                "long_pages": long_pages,
                "long_peak_rss_mb": round(long_mb, 1),
                "long_runs_mb": [round(x, 1) for x in longs],
                "short_pages": short_pages,
                "short_peak_rss_mb": round(short_mb, 1),
                "short_runs_mb": [round(x, 1) for x in shorts],
                "ratio": round(long_mb / short_mb, 3),
                "growth_mb": round(long_mb - short_mb, 1),
                "meets_limit": long_mb / short_mb <= LIMIT,
            }
            if mode == "to_chunks":
                result[mode]["long_chunks"] = long_chunks
                result[mode]["short_chunks"] = short_chunks
            print(
                f"{mode:16} {long_pages} p: {long_mb:6.1f} MB   {short_pages} p: "
                f"{short_mb:6.1f} MB   ratio {long_mb / short_mb:.3f} (imports {imports:.1f} MB)",
                flush=True,
            )

    write_result("memory", result)


if __name__ == "__main__":
    main()
