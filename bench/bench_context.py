"""Contextual embedding: each chunk embedded with its document's title and nearest heading
(issue 12, part 4).

    .venv/bin/python bench/bench_context.py [--corpus ../shared/corpus]
        [--fresh-vectors] [--bootstrap 10000]

The retrieval benchmark's tenant and query sets (bench/retrieval/, docs/retrieval.md), read
and chunked exactly as bench/bench_retrieval.py does. The stored chunk text is not changed
(the lexical side indexes it as it is, and it is what a hit shows); only the text sent to
the embedder is. Three embeddings of every chunk, all with the default backend
(``LocalEmbedder(backend="onnx-int8")``), queries embedded with the same backend:

* plain: the chunk text (the vectors production stores today);
* title: ``<title>\\n\\n<chunk text>``;
* title+heading: ``<title> — <heading>\\n\\n<chunk text>`` (just the title where no heading
  precedes the chunk).

The title is the file's own (PDF metadata Title, DOCX core property title) when it has one,
else the file name without its extension, underscores and dashes made spaces. The heading
is the nearest one at or before the chunk's start: for a DOCX, the last paragraph styled
Title or Heading n (python-docx) whose text is found in the extracted text at or before the
chunk's first character; for a PDF, the last outline entry (pypdfium2 ``get_toc``, in
outline order) whose page is at or before the chunk's first page. A PDF without an outline
gets no heading (the largest-font line of a page was not tried).

The chunks already fill the model's 256 word pieces, so the context takes tokens from the
chunk: a contextual text over 256 tokens is cut to 256 at a word-piece boundary (what the
model would do to it anyway); how many are cut, and by how many tokens, is reported.

Rows, as bench_int8_recall.py: vector-only (LanceDB) and the chosen hybrid on SQLite FTS5
(query-adaptive RRF, docs/retrieval.md "The fusion chosen"), each plain and with identical
texts collapsed. Per set, row and variant against plain: recall@1, recall@5, MRR@5 on all
queries, the paired difference with its standard error and bootstrap interval, McNemar's
exact p for the recalls and a sign-flip p for MRR@5 (bench_int8_recall.compare); and the
same on the queries none of whose hit chunks lost tokens to the context.

Vectors are kept in var/bench-retrieval/ by text: the plain ones in bench_int8_recall.py's
int8 file (either script reuses the other's), the contextual ones in a file of their own.
Writes bench/results/context.json and prints the tables.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LANCEDB_LOG", "error")
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
from bench_int8_recall import (  # noqa: E402
    DEPTH,
    METRICS,
    MODELS,
    SETS,
    SQLITE_TOKENIZE,
    chosen_method,
    compare,
    embed_cached,
)
from results_file import write_result  # noqa: E402
from retrieval.corpus import (  # noqa: E402
    Document,
)
from retrieval.evaluate import SET_NAMES, ranks_of  # noqa: E402
from retrieval.fusion import Collapsed, Hybrid, Signals  # noqa: E402
from retrieval.retrievers import Cached, SQLiteFTS5Retriever, VectorRetriever  # noqa: E402
from retrieval.scoring import HitJudge  # noqa: E402
from retrieval.start import Laps, load_benchmark  # noqa: E402

from documents.pipeline.chunk import split_text  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402

VARIANTS = ("plain", "title", "title+heading")
_HEADING_STYLE = re.compile(r"^(Title|Heading \d+)$")


def file_title(path: Path) -> tuple[str, str]:
    """The document's title and where it came from ("metadata" or "file name")."""
    title = ""
    try:
        if path.suffix.lower() == ".pdf":
            import pypdfium2

            pdf = pypdfium2.PdfDocument(str(path))
            title = pdf.get_metadata_dict().get("Title", "")
            pdf.close()
        else:
            import docx

            title = docx.Document(str(path)).core_properties.title or ""
    except Exception:  # a file python-docx cannot open (strict OOXML): the name will do
        title = ""
    title = " ".join(title.split())
    if title:
        return title, "metadata"
    return " ".join(re.sub(r"[_-]+", " ", path.stem).split()), "file name"


def pdf_outline(path: Path) -> list[tuple[int, str]]:
    """(1-based page, title) of each outline entry that points at a page, in outline order."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        entries = []
        for item in pdf.get_toc():
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            title = " ".join((item.get_title() or "").split())
            if index is not None and title:
                entries.append((index + 1, title))
        return entries
    finally:
        pdf.close()


def docx_headings(path: Path, text: str) -> list[tuple[int, str]]:
    """(offset in the extracted text, heading) of each Title/Heading n paragraph found there,
    searched in order, each after the previous one found."""
    import docx

    try:
        paragraphs = docx.Document(str(path)).paragraphs
    except Exception:
        return []
    found, at = [], 0
    for paragraph in paragraphs:
        name = paragraph.style.name if paragraph.style is not None else ""
        heading = " ".join(paragraph.text.split())
        if not heading or not _HEADING_STYLE.match(name or ""):
            continue
        where = text.find(paragraph.text.strip(), at)
        if where >= 0:
            found.append((where, heading))
            at = where + 1
    return found


def nearest(entries: list[tuple[int, str]], position: int) -> str:
    """The last entry (in list order) whose position is at or before ``position``."""
    chosen = ""
    for where, heading in entries:
        if where <= position:
            chosen = heading
    return chosen


def fit(embedder, text: str) -> tuple[str, int]:
    """``text`` cut to the model's input limit at a word-piece boundary, and the tokens cut."""
    limit = embedder.max_input_tokens
    n = embedder.count_tokens(text)
    if n <= limit:
        return text, 0
    offsets = embedder.token_offsets(text)
    keep = limit - 2  # [CLS] and [SEP]
    while True:
        cut = text[: offsets[keep - 1][1]]
        if embedder.count_tokens(cut) <= limit:
            return cut, n - embedder.count_tokens(cut)
        keep -= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--fresh-vectors", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=10_000)
    args = parser.parse_args()
    lap = Laps()
    walls = lap.walls
    loaded = load_benchmark(args.corpus, SETS)
    sets, documents = loaded.sets, loaded.documents
    problems, tenant = loaded.problems, loaded.tenant
    embedder = LocalEmbedder(backend="onnx-int8", cache_dir=MODELS)
    lap("read")

    titles, outlines = {}, {}
    for document in documents:
        path = args.corpus / document.source
        titles[document.source] = file_title(path)
        if path.suffix.lower() == ".pdf":
            outlines[document.source] = pdf_outline(path)
    lap("titles and outlines")

    ids, texts, counts = [], [], []
    contexts: dict[str, list[str]] = {v: [] for v in VARIANTS[1:]}
    headed = {"pdf": [0, 0], "docx": [0, 0]}  # kind -> [chunks with a heading, chunks]
    for document in tenant:
        path = args.corpus / document.source
        is_pdf = path.suffix.lower() == ".pdf"
        title = titles[document.source][0]
        entries = outlines[document.source] if is_pdf else docx_headings(path, document.text)
        for chunk in chunk_of(document, embedder):
            ids.append(f"{document.doc_id}#{chunk.index}")
            texts.append(chunk.text)
            counts.append(chunk.token_count)
            heading = nearest(entries, chunk.page_start if is_pdf else chunk.char_start)
            kind = headed["pdf" if is_pdf else "docx"]
            kind[0] += bool(heading)
            kind[1] += 1
            contexts["title"].append(title)
            contexts["title+heading"].append(f"{title} — {heading}" if heading else title)
    lap("chunk and contexts")

    sent: dict[str, list[str]] = {"plain": texts}
    sent_counts: dict[str, list[int]] = {"plain": counts}
    truncation = {}
    cut_ids: dict[str, set[str]] = {}
    for variant, context in contexts.items():
        fitted = [fit(embedder, f"{c}\n\n{t}") for c, t in zip(context, texts, strict=True)]
        sent[variant] = [t for t, _ in fitted]
        sent_counts[variant] = embedder.count_tokens_batch(sent[variant])
        cut = [n for _, n in fitted if n]
        cut_ids[variant] = {i for i, (_, n) in zip(ids, fitted, strict=True) if n}
        context_tokens = embedder.count_tokens_batch(context)
        truncation[variant] = {
            "chunks_cut": len(cut),
            "chunks": len(fitted),
            "tokens_cut_mean": round(float(np.mean(cut)), 1) if cut else 0,
            "tokens_cut_max": max(cut, default=0),
            # special tokens left out; "\n\n" adds none
            "context_tokens_mean": round(float(np.mean(context_tokens)) - 2, 1),
        }
    lap("fit to 256 tokens")

    vectors, embed_seconds, vector_files = {}, {}, {}
    for variant in VARIANTS:
        suffix = "" if variant == "plain" else "-context"
        vectors[variant], embed_seconds[variant], vector_files[variant] = embed_cached(
            embedder, sent[variant], sent_counts[variant], fresh=args.fresh_vectors, suffix=suffix
        )
        lap(f"embed ({variant})")

    chunk_texts = dict(zip(ids, texts, strict=True))
    judge = HitJudge(chunk_texts)
    signals = Signals(chunk_texts)
    queries = [q for qs in sets.values() for q in qs]
    ranks: dict[str, dict[str, dict[str, int | None]]] = {}
    names: dict[str, str] = {}
    query_vectors: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-context-") as tmp:
        sqlite = SQLiteFTS5Retriever(Path(tmp) / "porter.sqlite3", SQLITE_TOKENIZE)
        sqlite.load(ids, texts)
        lexical = Cached(sqlite, DEPTH)
        for variant in VARIANTS:
            vector_retriever = VectorRetriever.build(
                Path(tmp) / variant, embedder, ids, vectors[variant]
            )
            vector_retriever._vectors = query_vectors  # the queries are embedded once
            vector_retriever.prepare([q.query for q in queries])
            vector = Cached(vector_retriever, DEPTH)
            hybrid = Hybrid(lexical, vector, chosen_method(signals), depth=DEPTH)
            rows = {
                "vector": vector,
                "vector+collapse_identical": Collapsed(vector, chunk_texts, near=None, depth=DEPTH),
                "hybrid[sqlite] chosen": hybrid,
                "hybrid[sqlite] chosen+collapse_identical": Collapsed(
                    hybrid, chunk_texts, near=None, depth=DEPTH
                ),
            }
            ranks[variant] = {}
            for key, retriever in rows.items():
                names[key] = retriever.name
                ranks[variant][key] = ranks_of(retriever, queries, judge)
            vector_retriever.close()
            lap(f"score ({variant})")
        sqlite.close()
    # checked after the queries are embedded: with every chunk vector kept, none ran before
    if embedder.backend_in_use != "onnx-int8":
        raise SystemExit(f"asked for onnx-int8, {embedder.backend_in_use} ran")

    rng = np.random.default_rng(20261201)
    comparisons = {
        variant: {
            name: {
                key: compare(
                    [ranks["plain"][key][q.id] for q in qs],
                    [ranks[variant][key][q.id] for q in qs],
                    rng,
                    args.bootstrap,
                )
                for key in names
            }
            for name, qs in sets.items()
        }
        for variant in VARIANTS[1:]
    }
    # The same comparison on the queries none of whose chunks lost tokens to the context: if
    # the losses are the cut tails, they vanish here.
    whole = {}
    for variant in VARIANTS[1:]:
        whole[variant] = {}
        for name, qs in sets.items():
            kept = [q for q in qs if not targets(q, ids, judge) & cut_ids[variant]]
            whole[variant][name] = {
                "queries": len(kept),
                **{
                    key: compare(
                        [ranks["plain"][key][q.id] for q in kept],
                        [ranks[variant][key][q.id] for q in kept],
                        rng,
                        args.bootstrap,
                    )
                    for key in ("vector", "hybrid[sqlite] chosen")
                },
            }
    result = {
        "corpus": {"documents": len(documents), "chunks": len(ids), "manifest_problems": problems},
        "sets": {name: len(qs) for name, qs in sets.items()},
        "backend": embedder.backend_in_use,
        "rows": names,
        "titles": {name: {"title": t, "from": how} for name, (t, how) in titles.items()},
        "pdfs_with_outline": sum(bool(o) for o in outlines.values()),
        "pdfs": len(outlines),
        "chunks_with_heading": {k: {"with": v[0], "of": v[1]} for k, v in headed.items()},
        "truncation": truncation,
        "comparisons": comparisons,
        "comparisons_chunks_sent_whole": whole,
        "vector_files": vector_files,
        "embed_seconds": embed_seconds,
        "bootstrap_resamples": args.bootstrap,
        "walls": walls,
        "load_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    write_result("context", result)
    print_tables(result)


def targets(query, ids, judge) -> set[str]:
    """The chunks that count as a hit for ``query``: only its file's (and copies') can."""
    mine = [i for i in ids if i.startswith(query.file)]
    return {i for i, hit in zip(mine, judge.hits(query.sentence, mine), strict=True) if hit}


def chunk_of(document: Document, embedder):
    """The chunks as tenant.chunk_documents cuts them, with their pages and offsets."""
    return split_text(
        document.pages,
        counter=embedder,
        max_tokens=embedder.chunk_tokens,
        overlap=embedder.chunk_overlap,
    )


def print_tables(result: dict) -> None:
    print(
        f"\ntitles: {sum(t['from'] == 'metadata' for t in result['titles'].values())} of "
        f"{len(result['titles'])} from metadata; PDFs with an outline: "
        f"{result['pdfs_with_outline']} of {result['pdfs']}; chunks with a heading: "
        f"{result['chunks_with_heading']}; truncation: {result['truncation']}"
    )
    for variant, by_set in result["comparisons"].items():
        print(f"\n##### {variant} against plain (both onnx-int8)")
        for name in SET_NAMES:
            print(f"=== {name} ({result['sets'][name]} queries): plain -> {variant}")
            for key, by_metric in by_set[name].items():
                cells = []
                for metric in METRICS:
                    c = by_metric[metric]
                    flag = f" p={c['p']:.3f}" + ("" if c["within_noise"] else " !")
                    extra = (
                        f" ({c['reference_only']}/{c['other_only']})"
                        if "reference_only" in c
                        else ""
                    )
                    cells.append(
                        f"{metric} {c['reference']:.3f}->{c['other']:.3f} "
                        f"{c['difference']:+.4f}±{c['se_difference']:.4f} "
                        f"[{c['bootstrap_95'][0]:+.3f},{c['bootstrap_95'][1]:+.3f}]{extra}{flag}"
                    )
                print(f"  {key}\n    " + "\n    ".join(cells))
    for variant, by_set in result["comparisons_chunks_sent_whole"].items():
        print(f"\n##### {variant} against plain, queries whose hit chunks were sent whole")
        for name, entry in by_set.items():
            cells = [
                f"{key} "
                + ", ".join(
                    f"{m} {entry[key][m]['difference']:+.4f} p={entry[key][m]['p']:.2f}"
                    for m in METRICS
                )
                for key in ("vector", "hybrid[sqlite] chosen")
            ]
            print(f"  {name} ({entry['queries']} queries): " + "; ".join(cells))
    print(f"\nembedding seconds: {result['embed_seconds']}; walls: {result['walls']}")


if __name__ == "__main__":
    main()
