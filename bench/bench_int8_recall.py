"""Retrieval recall with the int8 ONNX embedder against torch (issue 14, part 1's condition).

    .venv/bin/python bench/bench_int8_recall.py [--corpus ../shared/corpus]
        [--fresh-vectors] [--bootstrap 10000]

The retrieval benchmark's tenant and query sets (bench/retrieval/, docs/retrieval.md), read
and chunked exactly as bench/bench_retrieval.py does, the chunks embedded twice through the
embedding stage (``embed_chunks``): with ``LocalEmbedder(backend="torch")`` and with
``LocalEmbedder(backend="onnx-int8")``, and the queries with each backend too. Four
configurations (chunks embedded by, queries embedded by) answer the three sets: torch/torch
(the reference), int8/int8 (a deployment on the int8 backend), torch/int8 (vectors stored, and
kept in the embedding cache, before a switch to int8; queries after it) and int8/torch (a
worker that fell back to torch). Rows:

* vector-only (LanceDB), plain and with identical chunk texts collapsed;
* the chosen hybrid on the embedded default's lexical side (SQLite FTS5): query-adaptive RRF
  (term coverage >= 0.5 ? lexical weight 1 : RRF k 10, lexical 0.3 / vector 0.7, see
  docs/retrieval.md "The fusion chosen"), plain and with identical texts collapsed. The
  lexical side is the same in every configuration; only the vector side changes.

Per set, row and configuration against the reference: recall@1, recall@5 and MRR@5 on all 400
queries, the difference, and its noise from the per-query pairs (the same query answered by
both): the standard error of the mean paired difference, a paired bootstrap 95% interval
(``--bootstrap`` resamples of the queries), and for the recalls the discordant queries (found
by one side only) with McNemar's exact two-sided p. A configuration is "within noise" on a
figure when that test's p is at least 0.05 (for MRR@5, a sign-flip randomisation test of the
per-query differences). The reference figure's own standard error is kept beside it, for
scale.

Vectors are kept in var/bench-retrieval/ by text (the torch file is the one
bench_retrieval.py keeps, so either script reuses the other's; the int8 file is named after
the ONNX model file, which carries the model's and the libraries' fingerprint), so a second
run embeds nothing. The ONNX file is built in var/models/ on first use, as a worker builds it.
Writes bench/results/int8_recall.json and prints the tables.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# see bench_retrieval.py: lance warns on every search without this
os.environ.setdefault("LANCEDB_LOG", "error")
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
from results_file import write_result  # noqa: E402
from retrieval.evaluate import SET_NAMES, K, ranks_of  # noqa: E402
from retrieval.fusion import RRF, Adaptive, Collapsed, Hybrid, Signals  # noqa: E402
from retrieval.retrievers import Cached, SQLiteFTS5Retriever, VectorRetriever  # noqa: E402
from retrieval.scoring import HitJudge  # noqa: E402
from retrieval.start import Laps, load_benchmark  # noqa: E402
from retrieval.tenant import chunk_documents  # noqa: E402

from documents.pipeline.embed import embed_chunks  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402

SETS = ROOT / "bench" / "retrieval" / "sets"
CACHE = ROOT / "var" / "bench-retrieval"
MODELS = ROOT / "var" / "models"  # LOCAL_EMBEDDING_CACHE_DIR's default
DEPTH = 50
SQLITE_TOKENIZE = "porter unicode61 remove_diacritics 2"
BACKENDS = ("torch", "onnx-int8")
# (chunks embedded by, queries embedded by); the first is the reference. The mixed ones are
# what a switch of backend meets: vectors stored (and cached) before it, queries embedded
# after it; or one worker that fell back to torch.
CONFIGS = (
    ("torch", "torch"),
    ("onnx-int8", "onnx-int8"),
    ("torch", "onnx-int8"),
    ("onnx-int8", "torch"),
)


def config_name(config: tuple[str, str]) -> str:
    return f"chunks {config[0]}, queries {config[1]}"


METRICS = ("recall@1", "recall@5", "mrr@5")


def chosen_method(signals: Signals) -> Adaptive:
    """The fusion bench_retrieval.py chose on SQLite's side (docs/retrieval.md)."""
    return Adaptive(RRF(k=10), "term_coverage", 0.5, 1.0, 0.3, signals)


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
    embedders = {
        "torch": LocalEmbedder(backend="torch"),
        "onnx-int8": LocalEmbedder(backend="onnx-int8", cache_dir=MODELS),
    }
    # the token counter is the same for every backend, so the chunks are too
    ids, texts, counts = chunk_documents(tenant, embedders["torch"])
    chunk_texts = dict(zip(ids, texts, strict=True))
    lap("read and chunk")

    judge = HitJudge(chunk_texts)
    signals = Signals(chunk_texts)
    queries = [q for qs in sets.values() for q in qs]
    # (chunk backend, query backend) -> row -> query id -> first-hit rank
    ranks: dict[tuple[str, str], dict[str, dict[str, int | None]]] = {}
    names: dict[str, str] = {}
    embed_seconds: dict[str, float | None] = {}
    vector_files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        sqlite = SQLiteFTS5Retriever(Path(tmp) / "porter.sqlite3", SQLITE_TOKENIZE)
        sqlite.load(ids, texts)
        lexical = Cached(sqlite, DEPTH)
        chunk_vectors = {}
        for backend in BACKENDS:
            chunk_vectors[backend], seconds, kept = embed_cached(
                embedders[backend], texts, counts, fresh=args.fresh_vectors
            )
            embed_seconds[backend], vector_files[backend] = seconds, kept
            lap(f"embed chunks ({backend})")
        for config in CONFIGS:
            chunks_by, queries_by = config
            embedder = embedders[queries_by]
            vector_retriever = VectorRetriever.build(
                Path(tmp) / "-".join(config), embedder, ids, chunk_vectors[chunks_by]
            )
            vector_retriever.prepare([q.query for q in queries])
            if embedder.backend_in_use != queries_by:
                raise SystemExit(f"asked for {queries_by}, {embedder.backend_in_use} ran")
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
            ranks[config] = {}
            for key, retriever in rows.items():
                names[key] = retriever.name
                ranks[config][key] = ranks_of(retriever, queries, judge)
            vector_retriever.close()
            lap(f"score (chunks {chunks_by}, queries {queries_by})")
        sqlite.close()

    rng = np.random.default_rng(20261201)
    comparisons = {}
    for config in CONFIGS[1:]:
        comparisons[config_name(config)] = {
            name: {
                key: compare(
                    [ranks[CONFIGS[0]][key][q.id] for q in qs],
                    [ranks[config][key][q.id] for q in qs],
                    rng,
                    args.bootstrap,
                )
                for key in names
            }
            for name, qs in sets.items()
        }
    within = {
        config: all(
            c[m]["within_noise"] for by_row in by_set.values() for c in by_row.values() for m in c
        )
        for config, by_set in comparisons.items()
    }
    result = {
        "corpus": {"documents": len(documents), "chunks": len(ids), "manifest_problems": problems},
        "sets": {name: len(qs) for name, qs in sets.items()},
        "rows": names,
        "comparisons": comparisons,
        "within_noise_everywhere": within,
        "vector_files": vector_files,
        "embed_seconds": embed_seconds,
        "bootstrap_resamples": args.bootstrap,
        "walls": walls,
        "load_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    write_result("int8_recall", result)
    print_tables(result)


def embed_cached(
    embedder, texts, counts, *, fresh: bool, suffix: str = ""
) -> tuple[np.ndarray, float | None, str]:
    """One vector per text, the seconds spent embedding (None when all were cached) and the
    file the vectors are kept in. The torch file is bench_retrieval.py's (same name, keys);
    ``suffix`` names another file (bench_context.py keeps its contextual texts apart)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = f"vectors-{embedder.model_name.replace('/', '_')}"
    if embedder.backend != "torch":
        from documents.pipeline.embedders.onnx_model import MATMUL_PER_CHANNEL, onnx_model_file

        built = onnx_model_file(embedder._dir, embedder.cache_dir, MATMUL_PER_CHANNEL)
        stem += f"-{built.path.stem}"
    path = CACHE / f"{stem}{suffix}.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists() and not fresh:
        stored = np.load(path)
        known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    todo = {}
    for key, text, count in zip(keys, texts, counts, strict=True):
        if key not in known and key not in todo:
            todo[key] = (text, count)
    seconds = None
    if todo:
        print(f"embedding {len(todo)} chunk texts with {embedder.backend}...", flush=True)
        start = time.perf_counter()
        matrix = embed_chunks(
            embedder,
            [t for t, _ in todo.values()],
            token_counts=[c for _, c in todo.values()],
        )
        seconds = round(time.perf_counter() - start, 1)
        if embedder.backend_in_use != embedder.backend:
            raise SystemExit(f"asked for {embedder.backend}, {embedder.backend_in_use} ran")
        known.update(zip(todo, matrix, strict=True))
        np.savez(path, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys]).astype(np.float32), seconds, path.name


def per_query(ranks: list[int | None]) -> dict[str, np.ndarray]:
    return {
        "recall@1": np.array([r == 1 for r in ranks], dtype=float),
        "recall@5": np.array([r is not None and r <= K for r in ranks], dtype=float),
        "mrr@5": np.array([1 / r if r is not None and r <= K else 0.0 for r in ranks]),
    }


def compare(torch_ranks, int8_ranks, rng, resamples: int) -> dict:
    """Per metric: both figures, the paired difference, its standard error, a paired
    bootstrap 95% interval, and the p of a paired test: for the recalls McNemar's exact test
    on the discordant queries, for MRR@5 its randomisation form (the signs of the per-query
    differences flipped at random). Within noise: p >= 0.05. The bootstrap interval is not
    the criterion: with a handful of discordant queries all one way it can exclude 0 when
    the exact test says such a split is common by chance (3 against 0 has p = 0.25)."""
    a, b = per_query(torch_ranks), per_query(int8_ranks)
    n = len(torch_ranks)
    picks = rng.integers(0, n, size=(resamples, n))
    out = {}
    for metric in METRICS:
        d = b[metric] - a[metric]
        boot = d[picks].mean(axis=1)
        low, high = np.percentile(boot, [2.5, 97.5])
        p_torch = a[metric].mean()
        entry = {
            "reference": round(float(p_torch), 4),
            "other": round(float(b[metric].mean()), 4),
            "difference": round(float(d.mean()), 4),
            "se_difference": round(float(d.std(ddof=1) / math.sqrt(n)), 4),
            "bootstrap_95": [round(float(low), 4), round(float(high), 4)],
            "se_torch_alone": round(float(a[metric].std(ddof=1) / math.sqrt(n)), 4),
            "queries_changed": int((d != 0).sum()),
        }
        if metric != "mrr@5":
            torch_only = int(((a[metric] == 1) & (b[metric] == 0)).sum())
            int8_only = int(((a[metric] == 0) & (b[metric] == 1)).sum())
            entry["reference_only"], entry["other_only"] = torch_only, int8_only
            entry["p"] = round(mcnemar_exact(torch_only, int8_only), 4)
        else:
            entry["p"] = round(sign_flip_p(d, rng, resamples), 4)
        entry["within_noise"] = entry["p"] >= 0.05
        out[metric] = entry
    return out


def sign_flip_p(d: np.ndarray, rng, resamples: int) -> float:
    """Two-sided randomisation p of a mean paired difference: how often flipping the sign of
    each nonzero difference at random gives a mean at least as far from 0."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 1.0
    observed = abs(nonzero.sum())
    signs = rng.choice((-1.0, 1.0), size=(resamples, nonzero.size))
    extreme = int((np.abs(signs @ nonzero) >= observed - 1e-12).sum())
    return (extreme + 1) / (resamples + 1)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p: the binomial test of min(b, c) in b + c trials at 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def print_tables(result: dict) -> None:
    for config, by_set in result["comparisons"].items():
        print(f"\n##### {config} against chunks torch, queries torch")
        for name in SET_NAMES:
            print(f"=== {name} ({result['sets'][name]} queries): torch -> other, diff ± SE [95%]")
            for key, by_metric in by_set[name].items():
                cells = []
                for metric in METRICS:
                    c = by_metric[metric]
                    flag = f" p={c['p']:.2f}" + ("" if c["within_noise"] else " !")
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
        print(
            "within noise on every set, row and figure:",
            result["within_noise_everywhere"][config],
        )
    print(f"\nembedding seconds: {result['embed_seconds']}; walls: {result['walls']}")


if __name__ == "__main__":
    main()
