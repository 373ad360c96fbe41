"""The embedding stage alone: one document a batch against batches across documents.

    .venv/bin/python bench/bench_batches.py [--corpus ../shared/corpus] [--limit N]
                                            [--batch-chunks 256] [--passes 2]

The end-to-end bench (bench_end_to_end.py) times whole passes one after another, so on a
shared machine whose load moves by a factor of two within minutes its ratios say more about
the load than about the code. This one reads and chunks the end-to-end bench's files once
(untimed), groups the documents as the worker now does (in order, until a group holds
``--batch-chunks`` chunks), and for each group times, taking turns in alternating order:

* ``alone``: each document's chunks embedded on their own (embed_chunks, longest first within
  the document), as the worker did before batches across documents;
* ``together``: the group's chunks embedded at once (embed_parts, longest first across the
  documents), as the worker does now.

Both embed exactly the same texts with the same model and batch size, so the ratio of their
sums is what batching across documents changes in the embedding stage (on a machine loaded
by others it still moves: take several passes). Also reported, free of any load: the tokens
each way sends once every batch is padded to its longest text (the model's work), and the
batches sent, for one document a batch, batches across documents, and every chunk at once
(the end-to-end bench's stricter bound). ``--padding-only`` skips the timing.
Writes bench/results/batches.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_end_to_end import _NoCache, _prepare, select_files  # noqa: E402
from results_file import write_result  # noqa: E402

from documents.pipeline.chunk import _sentencizer  # noqa: E402
from documents.pipeline.embed import Part, embed_chunks, embed_parts  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402


def groups_of(items: list[tuple], batch_chunks: int) -> list[list[tuple]]:
    groups, group = [], []
    for item in items:
        group.append(item)
        if sum(len(g[3]) for g in group) >= batch_chunks:
            groups.append(group)
            group = []
    return groups + ([group] if group else [])


def padded(counts: list[int], batch_size: int) -> tuple[int, int]:
    """Tokens sent once each batch is padded to its longest text, and batches, when
    ``counts`` are sent longest first as embed_chunks sends them."""
    ordered = sorted(counts, reverse=True)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    return sum(b[0] * len(b) for b in batches), len(batches)


def padding(items: list[tuple], groups: list[list[tuple]], batch_size: int) -> dict:
    def counts(docs):
        return [c.token_count for _, _, _, chunks in docs for c in chunks]

    ways = {
        "real": (sum(counts(items)), None),
        "alone": [padded(counts([item]), batch_size) for item in items],
        "together": [padded(counts(group), batch_size) for group in groups],
        "all_at_once": [padded(counts(items), batch_size)],
    }
    result = {"real_tokens": ways.pop("real")[0]}
    for way, parts in ways.items():
        result[way] = {
            "padded_tokens": sum(t for t, _ in parts),
            "batches": sum(b for _, b in parts),
        }
    return result


def alone(embedder, group) -> float:
    start = time.perf_counter()
    for path, _, _, chunks in group:
        embed_chunks(
            embedder,
            [c.text for c in chunks],
            title=path.stem,
            token_counts=[c.token_count for c in chunks],
        )
    return time.perf_counter() - start


def together(embedder, group) -> float:
    start = time.perf_counter()
    embed_parts(
        embedder,
        [
            Part(
                texts=[c.text for c in chunks],
                cache=_NoCache(),
                scope="bench",
                title=path.stem,
                token_counts=[c.token_count for c in chunks],
            )
            for path, _, _, chunks in group
        ],
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--batch-chunks", type=int, default=256)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--padding-only", action="store_true")
    args = parser.parse_args()

    files, _ = select_files(args.corpus.resolve(), with_freeculture=False, limit=args.limit)
    embedder = LocalEmbedder(chunk_tokens=256, chunk_overlap=32)
    _sentencizer()
    embedder.embed_documents(["warm up the model and torch's thread pool"] * 32)
    timings = dict.fromkeys(("extract", "chunk", "embed", "index"), 0.0)
    items = [_prepare(path, embedder, timings) for path in files]
    groups = groups_of(items, args.batch_chunks)
    chunks = sum(len(i[3]) for i in items)
    print(f"{len(items)} documents, {chunks} chunks, {len(groups)} groups", flush=True)
    pad = padding(items, groups, embedder.batch_size)
    print(f"padded tokens and batches: {pad}", flush=True)

    passes = []
    for p in range(0 if args.padding_only else args.passes):
        load_before = os.getloadavg()[0]
        sums = {"alone": 0.0, "together": 0.0}
        ratios = []
        for g, group in enumerate(groups):
            order = ("alone", "together") if (p + g) % 2 == 0 else ("together", "alone")
            seconds = {}
            for variant in order:
                seconds[variant] = (alone if variant == "alone" else together)(embedder, group)
                sums[variant] += seconds[variant]
            ratios.append(seconds["alone"] / seconds["together"])
        row = {
            "alone_seconds": round(sums["alone"], 2),
            "together_seconds": round(sums["together"], 2),
            "speedup": round(sums["alone"] / sums["together"], 3),
            "group_speedup_median": round(statistics.median(ratios), 3),
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        print(f"pass {p + 1}: {row}", flush=True)
        passes.append(row)
    result = {
        "documents": len(items),
        "chunks": chunks,
        "groups": len(groups),
        "batch_chunks": args.batch_chunks,
        "batch_size": embedder.batch_size,
        "padding": pad,
        "passes": passes,
    }
    if passes:
        result["speedup_median"] = round(statistics.median(r["speedup"] for r in passes), 3)
        print(f"embedding alone / together, median of passes: {result['speedup_median']}")
    write_result("batches", result)


if __name__ == "__main__":
    main()
