"""Hybrid search over one tenant's chunks: the lexical index in the database and the vector
store, fused as the retrieval benchmark chose (docs/retrieval.md), copies of one passage
folded into one result. A service, not a selector: the query is embedded and the vector store
is asked over the network.

Scoping: the tenant must be one of the user's (checked here, not only in the form or the
serializer); the namespace is read from the tenant row; both sides' candidates are resolved to
Chunk rows of that tenant's searchable documents, so a vector left behind by a deleted
document, or one of a purged document, is never a result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from documents import lexical
from documents.clients import get_embedder, get_vector_store
from documents.errors import NotAMember
from documents.models import Chunk
from documents.pipeline import fusion
from documents.pipeline.vectors import search as vector_search
from documents.selectors import tenant_of_caller, tenants_for_user

MAX_RESULTS = 50


@dataclass(frozen=True)
class Place:
    """Another chunk with the same (normalised) text, or nearly (``same_text`` false): where
    else the passage occurs."""

    document_id: str
    title: str
    chunk_index: int
    page_start: int
    page_end: int
    same_text: bool = True


@dataclass(frozen=True)
class SearchHit:
    score: float
    document_id: str
    title: str
    chunk_index: int
    page_start: int
    page_end: int
    text: str
    found_by: str  # "lexical", "vector" or "both"
    also_in: list[Place] = field(default_factory=list)
    # Kept for the admin template: a hit is always a chunk of an existing document now.
    document_exists: bool = True
    # The chunk's pages include one flagged for its text quality (Chunk.low_quality).
    low_quality: bool = False

    @property
    def vector_id(self) -> str:
        return f"{self.document_id}#{self.chunk_index}"


@dataclass(frozen=True)
class SearchFilters:
    """What the admin page narrows a search to; applied on both sides."""

    status: str = ""
    uploaded_from: date | None = None
    uploaded_to: date | None = None
    document_id: str = ""


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    terms: list[str]  # the query's terms, as the lexical side searched them (for highlighting)
    mode: str  # "lexical": the lexical ranking was used as it is; "fused": weighted RRF


def fusion_plan(db=connection) -> fusion.FusionPlan:
    return fusion.POSTGRES_ALL_TERMS_FIRST if db.vendor == "postgresql" else fusion.SQLITE_FTS5


def chunks_search(
    *,
    user,
    tenant_id,
    query: str,
    top_k: int = 10,
    filters: SearchFilters | None = None,
) -> SearchResult:
    """The top ``top_k`` passages of one of the user's tenants for a query."""
    tenant = tenants_for_user(user).filter(pk=tenant_id).first()
    if tenant is None:
        raise NotAMember("You are not a member of that tenant.")
    return tenant_search(tenant=tenant, query=query, top_k=top_k, filters=filters)


def tenant_for_search(*, user, tenant_slug: str | None):
    """The tenant an API search runs in: the one named, if the user is a member, else the
    user's only tenant (as an upload's)."""
    return tenant_of_caller(
        user=user,
        tenant_slug=tenant_slug,
        cannot="there is nothing to search",
        parameter="'tenant' parameter",
    )


def tenant_search(
    *, tenant, query: str, top_k: int = 10, filters: SearchFilters | None = None
) -> SearchResult:
    """``chunks_search`` for a tenant the caller has already checked. A blank query finds
    nothing."""
    query = (query or "").strip()
    if not query:
        return SearchResult(hits=[], terms=[], mode="lexical")
    top_k = max(1, min(int(top_k), MAX_RESULTS))
    searchable = lexical.searchable_documents(tenant)
    documents = _filtered(searchable, filters or SearchFilters())
    terms = fusion.query_terms(query)

    lexical_hits = lexical.search(documents, terms, limit=fusion.CANDIDATES)
    matches = vector_search(
        get_vector_store(),
        namespace=tenant.vector_namespace,
        vector=get_embedder().embed_query(query),
        top_k=fusion.CANDIDATES,
    )
    # The vector side's candidates that are chunks of the (filtered) searchable documents,
    # in the store's order: a stale vector or one outside the filters drops out here.
    rows = _chunks(documents, {m.id for m in matches} | {h.vector_id for h in lexical_hits})
    vector = [(m.id, float(m.score)) for m in matches if m.id in rows]

    fused = fusion.fuse(
        terms,
        [(h.vector_id, h.score) for h in lexical_hits],
        vector,
        first_lexical_text=lexical_hits[0].text if lexical_hits else None,
        plan=fusion_plan(),
    )
    by_id = {f.id: f for f in fused.ranked}
    folded = fusion.collapse(
        [f.id for f in fused.ranked if f.id in rows],
        {i: rows[i].text_hash for i in rows},
        text_of={i: rows[i].text for i in rows},
        near=settings.SEARCH_NEAR_DUPLICATE_JACCARD,
    )[:top_k]
    places = _places(searchable, [rows[kept] for kept, _ in folded])
    hits = []
    for kept, copies in folded:
        chunk = rows[kept]
        same = [p for pk, p in places.get(chunk.text_hash, []) if pk != chunk.pk]
        nearly = [
            _place(rows[c], same_text=False) for c in copies if rows[c].text_hash != chunk.text_hash
        ]
        hits.append(
            SearchHit(
                score=by_id[kept].score,
                document_id=str(chunk.document_id),
                title=chunk.document.title,
                chunk_index=chunk.index,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                text=chunk.text,
                found_by=by_id[kept].found_by,
                also_in=same + nearly,
                low_quality=chunk.low_quality,
            )
        )
    return SearchResult(hits=hits, terms=terms, mode=fused.mode)


def _filtered(documents, filters: SearchFilters):
    if filters.status:
        documents = documents.filter(status=filters.status)
    if filters.uploaded_from:
        documents = documents.filter(created_at__gte=_day_start(filters.uploaded_from))
    if filters.uploaded_to:
        documents = documents.filter(
            created_at__lt=_day_start(filters.uploaded_to) + timedelta(days=1)
        )
    if filters.document_id:
        documents = documents.filter(pk=filters.document_id)
    return documents


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _chunks(documents, vector_ids) -> dict[str, Chunk]:
    vector_ids = list(vector_ids)
    # Vector ids are "<document id>#<chunk index>" (documents/pipeline/vectors.py vector_id):
    # narrowing by document id first uses the foreign key's index (vector_id has none).
    document_ids = {d for d in (v.rsplit("#", 1)[0] for v in vector_ids) if _is_uuid(d)}
    rows = (
        Chunk.objects.filter(
            document__in=documents, document_id__in=document_ids, vector_id__in=vector_ids
        )
        .select_related("document")
        .only(
            "id",
            "index",
            "text",
            "text_hash",
            "low_quality",
            "page_start",
            "page_end",
            "vector_id",
            "document__id",
            "document__title",
        )
    )
    return {c.vector_id: c for c in rows}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _places(documents, kept: list[Chunk]) -> dict[str, list[tuple[int, Place]]]:
    """Every chunk of the tenant's searchable documents (filters or not) that has one of the
    kept chunks' texts, by text hash, with its primary key."""
    hashes = {c.text_hash for c in kept if c.text_hash}
    places: dict[str, list[tuple[int, Place]]] = {}
    if not hashes:
        return places
    copies = (
        Chunk.objects.filter(document__in=documents, text_hash__in=hashes)
        .select_related("document")
        .only("id", "index", "page_start", "page_end", "text_hash", "document__title")
        .order_by("document__created_at", "index")
    )
    for copy in copies:
        places.setdefault(copy.text_hash, []).append((copy.pk, _place(copy, same_text=True)))
    return places


def _place(chunk: Chunk, *, same_text: bool) -> Place:
    return Place(
        document_id=str(chunk.document_id),
        title=chunk.document.title,
        chunk_index=chunk.index,
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        same_text=same_text,
    )
