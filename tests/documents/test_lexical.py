"""The lexical index in the database: it follows the Chunk rows (write, reprocess, delete),
leaves out purged documents, and never answers with another tenant's chunks. Each test runs
on PostgreSQL (the services run) and on SQLite (``-m embedded``)."""

from __future__ import annotations

import pytest
from django.db import connection

from documents import lexical, services
from documents.models import Chunk, Status, VectorState
from documents.pipeline.fusion import query_terms, text_hash
from tests.factories import make_document

BACKENDS = ["postgresql", pytest.param("sqlite", marks=pytest.mark.embedded)]


@pytest.fixture(params=BACKENDS)
def backend(request, db):
    if connection.vendor != request.param:
        pytest.skip(f"runs on {request.param}; this run's database is {connection.vendor}")
    return request.param


def write_chunks(document, texts):
    Chunk.objects.filter(document=document).delete()
    Chunk.objects.bulk_create(
        Chunk(
            document=document,
            index=i,
            text=text,
            token_count=len(text.split()),
            page_start=1,
            page_end=1,
            char_start=0,
            char_end=len(text),
            vector_id=f"{document.pk}#{i}",
            text_hash=text_hash(text),
        )
        for i, text in enumerate(texts)
    )


def searchable(tenant, **fields):
    fields.setdefault("status", Status.COMPLETED)
    return make_document(tenant, vector_state=VectorState.WRITTEN, **fields)


def found(tenant, query, limit=50):
    return [
        h.vector_id
        for h in lexical.search(
            lexical.searchable_documents(tenant), query_terms(query), limit=limit
        )
    ]


TIDES = "Spring tides follow the new and the full moon; sailors read the tide tables."
ORCHARD = "Apples ripen in the orchard in autumn, pears a little later."


def test_it_finds_chunks_by_their_words_stemmed_and_ranks_the_one_with_every_term_first(
    backend, personas
):
    doc = searchable(personas.tenant_a, title="Almanac")
    write_chunks(doc, [ORCHARD, TIDES, "The moon was full."])
    # "sailor" and "tide" match "sailors" and "tides" through stemming on both backends
    assert found(personas.tenant_a, "moon tide sailor")[0] == f"{doc.pk}#1"
    assert set(found(personas.tenant_a, "moon")) == {f"{doc.pk}#1", f"{doc.pk}#2"}
    assert found(personas.tenant_a, "volcano") == []
    assert found(personas.tenant_a, "the and of") == []  # only stop words: nothing to search


def test_another_tenants_chunks_are_never_found(backend, personas):
    mine = searchable(personas.tenant_a, title="Mine")
    theirs = searchable(personas.tenant_b, title="Theirs")
    write_chunks(mine, [ORCHARD])
    write_chunks(theirs, [TIDES, ORCHARD])
    assert found(personas.tenant_a, "orchard tides moon") == [f"{mine.pk}#0"]
    assert set(found(personas.tenant_b, "orchard tides")) == {f"{theirs.pk}#0", f"{theirs.pk}#1"}


def test_rewritten_chunks_replace_the_old_ones_in_the_index(backend, personas):
    doc = searchable(personas.tenant_a, title="Almanac")
    write_chunks(doc, [TIDES, ORCHARD])
    # what a reprocess does (documents/indexing.py save_chunks): delete, then write again
    write_chunks(doc, ["Volcanoes erupt when magma rises."])
    assert found(personas.tenant_a, "tides orchard") == []
    assert found(personas.tenant_a, "volcano magma") == [f"{doc.pk}#0"]
    assert _index_rows() == Chunk.objects.count()


def test_an_edited_chunk_text_is_searched_as_edited(backend, personas):
    doc = searchable(personas.tenant_a, title="Almanac")
    write_chunks(doc, [TIDES])
    Chunk.objects.filter(document=doc).update(text=ORCHARD)
    assert found(personas.tenant_a, "tides") == []
    assert found(personas.tenant_a, "orchard") == [f"{doc.pk}#0"]


def test_deleted_documents_leave_nothing_in_the_index(backend, personas):
    keep = searchable(personas.tenant_a, title="Keep")
    gone = searchable(personas.tenant_a, title="Gone")
    write_chunks(keep, [ORCHARD])
    write_chunks(gone, [TIDES, ORCHARD])
    services.documents_delete(queryset=type(gone).objects.filter(pk=gone.pk))
    assert found(personas.tenant_a, "orchard tides") == [f"{keep.pk}#0"]
    assert _index_rows() == Chunk.objects.count() == 1


def test_purged_documents_are_not_found_until_their_vectors_are_written_again(backend, personas):
    doc = searchable(personas.tenant_a, title="Almanac")
    write_chunks(doc, [TIDES])
    services.documents_purge_vectors(queryset=type(doc).objects.filter(pk=doc.pk))
    doc.refresh_from_db()
    assert doc.vector_state == VectorState.PURGE_PENDING
    assert found(personas.tenant_a, "tides") == []
    type(doc).objects.filter(pk=doc.pk).update(vector_state=VectorState.PURGED)
    assert found(personas.tenant_a, "tides") == []
    # a reprocess writes the vectors again (documents/vector_state.py reserve)
    type(doc).objects.filter(pk=doc.pk).update(vector_state=VectorState.WRITTEN)
    assert found(personas.tenant_a, "tides") == [f"{doc.pk}#0"]


@pytest.mark.parametrize("backend", [pytest.param("sqlite", marks=pytest.mark.embedded)])
def test_sqlite_triggers_dropped_by_a_table_rebuild_are_put_back_with_the_missing_rows(
    backend, personas
):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    doc = searchable(personas.tenant_a, title="Almanac")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER documents_chunk_fts_ai")
    write_chunks(doc, [TIDES])  # written while the insert trigger is missing
    assert found(personas.tenant_a, "tides") == []
    assert lexical.ensure_index(connection) is True
    assert found(personas.tenant_a, "tides") == [f"{doc.pk}#0"]
    assert lexical.ensure_index(connection) is False


def _index_rows() -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # an external-content table reads its rows from the chunk table: count what
            # the index itself holds (its document-size records) instead
            cursor.execute(f"SELECT count(*) FROM {lexical.FTS_TABLE}_docsize")
        else:
            cursor.execute("SELECT count(*) FROM documents_chunk WHERE search_vector IS NOT NULL")
        return cursor.fetchone()[0]
