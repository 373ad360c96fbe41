"""Tables kept whole: how many table rows end up whole in one chunk, and with their header,
before and after tables.py / the table-aware chunker, and what it costs in extraction time
(not a test; figures go in docs/quality-and-tables.md).

    .venv/bin/python bench/bench_tables.py [--corpus ../shared/corpus] [--runs 3]

"Before" is the code as it was at BEFORE_COMMIT (docx_text.py and chunk.py loaded from git),
with PDF pages read by pypdfium2 alone (ExtractOptions(tables=False)); "after" is this tree.
Chunks: the local MiniLM tokenizer, 256 tokens with 32 of overlap (the local defaults).

The rows counted are the tables' own rows, read independently of either pipeline: for a PDF
the rows of pdfplumber's tables (cell text as pdfplumber reads it), for a Word file the rows of
python-docx's tables. A row is "whole" in a chunk when the chunk's text, whitespace removed,
holds the row's cells in order; "with its header" when it holds the header's cells and then
the row's. Files: the corpus files whose manifest kind says tables, and every other PDF in
which the page-object check finds a table page.

Cost: extraction time per table file with tables on and off (best of --runs, same run), and
the page-object check alone on every page of every corpus PDF against reading the page's text.
Prints tables and writes bench/results/tables.json.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docx  # noqa: E402
import pdfplumber  # noqa: E402
import pypdfium2 as pdfium  # noqa: E402

from documents.pipeline.aligned_tables import find_aligned_tables, looks_aligned  # noqa: E402
from documents.pipeline.chunk import split_text  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402
from documents.pipeline.extract import DOCX, PDF, extract_text  # noqa: E402
from documents.pipeline.tables import page_objects_stats  # noqa: E402
from documents.pipeline.types import ExtractOptions, Page  # noqa: E402

# The last commit before tables and the table-aware chunker.
BEFORE_COMMIT = "0661c42"
MAX_TOKENS, OVERLAP = 256, 32


def load_before(module: str):
    """documents/pipeline/<module>.py as it was at BEFORE_COMMIT, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:documents/pipeline/{module}.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"before_{module}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"before_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up there
    spec.loader.exec_module(loaded)
    return loaded


def squash(text: str) -> str:
    return "".join(text.replace("\\|", "|").split())


def holds_in_order(haystack: str, needles: list[str]) -> bool:
    pos = 0
    for needle in needles:
        found = haystack.find(needle, pos)
        if found < 0:
            return False
        pos = found + len(needle)
    return True


def pdf_truth(
    path: Path, aligned: dict[int, list] | None = None
) -> list[tuple[list[str], list[list[str]]]]:
    """(header cells, rows of cells) of every pdfplumber table in the PDF, each cell's text
    read by PDFium from pdfplumber's cell box (so both sides are judged on the same
    characters: pdfplumber and PDFium order the characters of some cells differently). A
    table at the top of a page with as many columns as the previous page's last table
    continues it, and takes its header.

    ``aligned``: pages (1-based) that pass no ruled check where aligned_tables.py found
    tables, and their boxes. There the truth is pdfplumber's own text strategy on its own parse of
    the page (cell text as pdfplumber reads it), the rows inside each box."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    previous: tuple[int, list[str]] | None = None  # columns and header of the last table
    document = pdfium.PdfDocument(str(path))
    with pdfplumber.open(path) as pdf:
        for index, page in enumerate(pdf.pages):
            textpage = document[index].get_textpage()
            height = float(page.height)
            if aligned and index + 1 in aligned:
                found = []
                tables += _aligned_truth(page, aligned[index + 1])
            else:
                found = page.find_tables()
            for number, table in enumerate(found):
                rows = []
                for row in table.rows:
                    cells = [_cell(textpage, cell, height) for cell in row.cells]
                    if any(cells):
                        rows.append(cells)
                # leading title rows (one filled cell) are not the header
                while len(rows) > 2 and sum(bool(c) for c in rows[0]) == 1:
                    rows = rows[1:]
                if len(rows) < 2:
                    continue
                columns = len(rows[0])
                top = table.bbox[1] < 0.15 * height
                if number == 0 and top and previous and previous[0] == columns:
                    header = previous[1]
                    body = rows if rows[0] != header else rows[1:]
                else:
                    header, body = rows[0], rows[1:]
                previous = (columns, header)
                tables.append(([c for c in header if c], [[c for c in row if c] for row in body]))
            if not found:
                previous = None
            textpage.close()
            page.close()
    document.close()
    return tables


TEXT_STRATEGY = {"vertical_strategy": "text", "horizontal_strategy": "text"}


def _aligned_truth(page, boxes: list) -> list[tuple[list[str], list[list[str]]]]:
    tables = []
    found = page.find_tables(TEXT_STRATEGY)
    for x0, top, x1, bottom in boxes:
        for table in found:
            if table.bbox[2] < x0 or table.bbox[0] > x1:
                continue
            rows = [
                [squash(cell or "") for cell in cells]
                for row, cells in zip(table.rows, table.extract(), strict=True)
                if top - 1 <= (row.bbox[1] + row.bbox[3]) / 2 <= bottom + 1
            ]
            rows = [[c for c in row if c] for row in rows]
            rows = [row for row in rows if row]
            if len(rows) >= 2:
                tables.append((rows[0], rows[1:]))
    return tables


def _cell(textpage, bbox, height: float) -> str:
    if bbox is None:
        return ""
    x0, top, x1, bottom = bbox
    return squash(textpage.get_text_bounded(x0, height - bottom, x1, height - top))


def docx_truth(path: Path) -> list[tuple[list[str], list[list[str]]]]:
    tables = []
    for table in docx.Document(str(path)).tables:
        rows = []
        for row in table.rows:
            cells: list[str] = []
            for cell in row.cells:
                text = squash(cell.text)
                if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                    cells.append(text)
            if cells:
                rows.append(cells)
        if len(rows) >= 2:
            tables.append((rows[0], rows[1:]))
    return tables


def score(chunks, truth) -> dict:
    texts = [squash(chunk.text) for chunk in chunks]
    rows = whole = with_header = 0
    for header, body in truth:
        for row in body:
            rows += 1
            whole += any(holds_in_order(t, row) for t in texts)
            with_header += any(holds_in_order(t, header + row) for t in texts)
    return {"rows": rows, "whole": whole, "whole_with_header": with_header}


def table_files(corpus: Path, rows: list[dict]) -> list[tuple[str, str]]:
    """(file, content type): the manifest's table files, and PDFs with a table page."""
    files = []
    for row in rows:
        name = row["file"]
        # tbl-having-tables.docx: tables whose every cell is empty (the file fails as EMPTY)
        if "tables" in row["kind"] and name != "tbl-having-tables.docx":
            files.append((name, PDF if name.endswith(".pdf") else DOCX))
    return files


def detection_scan(corpus: Path, rows: list[dict]) -> dict:
    """The page-object checks on every page of every PDF: time, and pages they pass. Pages
    that pass the alignment check (and not the ruled one) go through the aligned-table
    finder, timed, with the boxes of the tables it keeps."""
    check = aligned_check = read = find = 0.0
    pages = candidates = 0
    detected: dict[str, list[int]] = {}
    aligned: dict[str, dict[int, list]] = {}
    for row in rows:
        if not row["file"].endswith(".pdf"):
            continue
        password = "" if row["password"] in ("", "(empty)") else row["password"]
        try:
            pdf = pdfium.PdfDocument(str(corpus / row["file"]), password=password or None)
        except pdfium.PdfiumError:
            continue
        for index in range(len(pdf)):
            page = pdf[index]
            start = time.perf_counter()
            textpage = page.get_textpage()
            textpage.get_text_range()
            middle = time.perf_counter()
            stats = page_objects_stats(page)
            after_ruled = time.perf_counter()
            lined_up = not stats.table and looks_aligned(page)
            after_aligned = time.perf_counter()
            read += middle - start
            check += after_ruled - middle
            aligned_check += after_aligned - after_ruled
            pages += 1
            if stats.table:
                detected.setdefault(row["file"], []).append(index + 1)
            elif lined_up and not page.get_rotation():
                candidates += 1
                found = find_aligned_tables(page, textpage, page.get_height())
                find += time.perf_counter() - after_aligned
                if found:
                    boxes = [table.bbox for table in found]
                    aligned.setdefault(row["file"], {})[index + 1] = boxes
            textpage.close()
            page.close()
        pdf.close()
    return {
        "pages": pages,
        "check_ms_per_page": round(1000 * check / pages, 4),
        "read_text_ms_per_page": round(1000 * read / pages, 4),
        "ratio": round(check / read, 4),
        "pages_detected": {name: numbers for name, numbers in sorted(detected.items())},
        "aligned": {
            "check_ms_per_page": round(1000 * aligned_check / pages, 4),
            "ratio": round(aligned_check / read, 4),
            "candidates": candidates,
            "find_ms_per_candidate": round(1000 * find / max(candidates, 1), 1),
            "pages_found": {name: sorted(found) for name, found in sorted(aligned.items())},
        },
        "aligned_boxes": aligned,
    }


def text_only_overhead(
    corpus: Path, rows: list[dict], detected: dict, aligned_found: dict, runs: int
) -> dict:
    """What pages without tables pay: extract_text with tables on and off, alternated, best of
    ``runs``, over the corpus text PDFs in which no page passes the ruled check and no
    aligned table is found (OCR off): pages of prose that line up still pay the finder."""
    files = [
        corpus / row["file"]
        for row in rows
        if row["kind"].startswith("text-pdf")
        and row["file"] not in detected
        and row["file"] not in aligned_found
        and not row["file"].startswith("synthetic")
    ]
    best = {True: float("inf"), False: float("inf")}
    pages = 0
    for _ in range(runs):
        for tables in (False, True):
            options = ExtractOptions(tables=tables, ocr_min_chars=0)
            start = time.perf_counter()
            pages = sum(
                1
                for path in files
                for _ in extract_text(path, content_type=PDF, options=options).pages
            )
            best[tables] = min(best[tables], time.perf_counter() - start)
    return {
        "files": len(files),
        "pages": pages,
        "ms_per_page_tables_off": round(1000 * best[False] / pages, 3),
        "ms_per_page_tables_on": round(1000 * best[True] / pages, 3),
        "ratio": round(best[True] / best[False], 3),
    }


def timed_extract(path: Path, content_type: str, options: ExtractOptions, runs: int):
    best, pages = float("inf"), []
    for _ in range(runs):
        start = time.perf_counter()
        pages = list(extract_text(path, content_type=content_type, options=options).pages)
        best = min(best, time.perf_counter() - start)
    return best, pages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    before_chunk, before_docx = load_before("chunk"), load_before("docx_text")
    embedder = LocalEmbedder()

    scan = detection_scan(corpus, rows)
    files = table_files(corpus, rows)
    listed = {name for name, _ in files}
    # synthetic-concat-607p.pdf repeats three other corpus files' pages: counted once, there
    aligned_boxes = scan.pop("aligned_boxes")
    files += [
        (name, PDF)
        for name in [*scan["pages_detected"], *aligned_boxes]
        if name not in listed and not name.startswith("synthetic")
    ]
    files = list(dict.fromkeys(files))

    text_only = text_only_overhead(corpus, rows, scan["pages_detected"], aligned_boxes, args.runs)

    per_file = []
    for name, content_type in files:
        path = corpus / name
        if content_type == PDF:
            truth = pdf_truth(path, aligned_boxes.get(name))
            off, before_pages = timed_extract(path, PDF, ExtractOptions(tables=False), args.runs)
            on, after_pages = timed_extract(path, PDF, ExtractOptions(), args.runs)
        else:
            truth = docx_truth(path) if name != "strict.docx" else []
            start = time.perf_counter()
            before_pages = [Page(1, before_docx.docx_text(path).strip())]
            off = time.perf_counter() - start
            on, after_pages = timed_extract(path, DOCX, ExtractOptions(), 1)
        if not truth:
            continue
        before = before_chunk.split_text(
            before_pages, counter=embedder, max_tokens=MAX_TOKENS, overlap=OVERLAP
        )
        after = split_text(after_pages, counter=embedder, max_tokens=MAX_TOKENS, overlap=OVERLAP)
        per_file.append(
            {
                "file": name,
                "pages": len(after_pages),
                "before": score(before, truth),
                "after": score(after, truth),
                "chunks_before": len(before),
                "chunks_after": len(after),
                "seconds_tables_off": round(off, 3),
                "seconds_tables_on": round(on, 3),
            }
        )
    totals = {
        side: {
            key: sum(f[side][key] for f in per_file)
            for key in ("rows", "whole", "whole_with_header")
        }
        for side in ("before", "after")
    }
    pdfs = [f for f in per_file if f["file"].endswith(".pdf")]
    results = {
        "chunking": {"model": "all-MiniLM-L6-v2", "max_tokens": MAX_TOKENS, "overlap": OVERLAP},
        "before_commit": BEFORE_COMMIT,
        "files": per_file,
        "totals": totals,
        "pdf_seconds": {
            "tables_off": round(sum(f["seconds_tables_off"] for f in pdfs), 3),
            "tables_on": round(sum(f["seconds_tables_on"] for f in pdfs), 3),
            "table_pages": sum(
                len(scan["pages_detected"].get(f["file"], []))
                + len(scan["aligned"]["pages_found"].get(f["file"], []))
                for f in pdfs
            ),
        },
        "detection": scan,
        "text_only_files": text_only,
    }
    print_tables(results)
    write_result("tables", results)


def print_tables(results: dict) -> None:
    print(f"{'file':38} {'rows':>5} {'whole b/a':>11} {'w/ header b/a':>14} {'s off/on':>14}")
    for f in results["files"]:
        b, a = f["before"], f["after"]
        print(
            f"{f['file'][:38]:38} {b['rows']:>5} {b['whole']:>5}/{a['whole']:<5} "
            f"{b['whole_with_header']:>7}/{a['whole_with_header']:<6} "
            f"{f['seconds_tables_off']:>6}/{f['seconds_tables_on']:<7}"
        )
    t = results["totals"]
    print(
        f"{'total':38} {t['before']['rows']:>5} {t['before']['whole']:>5}/{t['after']['whole']:<5} "
        f"{t['before']['whole_with_header']:>7}/{t['after']['whole_with_header']:<6}"
    )
    s = results["pdf_seconds"]
    print(
        f"PDF table files: {s['tables_off']} s without tables, {s['tables_on']} s with "
        f"({s['table_pages']} table pages)"
    )
    d = results["detection"]
    print(
        f"Page-object check on {d['pages']} corpus pages: {d['check_ms_per_page']} ms/page, "
        f"reading the text {d['read_text_ms_per_page']} ms/page, ratio {d['ratio']}"
    )
    a = d["aligned"]
    print(
        f"Alignment check: {a['check_ms_per_page']} ms/page (ratio to reading {a['ratio']}); "
        f"{a['candidates']} pages pass it, {a['find_ms_per_candidate']} ms each in the finder"
    )
    for name, numbers in a["pages_found"].items():
        print(f"  aligned tables: {name}: pages {numbers}")
    o = results["text_only_files"]
    print(
        f"Text PDFs without a table page ({o['files']} files, {o['pages']} pages): "
        f"{o['ms_per_page_tables_off']} ms/page tables off, {o['ms_per_page_tables_on']} on, "
        f"ratio {o['ratio']}"
    )
    for name, numbers in d["pages_detected"].items():
        print(f"  detected: {name}: pages {numbers}")


if __name__ == "__main__":
    main()
