"""Searching a tenant's chunks: the query is embedded and sent to the vector store, so this
is a service with side effects (network calls), not a selector.

The namespace is read from the tenant row, never from the request, and the tenant must be
one of the user's (checked here, not only in the form)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from documents.clients import get_embedder, get_vector_store
from documents.errors import InvalidUpload, NotAMember
from documents.models import Chunk
from documents.pipeline.vectors import search
from documents.selectors import documents_for_user, tenants_for_user


@dataclass(frozen=True)
class SearchHit:
    score: float
    document_id: str
    title: str
    chunk_index: int | None
    page_start: int | None
    page_end: int | None
    text: str
    # False when the vector outlived its document (deleted since): shown without a link.
    document_exists: bool
    # The chunk's pages include one flagged for its text quality (Chunk.low_quality).
    low_quality: bool = False


def chunks_search(*, user, tenant_id, query: str, top_k: int = 10) -> list[SearchHit]:
    """The top chunks of one tenant for a query, through the pipeline's embedder and store."""

    tenant = tenants_for_user(user).filter(pk=tenant_id).first()
    if tenant is None:
        raise NotAMember("You are not a member of that tenant.")
    query = (query or "").strip()
    if not query:
        raise InvalidUpload("Type something to search for.")
    vector = get_embedder().embed_query(query)
    matches = search(
        get_vector_store(), namespace=tenant.vector_namespace, vector=vector, top_k=top_k
    )
    ids = {str(m.metadata.get("document_id") or m.id.split("#", 1)[0]) for m in matches}
    existing = {
        str(pk)
        for pk in documents_for_user(user)
        .filter(tenant=tenant, pk__in=[i for i in ids if _is_uuid(i)])
        .values_list("pk", flat=True)
    }
    flagged = set(
        Chunk.objects.filter(
            document_id__in=existing, vector_id__in=[m.id for m in matches], low_quality=True
        ).values_list("vector_id", flat=True)
    )
    hits = []
    for match in matches:
        meta = match.metadata or {}
        document_id = str(meta.get("document_id") or match.id.split("#", 1)[0])
        hits.append(
            SearchHit(
                score=float(match.score),
                document_id=document_id,
                title=str(meta.get("title") or ""),
                chunk_index=_int_or_none(meta.get("chunk_index")),
                page_start=_int_or_none(meta.get("page_start")),
                page_end=_int_or_none(meta.get("page_end")),
                text=str(meta.get("text") or ""),
                document_exists=document_id in existing,
                low_quality=match.id in flagged,
            )
        )
    return hits


def _is_uuid(value: str) -> bool:

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
