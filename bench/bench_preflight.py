"""How far the preflight estimate is from what processing finds, on the shared corpus.

    .venv/bin/python bench/bench_preflight.py [--corpus ../shared/corpus] [--no-embed]
        [--limit N] [--rejudge]

For every corpus file the pipeline can read, in one process:

1. the preflight at both depths (``documents/pipeline/preflight.py``), timed (best of
   ``--runs``): ``structure`` is what runs inside the upload request, ``full`` what the
   ``estimating`` stage (or a tenant with a cost limit) runs;
2. what processing actually finds: the real extraction (OCR included), each page's tokens
   with the local (MiniLM) and the Gemini counters, the production chunker at each
   embedder's default chunk size, and -- unless ``--no-embed`` -- the local embedding and a
   LanceDB write, each stage timed like the worker times it;
3. the token rates fitted on all files (what ``documents/pipeline/estimate_rates.py`` ships),
   and the estimate's error, **leave-one-out**: each file is estimated with rates fitted on
   the other files, token rates and stage rates alike, so no file is judged by rates it
   helped make. The error of the shipped rates on the same files is given too (in-sample).
   Both depths are judged: the ``structure`` estimate (what the upload answer holds, text
   pages and Word XML turned into characters by ``text_chars_per_page`` and
   ``docx_chars_per_xml_byte``) and the ``full`` one that replaces it in the worker.

Errors are per file, |estimate - actual| / actual, as a median and 90th percentile over the
files that have any of the quantity, plus the error of the totals (what a selection's sum
in the admin would be off by). Pages to OCR are compared as counts (how many files have the
exact number). Writes bench/results/preflight.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from documents.errors import PermanentError  # noqa: E402
from documents.pipeline.chunk import split_text  # noqa: E402
from documents.pipeline.embed import embed_chunks  # noqa: E402
from documents.pipeline.embedders.gemini import GeminiEmbedder  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402
from documents.pipeline.estimate import (  # noqa: E402
    Processed,
    TokenRates,
    estimate,
    measure_stage_rates,
)
from documents.pipeline.estimate_rates import DEFAULT_STAGE_RATES, MEASURED_TOKEN_RATES  # noqa: E402
from documents.pipeline.extract import extract_text  # noqa: E402
from documents.pipeline.preflight import FULL, STRUCTURE, inspect  # noqa: E402
from documents.pipeline.stores.lancedb_store import LanceDBStore  # noqa: E402
from documents.pipeline.types import ExtractOptions  # noqa: E402
from documents.pipeline.vectors import upsert_chunks  # noqa: E402
from documents.uploads import sniff_content_type  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from results_file import RESULTS, write_result  # noqa: E402

# The production chunk sizes (settings.CHUNK_TOKENS / CHUNK_OVERLAP) and batch sizes.
EMBEDDERS = {
    "local": {"chunk_tokens": 256, "overlap": 32, "batch_size": 16},
    "gemini": {"chunk_tokens": 1024, "overlap": 100, "batch_size": 100},
}
PAGE_KINDS = ("text_layer", "ocr", "docx", "plain")
# Files of at least this many pages are also judged apart ("tokens_long_files").
LONG_PAGES = 10


def counters() -> dict:
    return {
        "local": LocalEmbedder(batch_size=16),
        # Only its local token count is used: no request is ever sent.
        "gemini": GeminiEmbedder(api_key="unused-for-counting", base_url="http://127.0.0.1:9"),
    }


def corpus_files(corpus: Path) -> list[Path]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        return [corpus / row["file"] for row in csv.DictReader(manifest, delimiter="\t")]


def best_of(runs: int, function):
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def page_kind(content_type: str, page) -> str:
    if page.ocr or content_type.startswith("image/"):
        return "ocr"
    if content_type == "application/pdf":
        return "text_layer"
    if content_type.endswith("wordprocessingml.document"):
        return "docx"
    return "plain"


def inspected(path: Path, content_type: str, counting: dict, runs: int) -> dict:
    """Both preflight depths, timed (best of ``runs``), and the full one with each
    embedder's token sample."""
    size = path.stat().st_size
    common = {"content_type": content_type, "size_bytes": size}
    structure_s, structure = best_of(runs, lambda: inspect(path, depth=STRUCTURE, **common))
    full_s, preflight = best_of(runs, lambda: inspect(path, depth=FULL, **common))
    # The token sample is counted with each embedder's counter (the worker counts with the
    # configured one only, so its time is the local one, the slower).
    samples = {
        name: inspect(path, depth=FULL, counter=counter, **common).as_dict()
        for name, counter in counting.items()
    }
    sampled_s, _ = best_of(
        runs, lambda: inspect(path, depth=FULL, counter=counting["local"], **common)
    )
    return {
        "structure_ms": round(structure_s * 1000, 2),
        "full_ms": round(full_s * 1000, 2),
        "full_sampled_ms": round(sampled_s * 1000, 2),
        "preflight": preflight.as_dict(),
        "preflight_structure": structure.as_dict(),
        "preflight_sampled": samples,
    }


def measure(path: Path, counting: dict, embed: bool, store, runs: int) -> dict | None:
    with path.open("rb") as handle:
        content_type = sniff_content_type(handle, path.name)
    if content_type is None:
        return None
    row = {
        "file": path.name,
        "content_type": content_type,
        "size_bytes": path.stat().st_size,
        **inspected(path, content_type, counting, runs),
    }
    sampled_s = row["full_sampled_ms"] / 1000
    try:
        start = time.perf_counter()
        extraction = extract_text(path, content_type=content_type, options=ExtractOptions())
        pages = list(extraction.pages)
        extracting = time.perf_counter() - start
    except PermanentError as exc:
        row["failure"] = exc.kind
        return row
    chars = dict.fromkeys(PAGE_KINDS, 0)
    tokens = {name: dict.fromkeys(PAGE_KINDS, 0) for name in counting}
    for page in pages:
        kind = page_kind(content_type, page)
        chars[kind] += len(page.text)
        for name, counter in counting.items():
            if page.text:
                tokens[name][kind] += counter.count_tokens(page.text)
    stage_seconds = {"estimating": sampled_s, "extracting": extracting}
    billed, chunk_counts = {}, {}
    for name, config in EMBEDDERS.items():
        start = time.perf_counter()
        chunks = split_text(
            pages,
            counter=counting[name],
            max_tokens=config["chunk_tokens"],
            overlap=config["overlap"],
        )
        if name == "local":
            stage_seconds["chunking"] = time.perf_counter() - start
            local_chunks = chunks
        billed[name] = sum(c.token_count for c in chunks)
        chunk_counts[name] = len(chunks)
    if embed and local_chunks:
        embedder = counting["local"]
        start = time.perf_counter()
        vectors = embed_chunks(
            embedder,
            [c.text for c in local_chunks],
            title=path.stem,
            token_counts=[c.token_count for c in local_chunks],
        )
        stage_seconds["embedding"] = time.perf_counter() - start
        start = time.perf_counter()
        upsert_chunks(
            store,
            namespace="bench",
            document_id=path.stem,
            metadata={"tenant": "bench", "document_id": path.stem, "title": path.stem},
            chunks=local_chunks,
            vectors=vectors,
        )
        stage_seconds["indexing"] = time.perf_counter() - start
    row.update(
        pages=len(pages),
        ocr_pages=sum(1 for p in pages if page_kind(content_type, p) == "ocr"),
        chars=chars,
        tokens=tokens,
        billed_tokens=billed,
        chunks=chunk_counts,
        stage_seconds={k: round(v, 4) for k, v in stage_seconds.items()},
    )
    return row


# --- fitting and judging ------------------------------------------------------------------------


def fit_token_rates(rows: list[dict], name: str, shipped: TokenRates) -> TokenRates:
    """Token rates of one embedder from ``rows``: each kind's tokens over the characters the
    preflight counts for it (so the rate also absorbs how PDFium's count differs from the
    extracted text); OCR per page, since nothing can be counted before OCR runs."""

    def total(key):
        return sum(key(r) for r in rows)

    def rate(kind, chars_of):
        chars = total(chars_of)
        return total(lambda r: r["tokens"][name][kind]) / chars if chars else None

    def preflight_chars(kind):
        return lambda r: (r["preflight"]["text_chars"] or 0) if _pf_kind(r) == kind else 0

    def structure(kind):
        # the rows whose structure pass judged the file (the others get no estimate from it)
        return [r for r in rows if _pf_kind(r) == kind and r["preflight_structure"]["complete"]]

    pdf_text_pages = sum(r["preflight_structure"]["pages_with_text"] for r in structure("pdf"))
    docx_xml = sum(r["preflight_structure"]["docx_xml_bytes"] or 0 for r in structure("docx"))
    ocr_pages = total(lambda r: r["ocr_pages"])
    text_tokens = total(lambda r: sum(r["tokens"][name].values()))
    chunks = total(lambda r: r["chunks"][name])
    billed = total(lambda r: r["billed_tokens"][name])
    fitted = {
        "text_layer": rate("text_layer", preflight_chars("pdf")),
        "docx": rate("docx", preflight_chars("docx")),
        "plain": rate("plain", preflight_chars("text")),
        "ocr": rate("ocr", lambda r: r["chars"]["ocr"]),
        "ocr_chars_per_page": total(lambda r: r["chars"]["ocr"]) / ocr_pages if ocr_pages else None,
        "chunk_overhead": billed / text_tokens if text_tokens else None,
        "tokens_per_chunk": billed / chunks if chunks else None,
        "text_chars_per_page": sum(r["preflight"]["text_chars"] or 0 for r in structure("pdf"))
        / pdf_text_pages
        if pdf_text_pages
        else None,
        "docx_chars_per_xml_byte": sum(r["preflight"]["text_chars"] or 0 for r in structure("docx"))
        / docx_xml
        if docx_xml
        else None,
    }
    return replace(shipped, **{k: round(v, 4) for k, v in fitted.items() if v is not None})


def _pf_kind(row: dict) -> str:
    return row["preflight"]["kind"]


def processed(row: dict) -> Processed:
    return Processed(
        size_bytes=row["size_bytes"],
        pages=row["pages"],
        ocr_pages=row["ocr_pages"],
        tokens=row["billed_tokens"]["local"],
        chunks=row["chunks"]["local"],
        stage_seconds=row["stage_seconds"],
    )


def judge(
    rows: list[dict],
    name: str,
    *,
    leave_one_out: bool,
    sampled: bool = True,
    depth: str = FULL,
) -> dict:
    """``depth``: which preflight the estimate is made from; at ``structure`` the files the
    structure pass could not judge (it fell back to the page count) are counted apart."""
    from documents.pipeline.preflight import Preflight

    shipped = MEASURED_TOKEN_RATES[name]
    per_file = []
    without_estimate = []
    for i, row in enumerate(rows):
        if depth == STRUCTURE and not row["preflight_structure"]["complete"]:
            without_estimate.append(row["file"])
            continue
        others = rows[:i] + rows[i + 1 :]
        rates = fit_token_rates(others, name, shipped) if leave_one_out else shipped
        stages = (
            measure_stage_rates([processed(r) for r in others], DEFAULT_STAGE_RATES)
            if leave_one_out
            else DEFAULT_STAGE_RATES
        )
        if depth == STRUCTURE:
            facts = row["preflight_structure"]
        else:
            facts = row["preflight_sampled"][name] if sampled else row["preflight"]
        guess = estimate(Preflight.from_dict(facts), rates, stages, estimating_done=False)
        actual_seconds = sum(row["stage_seconds"].values())
        per_file.append(
            {
                "file": row["file"],
                "pages": row["pages"],
                "pages_to_ocr": (guess.pages_to_ocr, row["ocr_pages"]),
                "tokens": (guess.tokens, row["billed_tokens"][name]),
                "chunks": (guess.chunks, row["chunks"][name]),
                "requests": (guess.requests, -(-row["chunks"][name] // shipped.batch_size)),
                # Times come from the stage rates measured on the other files; the shipped
                # defaults are for a system that has processed nothing yet.
                "seconds": (guess.seconds, round(actual_seconds, 3))
                if leave_one_out and name == "local" and "embedding" in row["stage_seconds"]
                else None,
            }
        )
    summary = {
        "pages_to_ocr": {
            "files_exact": sum(1 for f in per_file if f["pages_to_ocr"][0] == f["pages_to_ocr"][1]),
            "files": len(per_file),
            "estimated_total": sum(f["pages_to_ocr"][0] for f in per_file),
            "actual_total": sum(f["pages_to_ocr"][1] for f in per_file),
        }
    }
    if depth == STRUCTURE:
        summary["files_without_estimate"] = without_estimate
    for quantity in ("tokens", "chunks", "requests", "seconds"):
        pairs = [f[quantity] for f in per_file if f[quantity] and f[quantity][1]]
        if pairs:
            summary[quantity] = error_summary(pairs)
    # Text read from text layers and Word files is counted before processing; OCR text is not
    # there to count, so files with OCR pages are judged apart.
    for label, with_ocr in (("tokens_without_ocr", False), ("tokens_with_ocr", True)):
        pairs = [
            f["tokens"]
            for f in per_file
            if f["tokens"][1] and bool(f["pages_to_ocr"][1]) == with_ocr
        ]
        if pairs:
            summary[label] = error_summary(pairs)
    # The corpus is half one-page test files, where a page's text ranges from a word to a
    # dense table; the documents whose cost matters are longer.
    pairs = [f["tokens"] for f in per_file if f["tokens"][1] and f["pages"] >= LONG_PAGES]
    if pairs:
        summary["tokens_long_files"] = error_summary(pairs)
    return {"summary": summary, "files": per_file}


def error_summary(pairs) -> dict:
    errors = sorted(abs(e - a) / a for e, a in pairs)
    estimated, actual = sum(e for e, _ in pairs), sum(a for _, a in pairs)
    return {
        "files": len(pairs),
        "median_error": round(statistics.median(errors), 3),
        "p90_error": round(errors[min(len(errors) - 1, int(0.9 * len(errors)))], 3),
        "total_estimated": round(estimated, 1),
        "total_actual": round(actual, 1),
        "total_error": round((estimated - actual) / actual, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3, help="timing repeats of the preflight")
    parser.add_argument("--no-embed", action="store_true", help="skip embedding and indexing")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="measure only the first N files of the manifest (the whole corpus takes ~20 min)",
    )
    parser.add_argument(
        "--rejudge",
        action="store_true",
        help="inspect the files of the last run again and judge them against what processing "
        "found then (after a change of the preflight or of the rates)",
    )
    args = parser.parse_args()
    if args.rejudge:
        # The preflight is inspected again (it is cheap); what processing found is reused.
        last = json.loads((RESULTS / "preflight.json").read_text(encoding="utf-8"))
        counting = counters()
        for row in last["files"]:
            row.update(
                inspected(args.corpus / row["file"], row["content_type"], counting, args.runs)
            )
        embedded = any("embedding" in r.get("stage_seconds", {}) for r in last["files"])
        results = summarise(last["files"], embedded=embedded)
        results["seconds"] = last["seconds"]
        write_result("preflight", results)
        print_summary(results)
        return

    counting = counters()
    rows, skipped = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-preflight-") as tmp:
        store = LanceDBStore(uri=tmp, dimension=counting["local"].dimension)
        for path in corpus_files(args.corpus)[: args.limit]:
            row = measure(path, counting, not args.no_embed, store, args.runs)
            if row is None:
                skipped.append(path.name)
                continue
            outcome = row.get("failure") or f"{row['pages']} pages, {row['ocr_pages']} OCR"
            print(
                f"{path.name:42} structure {row['structure_ms']:8.2f} ms  "
                f"full {row['full_ms']:8.2f} ms  {outcome}",
                flush=True,
            )
            rows.append(row)
        store.close()
    results = summarise(rows, embedded=not args.no_embed)
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_result("preflight", results)
    print_summary(results)


def summarise(rows: list[dict], *, embedded: bool) -> dict:
    readable = [r for r in rows if "failure" not in r and r["preflight"]["complete"]]
    fitted = {
        name: fit_token_rates(readable, name, MEASURED_TOKEN_RATES[name]) for name in EMBEDDERS
    }
    stage_rates = measure_stage_rates([processed(r) for r in readable], DEFAULT_STAGE_RATES)
    results = {
        "files_measured": len(rows),
        "files_readable": len(readable),
        "not_readable": sorted(
            r["file"] for r in rows if "failure" in r or not r["preflight"]["complete"]
        ),
        "preflight_cost_ms": preflight_cost(rows),
        "fitted_token_rates": {name: asdict(rates) for name, rates in fitted.items()},
        "fitted_stage_rates": asdict(stage_rates) if embedded else None,
        "error_leave_one_out": {
            name: judge(readable, name, leave_one_out=True)["summary"] for name in EMBEDDERS
        },
        "error_leave_one_out_without_token_sample": {
            name: judge(readable, name, leave_one_out=True, sampled=False)["summary"]
            for name in EMBEDDERS
        },
        "error_shipped_rates_in_sample": {
            name: judge(readable, name, leave_one_out=False)["summary"] for name in EMBEDDERS
        },
        # What the upload answer holds: the estimate from the file's structure alone.
        "error_leave_one_out_structure": {
            name: judge(readable, name, leave_one_out=True, depth=STRUCTURE)["summary"]
            for name in EMBEDDERS
        },
        "error_shipped_rates_in_sample_structure": {
            name: judge(readable, name, leave_one_out=False, depth=STRUCTURE)["summary"]
            for name in EMBEDDERS
        },
        "files": rows,
    }
    return results


def preflight_cost(rows: list[dict]) -> dict:
    def stats(key, only=None):
        values = sorted(r[key] for r in rows if only is None or only(r))
        if not values:
            return None
        return {
            "median": round(statistics.median(values), 3),
            "max": round(values[-1], 3),
            "total": round(sum(values), 1),
        }

    pdf = lambda r: r["content_type"] == "application/pdf"  # noqa: E731
    pages = sum(r["preflight"]["pages"] or 0 for r in rows if pdf(r))
    full_pdf = sum(r["full_ms"] for r in rows if pdf(r))
    structure_pdf = sum(r["structure_ms"] for r in rows if pdf(r))
    return {
        "structure_ms": stats("structure_ms"),
        "structure_ms_pdf": stats("structure_ms", pdf),
        "structure_ms_docx": stats(
            "structure_ms", lambda r: r["content_type"].endswith("document")
        ),
        "full_ms": stats("full_ms"),
        "structure_ms_per_pdf_page": round(structure_pdf / pages, 3) if pages else None,
        "full_ms_per_pdf_page": round(full_pdf / pages, 3) if pages else None,
        "extracting_ms_per_text_page": _extract_ms_per_text_page(rows),
    }


def _extract_ms_per_text_page(rows) -> float | None:
    text_only = [
        r
        for r in rows
        if "failure" not in r and r["content_type"] == "application/pdf" and r["ocr_pages"] == 0
    ]
    pages = sum(r["pages"] for r in text_only)
    seconds = sum(r["stage_seconds"]["extracting"] for r in text_only)
    return round(1000 * seconds / pages, 3) if pages else None


def print_summary(results: dict) -> None:
    cost = results["preflight_cost_ms"]
    print(
        f"\npreflight cost per file: structure median {cost['structure_ms']['median']} ms "
        f"(max {cost['structure_ms']['max']}), full median {cost['full_ms']['median']} ms "
        f"(max {cost['full_ms']['max']}); full {cost['full_ms_per_pdf_page']} ms per PDF page, "
        f"text-layer extraction {cost['extracting_ms_per_text_page']} ms per page; "
        f"structure {cost['structure_ms_per_pdf_page']} ms per PDF page (PDF median "
        f"{cost['structure_ms_pdf']['median']} ms, max {cost['structure_ms_pdf']['max']} ms)"
    )
    for label in (
        "error_leave_one_out_structure",
        "error_shipped_rates_in_sample_structure",
        "error_leave_one_out",
        "error_leave_one_out_without_token_sample",
        "error_shipped_rates_in_sample",
    ):
        print(f"\n{label} ({results['files_readable']} readable files)")
        for name, summary in results[label].items():
            ocr = summary["pages_to_ocr"]
            print(
                f"  {name}: pages to OCR exact in {ocr['files_exact']}/{ocr['files']} files "
                f"({ocr['estimated_total']} estimated, {ocr['actual_total']} actual)"
            )
            if summary.get("files_without_estimate"):
                print(f"    no structure estimate: {', '.join(summary['files_without_estimate'])}")
            for quantity in (
                "tokens",
                "tokens_without_ocr",
                "tokens_with_ocr",
                "tokens_long_files",
                "chunks",
                "requests",
                "seconds",
            ):
                if quantity in summary:
                    s = summary[quantity]
                    print(
                        f"    {quantity:18} median {s['median_error']:.1%}  "
                        f"p90 {s['p90_error']:.1%}"
                        f"  total {s['total_estimated']:,} vs {s['total_actual']:,} "
                        f"({s['total_error']:+.1%})"
                    )
    for name, rates in results["fitted_token_rates"].items():
        print(f"\nfitted token rates, {name}: {rates}")
    if results["fitted_stage_rates"]:
        print(f"fitted stage rates: {results['fitted_stage_rates']}")


if __name__ == "__main__":
    main()
