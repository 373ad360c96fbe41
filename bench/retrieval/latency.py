"""Search latency on a synthetic tenant of many chunks (10,000 by default).

This times the retrieval functions a search endpoint calls, each on its own and in sequence;
the API itself is timed by bench/retrieval/production.py on a tenant made the same way. The
tenant is made from the benchmark's own chunks: each synthetic chunk joins the first half of
one real chunk's words to the second half of another's (real vocabulary and term frequencies,
realistic length, no two alike), and its vector is the normalised sum of the two chunks'
vectors plus a little noise (the vector search is a flat scan whose cost does not depend on the
values). Queries are a mix of the three sets' queries; a few are run first, untimed, to warm
caches.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from retrieval.corpus import words
from retrieval.retrievers import PostgresFTSRetriever, SQLiteFTS5Retriever, VectorRetriever

SEED = 20261201
WARM_UP = 10


def synthetic_tenant(
    texts: Sequence[str], vectors: np.ndarray, size: int
) -> tuple[list[str], list[str], np.ndarray]:
    r = random.Random(SEED)
    noise = np.random.default_rng(SEED)
    ids, out_texts = [], []
    out_vectors = np.zeros((size, vectors.shape[1]), dtype=np.float32)
    split_words = [words(t) for t in texts]
    for i in range(size):
        a, b = r.randrange(len(texts)), r.randrange(len(texts))
        first, second = split_words[a], split_words[b]
        out_texts.append(" ".join(first[: len(first) // 2] + second[len(second) // 2 :]))
        v = vectors[a] + vectors[b] + noise.normal(0, 0.01, vectors.shape[1]).astype(np.float32)
        out_vectors[i] = v / np.linalg.norm(v)
        ids.append(f"synthetic-{i:05d}#0")
    return ids, out_texts, out_vectors


def _time(calls: Sequence[Callable[[], object]]) -> dict:
    for call in calls[:WARM_UP]:
        call()
    seconds = []
    for call in calls:
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], 2),
        "queries": len(ms),
    }


def measure(
    *,
    texts: Sequence[str],
    vectors: np.ndarray,
    embedder,
    queries: Sequence[str],
    size: int,
    depth: int,
    pg_connection,
    pg_ranking: str,
    sqlite_tokenize: str,
    method,
) -> dict:
    """Median and p95 of each step of a hybrid search over a tenant of ``size`` chunks."""
    ids, synthetic_texts, synthetic_vectors = synthetic_tenant(texts, vectors, size)
    fuse = method.for_texts(dict(zip(ids, synthetic_texts, strict=True))).fuse
    results: dict = {"chunks": size, "depth": depth}
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-latency-") as tmp:
        vector = VectorRetriever.build(Path(tmp) / "lancedb", embedder, ids, synthetic_vectors)
        sqlite = SQLiteFTS5Retriever(Path(tmp) / "fts.sqlite3", sqlite_tokenize)
        sqlite.load(ids, synthetic_texts)
        results["embed_query (MiniLM, one query)"] = _time(
            [lambda q=q: embedder.embed_query(q) for q in queries]
        )
        query_vectors = {q: embedder.embed_query(q) for q in queries}
        results["vector (LanceDB, flat)"] = _time(
            [lambda q=q: vector.search_vector(query_vectors[q], depth) for q in queries]
        )
        results["lexical (SQLite FTS5 bm25)"] = _time(
            [lambda q=q: sqlite.search_scored(q, depth) for q in queries]
        )

        def hybrid_sqlite(q: str) -> list[str]:
            v = vector.search_vector(embedder.embed_query(q), depth)
            return fuse(q, sqlite.search_scored(q, depth), v)

        results["hybrid, sequential (embed + LanceDB + SQLite + fusion)"] = _time(
            [lambda q=q: hybrid_sqlite(q) for q in queries]
        )
        if pg_connection is not None:
            table = "retrieval_bench_latency"
            PostgresFTSRetriever(pg_connection, table=table).load(ids, synthetic_texts)
            for ranking in ("ts_rank_cd", "all_terms_first", "bm25"):
                side = PostgresFTSRetriever(pg_connection, table=table, ranking=ranking)
                results[f"lexical (PostgreSQL {ranking})"] = _time(
                    [lambda q=q, side=side: side.search_scored(q, depth) for q in queries]
                )
            postgres = PostgresFTSRetriever(pg_connection, table=table, ranking=pg_ranking)

            def hybrid(q: str) -> list[str]:
                v = vector.search_vector(embedder.embed_query(q), depth)
                return fuse(q, postgres.search_scored(q, depth), v)

            results[f"hybrid, sequential (embed + LanceDB + PostgreSQL {pg_ranking} + fusion)"] = (
                _time([lambda q=q: hybrid(q) for q in queries])
            )
            postgres.drop()
        sqlite.close()
        vector.close()
    return results
