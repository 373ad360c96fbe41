"""The lexical side of hybrid search: full-text search over the Chunk rows, in the database.

The index lives in the database and follows the rows by construction, so a reprocess (chunks
deleted and written again), a delete (chunks cascade) and a restore need nothing from this
module:

* PostgreSQL: ``documents_chunk.search_vector``, a stored generated column
  ``to_tsvector('english', text)`` with a GIN index, ranked "all terms first" (the matches of
  the ORed terms; those that hold every term first, by ``ts_rank_cd`` of the AND query, then
  the rest by ``ts_rank_cd`` of the OR query).
* SQLite: ``documents_chunk_fts``, an FTS5 table over the chunk table's ``text`` (porter
  stemming) kept in step by triggers on ``documents_chunk``, ranked by ``bm25()``.

Both are created by migration 0012 and checked after every ``migrate`` (``ensure_index``):
on SQLite, Django rebuilds a table to alter it, which drops its triggers.

Every query is scoped to one tenant's documents whose vectors are written: a purged document
(vectors removed, chunks kept for a reprocess) is no more found by words than by meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from documents.models import Document, VectorState

FTS_TABLE = "documents_chunk_fts"
_FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"

_SQLITE_TRIGGERS = {
    "documents_chunk_fts_ai": f"""
        CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_ai AFTER INSERT ON documents_chunk
        BEGIN INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END""",
    "documents_chunk_fts_ad": f"""
        CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_ad AFTER DELETE ON documents_chunk
        BEGIN INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text)
              VALUES ('delete', old.id, old.text); END""",
    "documents_chunk_fts_au": f"""
        CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_au AFTER UPDATE OF text
        ON documents_chunk
        BEGIN INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text)
              VALUES ('delete', old.id, old.text);
              INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END""",
}


@dataclass(frozen=True)
class LexicalHit:
    vector_id: str
    text: str
    score: float  # higher is better; comparable within one query only


def search(documents, terms: Sequence[str], *, limit: int, db=connection) -> list[LexicalHit]:
    """The best ``limit`` chunks of ``documents`` (a Document queryset, already scoped to one
    tenant by the caller) for the ORed ``terms``."""
    if not terms:
        return []
    scope_sql, scope_params = documents.values("pk").query.sql_with_params()
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            any_terms, all_terms = " or ".join(terms), " ".join(terms)
            cursor.execute(
                "SELECT c.vector_id, c.text, "
                "  (c.search_vector @@ q_all)::int + ts_rank_cd(c.search_vector, q_any) "
                "FROM documents_chunk AS c, "
                "  websearch_to_tsquery('english', %s) AS q_any, "
                "  websearch_to_tsquery('english', %s) AS q_all "
                f"WHERE c.search_vector @@ q_any AND c.document_id IN ({scope_sql}) "
                "ORDER BY (c.search_vector @@ q_all) DESC, "
                "  ts_rank_cd(c.search_vector, q_all) DESC, "
                "  ts_rank_cd(c.search_vector, q_any) DESC, c.id "
                "LIMIT %s",
                (any_terms, all_terms, *scope_params, limit),
            )
            rows = cursor.fetchall()
        elif db.vendor == "sqlite":
            # Every term quoted: FTS5 reads bare AND, OR, NOT and NEAR as operators.
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            cursor.execute(
                f"SELECT c.vector_id, c.text, bm25({FTS_TABLE}) "
                f"FROM {FTS_TABLE} JOIN documents_chunk AS c ON c.id = {FTS_TABLE}.rowid "
                f"WHERE {FTS_TABLE} MATCH %s AND c.document_id IN ({scope_sql}) "
                f"ORDER BY bm25({FTS_TABLE}), c.id LIMIT %s",
                (match, *scope_params, limit),
            )
            # bm25() is lower-is-better (negative)
            rows = [(v, t, -s) for v, t, s in cursor.fetchall()]
        else:  # pragma: no cover - the project runs on these two
            raise NotImplementedError(f"no lexical index on {db.vendor}")
    return [LexicalHit(vector_id=v, text=t, score=float(s)) for v, t, s in rows]


def searchable_documents(tenant):
    """The documents of ``tenant`` that search may return: those whose vectors are written."""
    return Document.objects.filter(tenant=tenant, vector_state=VectorState.WRITTEN)


# --- the index's schema (migration 0012 and the post-migrate check) ------------------------


def create_index(schema_editor) -> None:
    db = schema_editor.connection
    if db.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE documents_chunk ADD COLUMN IF NOT EXISTS search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS documents_chunk_search_vector "
            "ON documents_chunk USING gin (search_vector)"
        )
    elif db.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(text, "
            f"content='documents_chunk', content_rowid='id', tokenize='{_FTS_TOKENIZE}')"
        )
        ensure_index(db, rebuild=True)


def drop_index(schema_editor) -> None:
    db = schema_editor.connection
    if db.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS documents_chunk_search_vector")
        schema_editor.execute("ALTER TABLE documents_chunk DROP COLUMN IF EXISTS search_vector")
    elif db.vendor == "sqlite":
        for name in _SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def ensure_index(db=connection, *, rebuild: bool = False) -> bool:
    """SQLite: put back triggers a table rebuild dropped, and rebuild the FTS table from the
    chunk rows when one was missing (rows written meanwhile are not in it). Returns whether
    anything was missing. PostgreSQL's generated column needs nothing."""
    if db.vendor != "sqlite":
        return False
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            (f"{FTS_TABLE}%",),
        )
        present = {row[0] for row in cursor.fetchall()}
        if FTS_TABLE not in present:
            return False  # before migration 0012
        missing = [name for name in _SQLITE_TRIGGERS if name not in present]
        for name in missing:
            cursor.execute(_SQLITE_TRIGGERS[name])
        if missing or rebuild:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return bool(missing)
