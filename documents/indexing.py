"""The last two stages of a claimed document -- embedding and indexing -- and the checkpoint
that lets a retry start at them.

A vector-store failure is transient (a 429 or 5xx that outlasted the SDK's retries) and the
task is retried. The retry must not download, OCR, chunk and embed the document again, so:

- the chunks are in the database, written in one transaction that also clears the checkpoint;
- their vectors are in the embedding cache, put there batch by batch as they arrive;
- once both are stored, the claim writes ``resume_checkpoint = "indexing:<fingerprint>"``,
  a hash of every chunk (index, pages, offsets, text) and of the embedder (model, dimension,
  chunk size and overlap).

A later attempt (an in-task retry, the scheduled retry of a failed document, a re-index asked
for by the reconciliation) resumes at embedding when the checkpoint is there and the chunks
now in the database hash to it under the embedder configured now: every vector then comes from
the cache, so it costs no embedding request, and the indexing stage runs. Anything else -- no
checkpoint, chunks rewritten since, another model or chunk size -- starts from the beginning.
A reprocess clears the checkpoint on purpose (``lifecycle.queue_again``), as does completion.

The indexing stage raises the document's high-water mark of chunk indexes before the first
vector is written, records the log sequence number of every upsert request, deletes the ids
above the new chunk count that an earlier run wrote, and writes a heartbeat between upsert
batches, so a long run of the SDK's retries never looks like a dead worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from django.db import transaction

from documents import vector_state
from documents.embedding_cache import EmbeddingCache
from documents.lifecycle import Claim
from documents.models import Chunk, Document
from documents.pipeline.embed import Embedded, Part, embed_parts
from documents.pipeline.fusion import text_hash
from documents.pipeline.quality import touches_flagged
from documents.pipeline.types import Embedder, TextChunk, VectorStore
from documents.pipeline.vectors import upsert_chunks, vector_id

CHECKPOINT_STAGE = "indexing"


def fingerprint(chunks: Sequence[TextChunk], embedder: Embedder) -> str:
    digest = hashlib.sha256()
    for part in (
        embedder.model_name,
        embedder.dimension,
        embedder.chunk_tokens,
        embedder.chunk_overlap,
        len(chunks),
    ):
        digest.update(f"{part}\x00".encode())
    for c in chunks:
        digest.update(
            f"{c.index}\x00{c.page_start}\x00{c.page_end}\x00{c.char_start}\x00{c.char_end}\x00"
            f"{c.token_count}\x00".encode()
        )
        digest.update(c.text.encode("utf-8", "surrogatepass") + b"\x00")
    return f"{CHECKPOINT_STAGE}:{digest.hexdigest()[:64]}"


def stored_chunks(document_id) -> list[TextChunk]:
    return [
        TextChunk(
            index=c.index,
            text=c.text,
            token_count=c.token_count,
            page_start=c.page_start,
            page_end=c.page_end,
            char_start=c.char_start,
            char_end=c.char_end,
        )
        for c in Chunk.objects.filter(document_id=document_id).order_by("index")
    ]


def resume_point(document: Document, embedder: Embedder) -> list[TextChunk] | None:
    """The stored chunks, when this attempt may skip straight to embedding (served by the
    cache) and indexing; else None."""
    if not document.resume_checkpoint.startswith(f"{CHECKPOINT_STAGE}:"):
        return None
    chunks = stored_chunks(document.pk)
    if not chunks or fingerprint(chunks, embedder) != document.resume_checkpoint:
        return None
    return chunks


def save_chunks(
    held: Claim,
    document: Document,
    chunks: Sequence[TextChunk],
    *,
    flagged_pages: frozenset[int] = frozenset(),
) -> None:
    """Replace the document's chunks; a chunk whose pages include one of ``flagged_pages``
    (text quality, pipeline/quality.py) is marked ``low_quality``."""
    with transaction.atomic():
        # A run taken for dead (and replaced) must not rewrite the new run's chunks.
        held.lock()
        # The checkpoint described the chunks about to be replaced.
        held.checkpoint("")
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                index=c.index,
                text=c.text,
                token_count=c.token_count,
                page_start=c.page_start,
                page_end=c.page_end,
                char_start=c.char_start,
                char_end=c.char_end,
                vector_id=vector_id(document.pk, c.index),
                low_quality=touches_flagged(c.page_start, c.page_end, flagged_pages),
                text_hash=text_hash(c.text),
            )
            for c in chunks
        )


def embed(
    document: Document,
    chunks: Sequence[TextChunk],
    embedder: Embedder,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> Embedded:
    """The chunks' vectors, from the tenant's embedding cache where it has them."""
    return embed_together(
        [(document, chunks)],
        embedder,
        on_batch=(lambda done: on_batch(done[0])) if on_batch else None,
    )[0]


def embed_together(
    documents: Sequence[tuple[Document, Sequence[TextChunk]]],
    embedder: Embedder,
    *,
    on_batch: Callable[[list[int]], None] | None = None,
) -> list[Embedded]:
    """Several documents' vectors in one embedding (``pipeline.embed.embed_parts``): the
    chunks no cache holds are sent in full batches across the documents. Each document's
    vectors are cached within its own tenant's namespace."""
    return embed_parts(
        embedder,
        [
            Part(
                texts=[c.text for c in chunks],
                cache=EmbeddingCache(
                    scope=document.namespace,
                    model=embedder.model_name,
                    dimension=embedder.dimension,
                ),
                scope=document.namespace,
                title=document.title,
                token_counts=[c.token_count for c in chunks],
            )
            for document, chunks in documents
        ],
        on_batch=on_batch,
    )


def write_vectors(
    held: Claim,
    store: VectorStore,
    document: Document,
    chunks: Sequence[TextChunk],
    vectors,
    written: vector_state.Written,
) -> None:
    """Write one vector per chunk and delete the document's ids of chunks it no longer has.

    The high-water mark is raised through the claim first, so a run that lost its claim
    writes nothing, and every id written is one the database knows. After each upsert
    request the claim is refreshed (a heartbeat; a cancelled run stops here) and the
    request's LSN recorded."""
    previous_high = vector_state.reserve(held, len(chunks))
    written.add(high=len(chunks))

    def after_batch(done: int, lsn: int | None) -> None:
        written.add(lsn=lsn)
        vector_state.record_lsn(document.pk, lsn)
        held.write()  # the heartbeat, conditioned on still holding the claim

    lsn = upsert_chunks(
        store,
        namespace=document.namespace,
        document_id=document.pk,
        metadata={
            "tenant": document.tenant.slug,
            "document_id": str(document.pk),
            "title": document.title,
            "filename": document.original_filename,
        },
        chunks=chunks,
        vectors=vectors,
        previous_high=previous_high,
        on_batch=after_batch,
    )
    written.add(lsn=lsn)
    vector_state.record_lsn(document.pk, lsn)
