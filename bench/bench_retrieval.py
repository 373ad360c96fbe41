"""Retrieval benchmark (issue 12): lexical, vector and fused search on the committed query sets.

    .venv/bin/python bench/bench_retrieval.py [--corpus ../shared/corpus]
        [--database-url postgres://postgres@127.0.0.1:5432/bo_retrieval]
        [--no-llamaindex] [--no-postgres] [--latency-chunks 10000] [--fresh-vectors]

(``make bench-retrieval`` runs it; ``make bench`` runs it with the others.) The sets under
bench/retrieval/sets/ are made by bench/retrieval/build_sets.py; docs/retrieval.md says how,
and what every figure here means. In one process:

1. The benchmark tenant: the manifest's files read with the project's extraction, plus their
   re-uploaded copies; cut with the project's chunker (LocalEmbedder's tokenizer, 256/32);
   embedded with MiniLM through the embedding stage (``embed_chunks``). Vectors are kept in
   var/bench-retrieval/ by text and model, so a second run embeds only what changed
   (``--fresh-vectors`` embeds everything again).
2. Every retriever (bench/retrieval/retrievers.py) answers every query of the three sets:
   vector-only (LanceDB), lexical-only (SQLite FTS5 and PostgreSQL full-text search, in a
   scratch table of ``--database-url``), each also with duplicate collapsing.
3. Fusion: every variant of every family (bench/retrieval/fusion.py) over 50 candidates from
   each side, chosen on the tune half of the sets, reported on tune, test and all, for both
   lexical backends.
4. The LlamaIndex reference row in its own virtualenv (bench/llamaindex_env.py).
5. Latency on a synthetic tenant of ``--latency-chunks`` chunks.
6. The production row: the benchmark's queries through ``GET /api/search/`` on a tenant of
   the back-office filled with the benchmark's chunks (``--production-database-url``), and the
   API's latency on a synthetic tenant (bench/retrieval/production.py). ``--only-production``
   runs steps 1 and 6 only; ``--no-production`` leaves 6 out.

Writes bench/results/retrieval.json and prints the tables. The first run is the slow one
(embedding the tenant's chunks, and LlamaIndex embedding its own); docs/retrieval.md has the
measured run times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# LanceDBStore.query asks for columns without ``_distance``, which lance 0.40 answers with a
# deprecation warning on every search; the benchmark runs thousands of them.
os.environ.setdefault("LANCEDB_LOG", "error")
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import llamaindex_env  # noqa: E402
import numpy as np  # noqa: E402
from results_file import write_result  # noqa: E402
from retrieval import latency  # noqa: E402
from retrieval.evaluate import (  # noqa: E402
    SET_NAMES,
    choose_fusion,
    score,
    shortfall,
)
from retrieval.fusion import Collapsed, Hybrid, Signals  # noqa: E402
from retrieval.retrievers import (  # noqa: E402
    Cached,
    PostgresFTSRetriever,
    SQLiteFTS5Retriever,
    VectorRetriever,
)
from retrieval.scoring import HitJudge, figures, first_hit_rank, hits_of_texts  # noqa: E402
from retrieval.start import Laps, load_benchmark  # noqa: E402
from retrieval.tenant import chunk_documents, duplicate_facts  # noqa: E402

from documents.pipeline.embed import embed_chunks  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402

SETS = ROOT / "bench" / "retrieval" / "sets"
CACHE = ROOT / "var" / "bench-retrieval"
DEPTH = 50  # candidates each side hands to the fusion
NEAR = 0.5  # 3-gram Jaccard at which two chunks count as near-identical
SQLITE_TOKENIZE = "porter unicode61 remove_diacritics 2"
DEFAULT_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_retrieval"
)
DEFAULT_PRODUCTION_DATABASE_URL = os.environ.get(
    "BENCH_PRODUCTION_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/bench_retrieval_production",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-llamaindex", action="store_true")
    parser.add_argument("--latency-chunks", type=int, default=10_000)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--fresh-vectors", action="store_true")
    parser.add_argument(
        "--production-database-url",
        default=DEFAULT_PRODUCTION_DATABASE_URL,
        help="the database of the production row's tenant: a PostgreSQL URL, or 'sqlite' "
        "for the embedded default",
    )
    parser.add_argument("--no-production", action="store_true")
    parser.add_argument(
        "--production-latency-only",
        action="store_true",
        help="with --only-production: time the API only, do not score the production row",
    )
    parser.add_argument(
        "--only-production",
        action="store_true",
        help="only the production row and its API latency (no other retriever, no fusion "
        "grid, no LlamaIndex)",
    )
    args = parser.parse_args()
    lap = Laps()
    walls = lap.walls
    loaded = load_benchmark(args.corpus, SETS)
    sets, manifest, documents = loaded.sets, loaded.manifest, loaded.documents
    problems, tenant = loaded.problems, loaded.tenant
    embedder = LocalEmbedder()
    ids, texts, counts = chunk_documents(tenant, embedder)
    chunk_texts = dict(zip(ids, texts, strict=True))
    duplicates = duplicate_facts(tenant, ids, texts, near=NEAR)
    lap("read and chunk")
    vectors = embed_cached(embedder, texts, counts, fresh=args.fresh_vectors)
    lap("embed chunks")

    judge = HitJudge(chunk_texts)
    if args.only_production:
        found = production_row(args, ids, texts, vectors, sets, judge)
        lap("production row and API latency")
        result = {
            "corpus": {"documents": len(documents), "chunks": len(ids)},
            "production": found,
            "walls": walls,
            "load_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
        suffix = "-latency" if args.production_latency_only else ""
        write_result(f"retrieval-production-{found['vendor']}{suffix}", result)
        print_production(found)
        return
    signals = Signals(chunk_texts)
    all_queries = [q.query for qs in sets.values() for q in qs]
    rows: dict[str, dict] = {}
    fusion: dict[str, dict] = {}
    pg = None if args.no_postgres else connect(args.database_url)
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        vector = VectorRetriever.build(Path(tmp) / "lancedb", embedder, ids, vectors)
        vector.prepare(all_queries)
        lap("index vectors and embed queries")
        sqlite = SQLiteFTS5Retriever(Path(tmp) / "porter.sqlite3", SQLITE_TOKENIZE)
        sqlite.load(ids, texts)
        lexical = {
            "sqlite": sqlite,
            "sqlite_and": SQLiteFTS5Retriever(
                Path(tmp) / "porter.sqlite3", SQLITE_TOKENIZE, conjunction="AND"
            ),
            "sqlite_plain": _loaded(
                SQLiteFTS5Retriever(Path(tmp) / "plain.sqlite3", "unicode61 remove_diacritics 2"),
                ids,
                texts,
            ),
        }
        if isinstance(pg, str):
            print(f"PostgreSQL skipped: {pg}", flush=True)
        elif pg is not None:
            postgres = PostgresFTSRetriever(pg)
            postgres.load(ids, texts)
            lexical["postgres"] = postgres
            lexical["postgres_and"] = PostgresFTSRetriever(pg, conjunction="and")
            lexical["postgres_all_terms_first"] = PostgresFTSRetriever(
                pg, ranking="all_terms_first"
            )
            lexical["postgres_bm25"] = PostgresFTSRetriever(pg, ranking="bm25")
        cached = {key: Cached(r, DEPTH) for key, r in lexical.items()}
        cached["vector"] = Cached(vector, DEPTH)
        for key, retriever in cached.items():
            rows[key] = {"name": retriever.name, "figures": score(retriever, sets, judge)}
            for how, near in (("identical", None), ("near", NEAR)):
                collapsed = Collapsed(retriever, chunk_texts, near=near, depth=DEPTH)
                rows[f"{key}+collapse_{how}"] = {
                    "name": collapsed.name,
                    "figures": score(collapsed, sets, judge),
                }
        lap("single retrievers")

        # fusion on the embedded default's lexical side and on PostgreSQL's best ranking
        backends = ["sqlite"]
        postgres_keys = [k for k in cached if k.startswith("postgres")]
        if postgres_keys:
            backends.append(max(postgres_keys, key=lambda k: _tune_mean(rows[k]["figures"])))
        for backend in backends:
            fusion[backend] = fuse_and_report(
                backend, cached[backend], cached["vector"], sets, judge, signals, rows, chunk_texts
            )
            lap(f"fusion on {backend}")

        method = fusion[backends[-1]].pop("method_object")
        for backend in backends[:-1]:
            fusion[backend].pop("method_object")
        latency_figures = latency.measure(
            texts=texts,
            vectors=vectors,
            embedder=embedder,
            queries=_mixed(sets, args.latency_queries),
            size=args.latency_chunks,
            depth=DEPTH,
            pg_connection=pg if pg is not None and not isinstance(pg, str) else None,
            pg_ranking=lexical[backends[-1]].ranking if len(backends) > 1 else "bm25",
            sqlite_tokenize=SQLITE_TOKENIZE,
            method=method,
        )
        lap("latency")
        if "postgres" in lexical:
            lexical["postgres"].drop()
        for retriever in lexical.values():
            if isinstance(retriever, SQLiteFTS5Retriever):
                retriever.close()
        vector.close()
    if pg is not None and not isinstance(pg, str):
        pg.close()
    production = None
    if not args.no_production:
        try:
            production = production_row(args, ids, texts, vectors, sets, judge)
        except Exception as exc:  # noqa: BLE001 - no database for it: the other rows stand
            print(f"production row skipped: {type(exc).__name__}: {exc}", flush=True)
        else:
            rows[f"production[{production['vendor']}]"] = {
                "name": production["name"],
                "figures": production["figures"],
            }
        lap("production row and API latency")

    result = {
        "corpus": {
            "documents": len(documents),
            "reuploads": manifest["reuploads"],
            "chunks": len(ids),
            "chunk_tokens_mean": round(sum(counts) / len(counts), 1),
            "duplicates": duplicates,
            "manifest_problems": problems,
        },
        "sets": manifest["sets"],
        "depth": DEPTH,
        "near_identical_jaccard": NEAR,
        "rows": rows,
        "fusion": fusion,
        "llamaindex": {"status": "not run (--no-llamaindex)"},
        "latency": latency_figures,
        "production": production,
        "walls": walls,
        "load_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if not args.no_llamaindex:
        # written first without it: the reference row is by far the slowest part
        write_result("retrieval", result)
        result["llamaindex"] = llamaindex_row(tenant, sets, fresh=args.fresh_vectors)
        lap("LlamaIndex reference")
        result["walls"] = walls
        result["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write_result("retrieval", result)
    print_tables(result)


def production_row(args, ids, texts, vectors, sets, judge) -> dict:
    """The production search (GET /api/search/) scored on every set, and the API's latency
    on a synthetic tenant of ``--latency-chunks`` chunks (bench/retrieval/production.py)."""
    from retrieval import production

    vendor = production.start_django(args.production_database_url)
    figures_by_set, modes, name = {}, {}, f"production search (GET /api/search/, {vendor})"
    if not args.production_latency_only:
        tenant, user, back = production.fill_tenant("bench-retrieval", ids, texts, vectors)
        retriever = production.ProductionRetriever(tenant, user, back, vendor)
        figures_by_set = score(retriever, sets, judge)
        modes = dict(retriever.modes)
    s_ids, s_texts, s_vectors = latency.synthetic_tenant(texts, vectors, args.latency_chunks)
    big, big_user, big_back = production.fill_tenant("bench-latency", s_ids, s_texts, s_vectors)
    timed = production.api_latency(
        production.ProductionRetriever(big, big_user, big_back, vendor),
        _mixed(sets, args.latency_queries),
    )
    return {
        "vendor": vendor,
        "name": name,
        "figures": figures_by_set,
        "modes": modes,
        "api_latency": {"chunks": args.latency_chunks, **timed},
    }


def print_production(found: dict) -> None:
    print(f"\n=== {found['name']} — R@1 / R@5 / MRR@5, all | test ===")
    for name, by_split in found["figures"].items():
        a, t = by_split["all"], by_split["test"]
        print(
            f"  {a['recall@1']:.3f} {a['recall@5']:.3f} {a['mrr@5']:.3f} | "
            f"{t['recall@1']:.3f} {t['recall@5']:.3f} {t['mrr@5']:.3f}  {name}"
        )
    print(f"modes: {found['modes']}")
    timed = found["api_latency"]
    print(
        f"API latency, tenant of {timed['chunks']} chunks, {timed['queries']} queries, "
        f"k {timed['k']}: median {timed['median_ms']} ms, p95 {timed['p95_ms']} ms"
    )
    if "embed_query" in timed:
        embed = timed["embed_query"]
        print(
            f"  embedding the query alone: median {embed['median_ms']} ms, p95 {embed['p95_ms']} ms"
        )


def _tune_mean(figures_by_set: dict) -> float:
    values = [f["tune"][m] for f in figures_by_set.values() for m in ("recall@1", "recall@5")]
    return sum(values) / len(values)


def _loaded(retriever, ids, texts):
    retriever.load(ids, texts)
    return retriever


def connect(url: str):
    """A connection to ``url``, creating the database when it is missing; or the reason."""
    import psycopg

    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            return f"cannot connect to {url}: {exc}".strip()
    name = url.rsplit("/", 1)[1].split("?")[0]
    try:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return psycopg.connect(url)
    except psycopg.Error as exc:
        return f"cannot create the database {name}: {exc}".strip()


def embed_cached(embedder, texts: list[str], counts: list[int], *, fresh: bool) -> np.ndarray:
    """One vector per text; identical texts (a re-upload's) are embedded once, and vectors of
    texts embedded by an earlier run with the same model are reused."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"vectors-{embedder.model_name.replace('/', '_')}.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists() and not fresh:
        stored = np.load(path)
        known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    todo = {}
    for key, text, count in zip(keys, texts, counts, strict=True):
        if key not in known and key not in todo:
            todo[key] = (text, count)
    if todo:
        print(f"embedding {len(todo)} chunk texts with MiniLM...", flush=True)
        matrix = embed_chunks(
            embedder,
            [t for t, _ in todo.values()],
            token_counts=[c for _, c in todo.values()],
        )
        known.update(zip(todo, matrix, strict=True))
        np.savez(path, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys]).astype(np.float32)


def fuse_and_report(backend, lexical, vector, sets, judge, signals, rows, chunk_texts) -> dict:
    sides = [
        rows[f"{side}{how}"]["figures"]
        for side in (backend, "vector")
        for how in ("", "+collapse_identical", "+collapse_near")
    ]
    choice = choose_fusion(lexical, vector, sets, judge, signals, sides=sides, depth=DEPTH)
    families = {}
    for family, found in choice["families"].items():
        hybrid = Hybrid(lexical, vector, found["method"], depth=DEPTH)
        key = f"hybrid[{backend}] {family}"
        rows[key] = {"name": hybrid.name, "figures": score(hybrid, sets, judge)}
        families[family] = {
            "label": found["method"].label,
            "variants_tried": found["tried"],
            "tune_shortfall": found["tune_key"][0],
            "row": key,
        }
    method = choice["families"][choice["chosen_family"]]["method"]
    chosen = Hybrid(lexical, vector, method, depth=DEPTH)
    for how, near in (("identical", None), ("near", NEAR)):
        collapsed = Collapsed(chosen, chunk_texts, near=near, depth=DEPTH)
        rows[f"hybrid[{backend}] chosen+collapse_{how}"] = {
            "name": collapsed.name,
            "figures": score(collapsed, sets, judge),
        }
    chosen_row = rows[f"hybrid[{backend}] {choice['chosen_family']}"]["figures"]
    collapsed_row = rows[f"hybrid[{backend}] chosen+collapse_identical"]["figures"]
    return {
        "chosen_family": choice["chosen_family"],
        "chosen": method.label,
        "families": families,
        "shortfall": {s: shortfall(chosen_row, sides, s) for s in ("tune", "test", "all")},
        "shortfall_collapsed": {
            s: shortfall(collapsed_row, sides, s) for s in ("tune", "test", "all")
        },
        "method_object": method,
    }


def llamaindex_row(tenant, sets, *, fresh: bool) -> dict:
    """The reference row. Its answers are kept in var/bench-retrieval/ under a hash of its
    input and script, so a run over the same documents and queries reuses them
    (``--fresh-vectors`` runs it again)."""
    python, status = llamaindex_env.ensure()
    if python is None:
        return {"status": status}
    queries = [q for qs in sets.values() for q in qs]
    script = ROOT / "bench" / "retrieval" / "llamaindex_reference.py"
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-li-") as tmp:
        given = Path(tmp) / "in.json"
        answer = Path(tmp) / "out.json"
        given.write_text(
            json.dumps(
                {
                    "documents": [
                        {
                            "file_name": d.doc_id,
                            "pages": [{"number": p.number, "text": p.text} for p in d.pages],
                        }
                        for d in tenant
                    ],
                    "queries": [{"id": q.id, "query": q.query} for q in queries],
                    "k": 5,
                }
            ),
            encoding="utf-8",
        )
        key = hashlib.sha256(given.read_bytes() + script.read_bytes()).hexdigest()[:16]
        kept = CACHE / f"llamaindex-{key}.json"
        if kept.exists() and not fresh:
            status += f"; answers reused from {kept.relative_to(ROOT)}"
        else:
            proc = subprocess.run(
                [str(python), str(script), "--input", str(given), "--output", str(answer)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                return {"status": f"failed: {proc.stderr.strip().splitlines()[-3:]}"}
            CACHE.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(answer.read_bytes())
        out = json.loads(kept.read_text(encoding="utf-8"))
    result = {
        "status": status,
        "versions": llamaindex_env.versions(),
        "nodes": out["nodes"],
        "index_seconds": out["index_seconds"],
        "query_seconds": out["query_seconds"],
    }
    figures_by_set = {}
    for name, qs in sets.items():
        ranks = {q.id: first_hit_rank(hits_of_texts(q.sentence, out["answers"][q.id])) for q in qs}
        figures_by_set[name] = {
            split: figures(
                [ranks[q.id] for q in qs if split == "all" or q.split == split]
            ).as_dict()
            for split in ("tune", "test", "all")
        }
    result["figures"] = figures_by_set
    return result


def _mixed(sets, n: int) -> list[str]:
    """n queries taken in turn from each set."""
    out = []
    for i in range(n):
        qs = sets[SET_NAMES[i % len(SET_NAMES)]]
        out.append(qs[(i // len(SET_NAMES)) % len(qs)].query)
    return out


def print_tables(result: dict) -> None:
    rows = dict(result["rows"])
    if result.get("llamaindex") and "figures" in result["llamaindex"]:
        rows["llamaindex"] = {
            "name": "LlamaIndex reference (SentenceSplitter 256/25, MiniLM, default retriever)",
            "figures": result["llamaindex"]["figures"],
        }
    for name in SET_NAMES:
        facts = result["sets"][name]
        print(f"\n=== {name} ({facts['queries']} queries) — R@1 / R@5 / MRR@5, all | test ===")
        for row in rows.values():
            a, t = row["figures"][name]["all"], row["figures"][name]["test"]
            print(
                f"  {a['recall@1']:.3f} {a['recall@5']:.3f} {a['mrr@5']:.3f} | "
                f"{t['recall@1']:.3f} {t['recall@5']:.3f} {t['mrr@5']:.3f}  {row['name']}"
            )
    for backend, found in result["fusion"].items():
        print(
            f"\nfusion on {backend}: chosen {found['chosen_family']}: {found['chosen']}; "
            f"worst shortfall vs the better side {found['shortfall']}, with identical chunks "
            f"collapsed {found['shortfall_collapsed']}"
        )
    print(
        "\n=== latency, synthetic tenant of "
        f"{result['latency']['chunks']} chunks (median / p95 ms) ==="
    )
    for key, value in result["latency"].items():
        if isinstance(value, dict):
            print(f"  {value['median_ms']:8.2f} {value['p95_ms']:8.2f}  {key}")
    if result.get("production"):
        print_production(result["production"])
    print(f"\nduplicates: {result['corpus']['duplicates']}")
    print(f"walls: {result['walls']}")


if __name__ == "__main__":
    main()
