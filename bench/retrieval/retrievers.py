"""The retrievers the benchmark compares, behind one small interface.

Every retriever answers ``search(query, k) -> ranked chunk ids``; the ones that fusion combines
also answer ``search_scored(query, k) -> [(chunk id, score)]``, higher scores better. A new
retriever (another store, a re-ranker, the production search of bench/retrieval/production.py)
needs only these to be scored by bench/bench_retrieval.py. ``prepare(queries)`` is optional: a
retriever may use it to do per-query work in bulk before the timed searches (the vector side
embeds every query in batches).

* ``VectorRetriever``: MiniLM query vector, cosine top-k from a ``LanceDBStore``, as the
  project stores and searches vectors (documents/pipeline/stores/lancedb_store.py).
* ``SQLiteFTS5Retriever``: SQLite's FTS5 with its ``bm25()`` ranking, in a file database of
  its own (the embedded default's database is SQLite).
* ``PostgresFTSRetriever``: PostgreSQL full-text search on a scratch table with a GIN-indexed
  ``tsvector`` (the production database is PostgreSQL), ranked by ``ts_rank_cd`` or by BM25
  computed in SQL.

Both lexical sides get the query's distinct words, English stop words left out (PostgreSQL's
``english`` configuration drops them anyway), joined with OR: a known-item query lacks a third
of its sentence's words, and a sentence cut by a chunk boundary has only part of its words in
either chunk, so requiring every word (FTS5's and ``websearch_to_tsquery``'s default AND) finds
nothing for many queries. The AND form is measured as well, to show that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from documents.pipeline.fusion import query_terms as production_query_terms
from documents.pipeline.stores.lancedb_store import LanceDBStore
from documents.pipeline.types import VectorRecord

NAMESPACE = "retrieval-bench"


class Retriever(Protocol):
    name: str

    def search(self, query: str, k: int) -> list[str]: ...


class ScoredRetriever(Retriever, Protocol):
    def search_scored(self, query: str, k: int) -> list[tuple[str, float]]: ...


# The production search's own function (documents/pipeline/fusion.py), so that the
# benchmark's lexical sides search what production searches.
query_terms = production_query_terms


class _Ranked:
    """``search`` from ``search_scored``."""

    def search(self, query: str, k: int) -> list[str]:
        return [chunk_id for chunk_id, _ in self.search_scored(query, k)]


class VectorRetriever(_Ranked):
    """Cosine top-k over MiniLM vectors in LanceDB; the query embedded with the same model."""

    def __init__(self, store: LanceDBStore, embedder, name: str = "vector (LanceDB)"):
        self.name = name
        self._store = store
        self._embedder = embedder
        self._vectors: dict[str, list[float]] = {}

    @classmethod
    def build(cls, directory: Path, embedder, ids: Sequence[str], vectors: np.ndarray):
        store = LanceDBStore(uri=str(directory), dimension=embedder.dimension)
        store.upsert(
            NAMESPACE,
            [VectorRecord(id=i, values=vectors[n], metadata={}) for n, i in enumerate(ids)],
        )
        return cls(store, embedder)

    def prepare(self, queries: Sequence[str]) -> None:
        todo = [q for q in dict.fromkeys(queries) if q not in self._vectors]
        if todo:
            matrix = self._embedder.embed_documents(todo)
            self._vectors.update(zip(todo, matrix, strict=True))

    def embed(self, query: str) -> list[float]:
        vector = self._vectors.get(query)
        return vector if vector is not None else self._embedder.embed_query(query)

    def search_scored(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.search_vector(self.embed(query), k)

    def search_vector(self, vector, k: int) -> list[tuple[str, float]]:
        return [(m.id, m.score) for m in self._store.query(NAMESPACE, vector, k)]

    def close(self) -> None:
        self._store.close()


class SQLiteFTS5Retriever(_Ranked):
    """FTS5 ``MATCH`` with the query terms ORed (or ANDed), ranked by ``bm25()``."""

    def __init__(self, path: Path, tokenize: str, *, conjunction: str = "OR", name: str = ""):
        self.name = name or f"lexical (SQLite FTS5, {tokenize}, {conjunction})"
        self._db = sqlite3.connect(str(path))
        self._tokenize = tokenize
        self._conjunction = f" {conjunction} "

    def load(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self._db.execute("DROP TABLE IF EXISTS chunks")
        self._db.execute(
            "CREATE VIRTUAL TABLE chunks USING fts5(chunk_id UNINDEXED, body, "
            f"tokenize = '{self._tokenize}')"
        )
        self._db.executemany(
            "INSERT INTO chunks (chunk_id, body) VALUES (?, ?)", zip(ids, texts, strict=True)
        )
        self._db.commit()

    def search_scored(self, query: str, k: int) -> list[tuple[str, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        # every term quoted: FTS5 reads bare words such as AND, NOT or NEAR as operators
        match = self._conjunction.join(f'"{t}"' for t in terms)
        rows = self._db.execute(
            "SELECT chunk_id, bm25(chunks) FROM chunks WHERE chunks MATCH ? "
            "ORDER BY bm25(chunks) LIMIT ?",
            (match, k),
        ).fetchall()
        # bm25() is lower-is-better (negative); the interface wants higher-is-better
        return [(chunk_id, -score) for chunk_id, score in rows]

    def close(self) -> None:
        self._db.close()


class PostgresFTSRetriever(_Ranked):
    """PostgreSQL full-text search over ``to_tsvector('english', body)`` with a GIN index.

    ``ranking``:

    * ``ts_rank_cd``: the built-in cover-density rank of the ``websearch_to_tsquery`` of the
      terms, joined with ``conjunction`` (OR or AND). It has no inverse document frequency: a
      chunk that repeats a common query word outranks one that has the rare ones.
    * ``all_terms_first``: the OR query's matches, those that match every term first, ranked
      by ``ts_rank_cd`` of the AND query (whose covers must hold every term, so chunks with
      the terms close together come first), then the rest by ``ts_rank_cd`` of the OR query:
      an AND search that falls back to OR within one query.
    * ``bm25``: Okapi BM25 (k1 1.2, b 0.75) computed in SQL over the OR query's matches, from
      each chunk's term frequencies (``unnest(tsv)``) and a table of document frequencies
      built at load time from ``ts_stat`` (in production it would be maintained as chunks
      are written); no extension needed.
    """

    TABLE = "retrieval_bench_chunks"

    def __init__(
        self,
        connection,
        *,
        ranking: str = "ts_rank_cd",
        conjunction: str = "or",
        table: str = TABLE,
        name: str = "",
    ):
        if ranking not in ("ts_rank_cd", "all_terms_first", "bm25"):
            raise ValueError(f"unknown ranking {ranking!r}")
        detail = f"ts_rank_cd, {conjunction.upper()}" if ranking == "ts_rank_cd" else ranking
        self.name = name or f"lexical (PostgreSQL {detail})"
        self._db = connection
        self.ranking = ranking
        self._conjunction = conjunction
        self._table = table

    def load(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        t = self._table
        with self._db.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}_df")
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(
                f"CREATE TABLE {t} (chunk_id text PRIMARY KEY, body text NOT NULL, "
                "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED, "
                "tokens integer)"
            )
            with cur.copy(f"COPY {t} (chunk_id, body) FROM STDIN") as copy:
                for row in zip(ids, texts, strict=True):
                    copy.write_row(row)
            # BM25's document length: the lexeme occurrences the tsvector holds
            cur.execute(
                f"UPDATE {t} SET tokens = coalesce((SELECT sum(coalesce(array_length("
                "u.positions, 1), 1)) FROM unnest(tsv) AS u), 0)"
            )
            cur.execute(f"CREATE INDEX ON {t} USING gin (tsv)")
            cur.execute(
                f"CREATE TABLE {t}_df AS SELECT word, ndoc FROM ts_stat('SELECT tsv FROM {t}')"
            )
            cur.execute(f"ALTER TABLE {t}_df ADD PRIMARY KEY (word)")
            cur.execute(f"ANALYZE {t}")
            cur.execute(f"ANALYZE {t}_df")
        self._db.commit()

    def _stats(self) -> tuple[int, float]:
        with self._db.cursor() as cur:
            cur.execute(f"SELECT count(*), avg(tokens) FROM {self._table}")
            n, avg = cur.fetchone()
        return int(n), float(avg or 1.0)

    def search_scored(self, query: str, k: int) -> list[tuple[str, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        joined = " or ".join(terms) if self._conjunction == "or" else " ".join(terms)
        t = self._table
        with self._db.cursor() as cur:
            if self.ranking == "ts_rank_cd":
                cur.execute(
                    f"SELECT chunk_id, ts_rank_cd(tsv, q) AS rank "
                    f"FROM {t}, websearch_to_tsquery('english', %s) AS q "
                    "WHERE tsv @@ q ORDER BY rank DESC, chunk_id LIMIT %s",
                    (joined, k),
                )
            elif self.ranking == "all_terms_first":
                cur.execute(
                    f"SELECT chunk_id, (tsv @@ q_all)::int + ts_rank_cd(tsv, q_any) AS rank "
                    f"FROM {t}, websearch_to_tsquery('english', %s) AS q_any, "
                    "websearch_to_tsquery('english', %s) AS q_all "
                    "WHERE tsv @@ q_any ORDER BY (tsv @@ q_all) DESC, ts_rank_cd(tsv, q_all) "
                    "DESC, ts_rank_cd(tsv, q_any) DESC, chunk_id LIMIT %s",
                    (" or ".join(terms), " ".join(terms), k),
                )
            else:
                n, avg = self._stats_cached()
                cur.execute(
                    f"""
                    WITH q AS (
                        SELECT d.word AS lexeme,
                               ln(1 + (%(n)s - d.ndoc + 0.5) / (d.ndoc + 0.5)) AS idf
                        FROM (SELECT DISTINCT unnest(tsvector_to_array(
                                  to_tsvector('english', %(text)s))) AS word) AS w
                        JOIN {t}_df AS d USING (word)
                    )
                    SELECT c.chunk_id,
                           sum(q.idf * (f.tf * 2.2)
                               / (f.tf + 1.2 * (0.25 + 0.75 * c.tokens / %(avg)s))) AS score
                    FROM {t} AS c
                    CROSS JOIN LATERAL unnest(c.tsv) AS u
                    JOIN q ON q.lexeme = u.lexeme
                    CROSS JOIN LATERAL (
                        SELECT coalesce(array_length(u.positions, 1), 1) AS tf
                    ) AS f
                    WHERE c.tsv @@ websearch_to_tsquery('english', %(any)s)
                    GROUP BY c.chunk_id
                    ORDER BY score DESC, c.chunk_id
                    LIMIT %(k)s
                    """,
                    {
                        "n": n,
                        "avg": avg,
                        "text": " ".join(terms),
                        "any": " or ".join(terms),
                        "k": k,
                    },
                )
            return [(chunk_id, float(rank)) for chunk_id, rank in cur.fetchall()]

    def _stats_cached(self) -> tuple[int, float]:
        if not hasattr(self, "_cached_stats"):
            self._cached_stats = self._stats()
        return self._cached_stats

    def drop(self) -> None:
        with self._db.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self._table}_df")
            cur.execute(f"DROP TABLE IF EXISTS {self._table}")
        self._db.commit()


class Cached(_Ranked):
    """Remembers a scored retriever's answers at one depth, so that the many fusion variants
    and parameter choices are scored on the same candidate lists without asking again."""

    def __init__(self, inner: ScoredRetriever, depth: int):
        self.name = inner.name
        self.inner = inner
        self.depth = depth
        self._answers: dict[str, list[tuple[str, float]]] = {}

    def search_scored(self, query: str, k: int) -> list[tuple[str, float]]:
        if k > self.depth:
            return self.inner.search_scored(query, k)
        answer = self._answers.get(query)
        if answer is None:
            answer = self._answers[query] = self.inner.search_scored(query, self.depth)
        return answer[:k]
