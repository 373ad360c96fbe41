"""Hybrid search through the production embedder and store (Gemini and Pinecone doubles) and
the lexical index in the database: which side wins when, copies folded, filters, and nothing
of another tenant, a deleted or a purged document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from documents import services
from documents.errors import NotAMember
from documents.models import Document, Status, VectorState
from documents.search import SearchFilters, chunks_search
from tests.factories import make_document

pytestmark = pytest.mark.django_db

TIDES = "Spring tides follow the new and the full moon; sailors read the tide tables."
ORCHARD = "Apples ripen in the orchard in autumn, pears a little later."
HARBOUR = "The harbour master opens the lock gates at dawn."
# shares no word with any chunk: only the vector side can answer it
VAGUE = "when does fruit become edible"


def doc(tenant, title, *, created_at=None, **fields):
    fields.setdefault("status", Status.COMPLETED)
    document = make_document(tenant, title=title, **fields)
    if created_at:  # auto_now_add: set after the insert
        Document.objects.filter(pk=document.pk).update(created_at=created_at)
    return document


def search(user, tenant, query, **kwargs):
    return chunks_search(user=user, tenant_id=tenant.pk, query=query, **kwargs)


def test_a_keyword_query_is_answered_by_the_lexical_ranking(personas, indexed):
    almanac = doc(personas.tenant_a, "Almanac")
    indexed(almanac, [ORCHARD, TIDES, HARBOUR], like=0, query="tides moon sailors")
    result = search(personas.staff_a, personas.tenant_a, "tides moon sailors")
    assert result.mode == "lexical" and result.terms == ["tides", "moon", "sailors"]
    first = result.hits[0]
    assert (first.document_id, first.chunk_index, first.title) == (str(almanac.pk), 1, "Almanac")
    assert (first.page_start, first.page_end, first.text) == (2, 2, TIDES)
    assert first.found_by in ("lexical", "both")
    # the vector side's favourite holds none of the words: the lexical ranking leaves it out
    assert [h.chunk_index for h in result.hits] == [1]


def test_a_query_sharing_no_word_with_the_passage_is_answered_by_the_vector_side(personas, indexed):
    almanac = doc(personas.tenant_a, "Almanac")
    indexed(almanac, [TIDES, ORCHARD, HARBOUR], like=1, query=VAGUE)
    result = search(personas.staff_a, personas.tenant_a, VAGUE)
    assert result.mode == "fused"
    assert (result.hits[0].chunk_index, result.hits[0].found_by) == (1, "vector")
    assert len(result.hits) == 3


def test_copies_of_a_passage_are_one_result_that_lists_where_else_it_occurs(personas, indexed):
    first = doc(personas.tenant_a, "Almanac", created_at=timezone.now() - timedelta(days=2))
    again = doc(personas.tenant_a, "Almanac (again)")
    theirs = doc(personas.tenant_b, "Globex almanac")
    indexed(first, [TIDES, ORCHARD])
    indexed(
        again,
        [
            HARBOUR,
            "  spring TIDES follow the new and the full moon;\nsailors read the tide tables.  ",
        ],
    )
    indexed(theirs, [TIDES])
    hits = search(personas.staff_a, personas.tenant_a, "spring tides moon").hits
    assert len(hits) == 1
    assert {(p.document_id, p.chunk_index) for p in hits[0].also_in} | {
        (hits[0].document_id, hits[0].chunk_index)
    } == {(str(first.pk), 0), (str(again.pk), 1)}
    assert str(theirs.pk) not in {p.document_id for p in hits[0].also_in}


REVISED_TIDES = "Spring tides follow the new and the full moon; sailors check the tide tables."


def test_a_nearly_identical_passage_is_folded_and_listed_as_nearly_the_same(personas, indexed):
    first = doc(personas.tenant_a, "Almanac", created_at=timezone.now() - timedelta(days=2))
    revised = doc(personas.tenant_a, "Almanac (revised)")
    theirs = doc(personas.tenant_b, "Globex almanac")
    indexed(first, [TIDES, ORCHARD])
    indexed(revised, [REVISED_TIDES, HARBOUR])
    indexed(theirs, [REVISED_TIDES])
    hits = search(personas.staff_a, personas.tenant_a, "spring tides moon").hits
    tides = [h for h in hits if "tide" in h.text]
    assert len(tides) == 1, [h.text for h in hits]
    [place] = tides[0].also_in
    kept_and_folded = {(tides[0].document_id, tides[0].chunk_index)}
    kept_and_folded.add((place.document_id, place.chunk_index))
    assert kept_and_folded == {(str(first.pk), 0), (str(revised.pk), 0)}
    assert place.same_text is False
    # different passages stay results of their own
    assert {h.text for h in hits} - {TIDES, REVISED_TIDES} <= {ORCHARD, HARBOUR}


def test_with_the_threshold_at_one_only_the_same_words_are_folded(personas, indexed, settings):
    settings.SEARCH_NEAR_DUPLICATE_JACCARD = 1.0
    first = doc(personas.tenant_a, "Almanac")
    revised = doc(personas.tenant_a, "Almanac (revised)")
    indexed(first, [TIDES])
    indexed(revised, [REVISED_TIDES])
    hits = search(personas.staff_a, personas.tenant_a, "spring tides moon").hits
    assert sorted(h.text for h in hits) == sorted([TIDES, REVISED_TIDES])
    assert all(h.also_in == [] for h in hits)


def test_another_tenants_passages_are_never_results(personas, indexed):
    theirs = doc(personas.tenant_b, "Globex almanac")
    indexed(theirs, [TIDES], like=0, query="tides")
    assert search(personas.staff_a, personas.tenant_a, "tides").hits == []
    with pytest.raises(NotAMember):
        search(personas.staff_a, personas.tenant_b, "tides")


def test_deleted_and_purged_documents_are_found_by_neither_side(personas, indexed):
    gone = doc(personas.tenant_a, "Gone")
    purged = doc(personas.tenant_a, "Purged")
    kept = doc(personas.tenant_a, "Kept")
    indexed(gone, [TIDES], like=0, query="tides")
    indexed(purged, [TIDES + " Purged."], like=0, query="tides")
    indexed(kept, [ORCHARD])
    # the delete's vectors stay in the index until the cleanup runs: only the rows go now
    services.documents_delete(queryset=Document.objects.filter(pk=gone.pk))
    services.documents_purge_vectors(queryset=Document.objects.filter(pk=purged.pk))
    assert Document.objects.get(pk=purged.pk).vector_state == VectorState.PURGE_PENDING
    hits = search(personas.staff_a, personas.tenant_a, "tides").hits
    assert {h.document_id for h in hits} <= {str(kept.pk)}


def test_filters_narrow_both_sides(personas, indexed):
    old = doc(personas.tenant_a, "Old", created_at=timezone.now() - timedelta(days=30))
    failed = doc(personas.tenant_a, "Failed", status=Status.FAILED)
    new = doc(personas.tenant_a, "New")
    # texts far enough apart that none is folded into another as nearly the same
    texts = {
        "Old": "Tides in the old harbour were logged by hand in ledgers.",
        "Failed": "The broken gauge recorded no tides during the storm week.",
        "New": "New sensors report tides to the harbour office every minute.",
    }
    for document in (old, failed, new):
        indexed(document, [texts[document.title]], like=0, query="tides")

    def found(**filters):
        hits = search(
            personas.staff_a, personas.tenant_a, "tides", filters=SearchFilters(**filters)
        ).hits
        return {h.title for h in hits}

    assert found() == {"Old", "Failed", "New"}
    assert found(status=Status.FAILED) == {"Failed"}
    assert found(document_id=str(old.pk)) == {"Old"}
    today = timezone.localdate()
    assert found(uploaded_from=today - timedelta(days=1)) == {"Failed", "New"}
    assert found(uploaded_to=today - timedelta(days=1)) == {"Old"}


def test_a_vector_whose_id_names_no_chunk_is_left_out(personas, indexed, search_backends):
    from tests.doubles.gemini import fake_vector

    kept = doc(personas.tenant_a, "Kept")
    indexed(kept, [ORCHARD])
    search_backends.seed(
        personas.tenant_a.vector_namespace,
        [("not-a-document#0", fake_vector(VAGUE, "RETRIEVAL_QUERY", 768), {"text": "stray"})],
    )
    hits = search(personas.staff_a, personas.tenant_a, VAGUE).hits
    assert [h.document_id for h in hits] == [str(kept.pk)]
