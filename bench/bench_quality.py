"""Text-quality signals over the whole corpus: where the thresholds of
documents/pipeline/quality.py come from (not a test; figures go in docs/quality-and-tables.md).

    .venv/bin/python bench/bench_quality.py [--corpus ../shared/corpus] [--skip-ocr]

1. Every page of every corpus PDF (books included): the garbage score of its text layer and
   its share of non-words, distribution per corpus kind, and every page at or above the
   threshold with its reason.
2. The same pages broken the way a bad ToUnicode map breaks them (letters shifted by one, a
   fixed shuffle of the alphabet, every character moved to the private-use area): the
   scores a garbage page gets, so the threshold sits between the two distributions.
3. Every page that goes to OCR (scans, images, pages without a text layer): Tesseract's mean
   word confidence, distribution per kind.
4. Degraded scans: clean corpus pages rendered at 200 DPI, then blurred, speckled or washed
   out with Pillow, read by Tesseract: mean confidence against the share of the page's words
   OCR got right, so the low-confidence threshold sits where the words stop being right.
5. The cost of scoring: ms per page against ms per page of reading the text layer.
Prints tables and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import csv
import random
import string
import sys
import time
from collections import defaultdict
from pathlib import Path

from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pypdfium2 as pdfium  # noqa: E402

from documents.pipeline import quality  # noqa: E402
from documents.pipeline.extract import _clean, _render, extract_text  # noqa: E402
from documents.pipeline.ocr import OcrJob, ocr_pages  # noqa: E402
from documents.pipeline.types import ExtractOptions  # noqa: E402
from tests.documents.pipeline import makedocs  # noqa: E402

TYPES = {".pdf": "application/pdf", ".png": "image/png", ".tif": "image/tiff"}
LANGUAGES = ExtractOptions().word_languages

# Degradations of a clean page: (label, blur radius px, salt-and-pepper share, contrast)
DEGRADATIONS = [
    ("clean", 0, 0, 1.0),
    ("blur 2.5", 2.5, 0, 1.0),
    ("blur 3", 3.0, 0, 1.0),
    ("blur 3.5", 3.5, 0, 1.0),
    ("blur 4", 4.0, 0, 1.0),
    ("noise 1%", 0, 0.01, 1.0),
    ("noise 2%", 0, 0.02, 1.0),
    ("noise 4%", 0, 0.04, 1.0),
    ("noise 6%", 0, 0.06, 1.0),
    ("contrast 0.1 + blur 2", 2.0, 0, 0.1),
    ("contrast 0.05 + blur 2.5", 2.5, 0, 0.05),
    ("noise 2% + blur 2", 2.0, 0.02, 1.0),
]
DEGRADE_SOURCES = [
    ("pdflatex-4-pages.pdf", 0),
    ("scotus-transcript-p1.pdf", 0),
    ("tracemonkey.pdf", 1),
]

_SHUFFLED = "".join(random.Random(7).sample(string.ascii_lowercase, 26))
BREAKS = {
    "shifted": str.maketrans(
        string.ascii_letters, string.ascii_lowercase[1:] + "a" + string.ascii_uppercase[1:] + "A"
    ),
    "shuffled": str.maketrans(string.ascii_letters, _SHUFFLED + _SHUFFLED.upper()),
}


def manifest(corpus: Path) -> list[dict]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def open_pdf(path: Path, password: str):
    try:
        return pdfium.PdfDocument(str(path), password=password or None)
    except pdfium.PdfiumError:
        return None


def text_layers(corpus: Path, rows: list[dict]):
    """Yield (file, kind, page number, cleaned text layer) for every page of every PDF."""
    for row in rows:
        if not row["file"].endswith(".pdf"):
            continue
        password = "" if row["password"] in ("", "(empty)") else row["password"]
        pdf = open_pdf(corpus / row["file"], password)
        if pdf is None:
            continue
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            yield row["file"], row["kind"], index + 1, _clean(textpage.get_text_range())
            textpage.close()
            page.close()
        pdf.close()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "n": len(ordered),
        "min": round(ordered[0], 3),
        "p10": at(0.10),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1], 3),
    }


def bench_text_layers(corpus: Path, rows: list[dict]) -> dict:
    scores: dict[str, list[float]] = defaultdict(list)
    non_words: dict[str, list[float]] = defaultdict(list)
    broken: dict[str, list[float]] = defaultdict(list)
    above: list[dict] = []
    score_seconds = 0.0
    pages = 0
    read_start = time.perf_counter()
    for name, kind, number, text in text_layers(corpus, rows):
        pages += 1
        start = time.perf_counter()
        score = quality.score_text(text, LANGUAGES)
        score_seconds += time.perf_counter() - start
        scores[kind].append(score.score)
        share = quality._non_word_share(text, LANGUAGES)
        if len(quality._WORD.findall(text)) >= quality.MIN_WORDS and share:
            non_words[kind].append(share)
        if score.garbage:
            above.append({"page": f"{name}:{number}", "score": score.score, "why": score.reason})
        # What a broken ToUnicode map would have made of this page (Latin pages with enough
        # words only: the others are not judged on words).
        if share:
            for label, table in BREAKS.items():
                broken[label].append(quality.score_text(text.translate(table), LANGUAGES).score)
            pua = "".join(chr(0xE000 + ord(c) % 0x1000) if not c.isspace() else c for c in text)
            broken["private-use"].append(quality.score_text(pua, LANGUAGES).score)
    read_seconds = time.perf_counter() - read_start - score_seconds
    return {
        "pages": pages,
        "threshold": quality.GARBAGE_SCORE,
        "score_by_kind": {kind: percentiles(v) for kind, v in sorted(scores.items())},
        "non_word_share_by_kind": {kind: percentiles(v) for kind, v in sorted(non_words.items())},
        "broken_pages_score": {label: percentiles(v) for label, v in broken.items()},
        "pages_at_or_above_threshold": above,
        "cost": {
            "score_ms_per_page": round(1000 * score_seconds / pages, 3),
            "read_ms_per_page": round(1000 * read_seconds / pages, 3),
            "ratio": round(score_seconds / read_seconds, 3),
        },
    }


def bench_ocr_confidence(corpus: Path, rows: list[dict]) -> dict:
    confidences: dict[str, list[float]] = defaultdict(list)
    low: list[dict] = []
    pages_seen: list[dict] = []
    for row in rows:
        suffix = Path(row["file"]).suffix
        if suffix not in TYPES or row["kind"].startswith(("corrupt", "encrypted")):
            continue
        try:
            extraction = extract_text(
                corpus / row["file"], content_type=TYPES[suffix], options=ExtractOptions()
            )
            for page in extraction.pages:
                if page.ocr_confidence is None:
                    continue
                label = f"{row['file']}:{page.number}"
                confidences[row["kind"]].append(page.ocr_confidence)
                pages_seen.append({"page": label, "confidence": page.ocr_confidence})
                if page.flagged:
                    low.append({"page": label, "why": page.flag_reason})
        except Exception as exc:  # an EMPTY blank page: no OCR confidence to report
            print(f"  {row['file']}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return {
        "threshold": quality.LOW_CONFIDENCE,
        "confidence_by_kind": {kind: percentiles(v) for kind, v in sorted(confidences.items())},
        "pages": pages_seen,
        "flagged": low,
    }


def bench_degraded(corpus: Path) -> list[dict]:
    results = []
    for name, index in DEGRADE_SOURCES:
        pdf = pdfium.PdfDocument(str(corpus / name))
        page = pdf[index]
        truth_words = {
            w.lower() for w in quality._WORD.findall(page.get_textpage().get_text_range())
        }
        image = _render(page, 200)
        dpi = image.info["dpi"]
        page.close()
        pdf.close()
        jobs = []
        for number, (_label, blur, noise, contrast) in enumerate(DEGRADATIONS, start=1):
            bad = makedocs.degraded(image, blur=blur, noise=noise, contrast=contrast, seed=number)
            jobs.append(OcrJob(number=number, image=bad, dpi=dpi))
        for (label, *_), read in zip(
            DEGRADATIONS, ocr_pages(jobs, languages="eng", parallel=2), strict=True
        ):
            words = [w.lower() for w in quality._WORD.findall(read.text)]
            right = sum(w in truth_words for w in words)
            found = {w for w in words if w in truth_words}
            results.append(
                {
                    "source": name,
                    "degradation": label,
                    "confidence": read.ocr_confidence,
                    "flagged": read.flagged,
                    # precision: OCR's words that are words of the page; recall: the page's
                    # distinct words that OCR found
                    "words_right": round(right / len(words), 3) if words else 0.0,
                    "words_found": round(len(found) / len(truth_words), 3),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--skip-ocr", action="store_true")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    rows = manifest(corpus)
    quality.score_text("warm up the word lists " * 10, LANGUAGES)
    results: dict = {"languages": list(LANGUAGES), "text_layers": bench_text_layers(corpus, rows)}
    if not args.skip_ocr:
        results["ocr"] = bench_ocr_confidence(corpus, rows)
        results["degraded"] = bench_degraded(corpus)
    print_tables(results)
    write_result("quality", results)


def _row(label: str, stats: dict) -> str:
    if not stats:
        return f"  {label:34} (none)"
    keys = ("n", "min", "p10", "p50", "p90", "p99", "max")
    return f"  {label:34} " + " ".join(f"{k}={stats[k]:<6}" for k in keys)


def print_tables(results: dict) -> None:
    text = results["text_layers"]
    print(f"Text layers: {text['pages']} pages, garbage threshold {text['threshold']}")
    print(" garbage score by kind")
    for kind, stats in text["score_by_kind"].items():
        print(_row(kind, stats))
    print(f" non-word share by kind (pages with >= {quality.MIN_WORDS} Latin words)")
    for kind, stats in text["non_word_share_by_kind"].items():
        print(_row(kind, stats))
    print(" the same pages broken as a bad ToUnicode map breaks them")
    for label, stats in text["broken_pages_score"].items():
        print(_row(label, stats))
    print(" corpus pages at or above the threshold")
    for page in text["pages_at_or_above_threshold"]:
        print(f"  {page['page']:40} {page['score']:<6} {page['why']}")
    cost = text["cost"]
    print(
        f" cost: scoring {cost['score_ms_per_page']} ms/page, reading the text layer "
        f"{cost['read_ms_per_page']} ms/page, ratio {cost['ratio']}"
    )
    if "ocr" in results:
        ocr = results["ocr"]
        print(f"OCR mean word confidence by kind (low below {ocr['threshold']})")
        for kind, stats in ocr["confidence_by_kind"].items():
            print(_row(kind, stats))
        for page in ocr["pages"]:
            print(f"  {page['page']:40} {page['confidence']}")
        print(" flagged:", ", ".join(f"{p['page']} ({p['why']})" for p in ocr["flagged"]) or "none")
        print("Degraded scans: confidence vs words right (precision) and found (recall)")
        for row in results["degraded"]:
            print(
                f"  {row['source'][:24]:24} {row['degradation']:26} conf {row['confidence']!s:6} "
                f"right {row['words_right']:<6} found {row['words_found']:<6}"
                f"{' FLAGGED' if row['flagged'] else ''}"
            )


if __name__ == "__main__":
    main()
