"""Removing a document's vectors of chunks that no longer exist, for any store."""

from __future__ import annotations

from collections.abc import Collection

from documents.pipeline.types import VectorStore


def delete_strays(store: VectorStore, namespace: str, prefix: str, wanted: Collection[str]) -> int:
    """Delete the ids under ``prefix`` that are not in ``wanted`` (list by prefix, delete by
    ids: what Pinecone offers). Returns how many were deleted."""
    strays = [i for i in store.list_ids(namespace, prefix) if i not in wanted]
    if strays:
        store.delete_ids(namespace, strays)
    return len(strays)
