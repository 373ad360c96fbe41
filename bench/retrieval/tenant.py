"""The benchmark tenant's chunks: the project's chunker over every document, and what the
re-uploads added (how many of their chunks repeat an original's exactly or nearly)."""

from __future__ import annotations

from collections.abc import Sequence

from documents.pipeline.chunk import split_text
from retrieval.corpus import Document
from retrieval.scoring import trigram_set


def chunk_documents(documents: Sequence[Document], embedder) -> tuple[list, list, list]:
    """Chunk ids (``<document>#<index>``, as the pipeline names vectors), texts and token
    counts, cut as run.py cuts them for the local embedder."""
    ids, texts, counts = [], [], []
    for document in documents:
        for chunk in split_text(
            document.pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        ):
            ids.append(f"{document.doc_id}#{chunk.index}")
            texts.append(chunk.text)
            counts.append(chunk.token_count)
    return ids, texts, counts


def duplicate_facts(
    documents: Sequence[Document], ids: Sequence[str], texts: Sequence[str], *, near: float
) -> dict:
    """Per kind of re-upload: its chunks, how many have an identical chunk in the original,
    and how many a near-identical one (3-gram Jaccard >= ``near``)."""
    by_doc: dict[str, list[str]] = {}
    for chunk_id, text in zip(ids, texts, strict=True):
        by_doc.setdefault(chunk_id.rsplit("#", 1)[0], []).append(text)
    facts: dict[str, dict[str, int]] = {}
    for document in documents:
        if document.doc_id == document.source:
            continue
        kind = "identical" if "(identical" in document.doc_id else "revised"
        entry = facts.setdefault(kind, {"documents": 0, "chunks": 0, "identical": 0, "near": 0})
        originals = by_doc.get(document.source, [])
        original_texts = set(originals)
        original_grams = [trigram_set(t) for t in originals]
        entry["documents"] += 1
        for text in by_doc.get(document.doc_id, []):
            entry["chunks"] += 1
            if text in original_texts:
                entry["identical"] += 1
                continue
            grams = trigram_set(text)
            best = max(
                (len(grams & g) / len(grams | g) for g in original_grams if grams | g),
                default=0.0,
            )
            entry["near"] += best >= near
    return facts
