"""The stage sequence for one document, and the only code that writes processing status.

A worker first *claims* the document with a conditional UPDATE (DESIGN invariant 4); every
later write is conditioned on still holding that claim, so a cancelled or taken-over document
stops at the next write instead of being overwritten by a stale worker.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from documents import storage
from documents.clients import extract_options, get_embedder, get_vector_store
from documents.errors import ApplicationError, FailureKind
from documents.models import Chunk, Document, Stage, Status
from documents.pipeline.chunk import split_text
from documents.pipeline.embed import embed_chunks
from documents.pipeline.extract import extract_text
from documents.pipeline.types import Embedder, Page, VectorStore
from documents.pipeline.vectors import (
    check_dimension,
    delete_document_vectors,
    upsert_chunks,
    vector_id,
)

logger = logging.getLogger(__name__)

# Progress writes are throttled: a 600-page PDF must not cost 600 UPDATEs per second.
_PROGRESS_INTERVAL_SECONDS = 1.0


class ClaimLost(Exception):
    """Another worker took the document over, or a person cancelled it: stop quietly."""


@dataclass
class Clients:
    embedder: Embedder
    store: VectorStore

    @classmethod
    def from_settings(cls) -> Clients:
        return cls(embedder=get_embedder(), store=get_vector_store())


def claim_owner(task_id: str, retries: int) -> str:
    # The retry count is part of the owner: a second delivery of the *same* message (same
    # count) must wait for the live claim, but a re-send after the worker process died
    # (task_retry_on_worker_lost raises the count) may take over at once.
    return f"{task_id}:{retries}@{socket.gethostname()}:{os.getpid()}"


def _claimable(task_id: str, retries: int, stale) -> Q:
    return (
        Q(claimed_by="")
        | Q(heartbeat_at__lt=stale)
        | (
            Q(claimed_by__startswith=f"{task_id}:")
            & ~Q(claimed_by__startswith=f"{task_id}:{retries}@")
        )
    )


def claim(document_id: str, *, task_id: str, retries: int) -> Document | None:
    """Take the document with a compare-and-swap UPDATE: it succeeds only if the claim we
    saw is still there and is free, stale, or an earlier attempt of this same task. Taking
    over a claim means the previous attempt's worker died: that attempt is recorded."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CLAIM_TIMEOUT_SECONDS)
    current = (
        Document.objects.filter(pk=document_id, status=Status.PROCESSING)
        .filter(_claimable(task_id, retries, stale))
        .values("claimed_by", "heartbeat_at", "stage", "attempt_log")
        .first()
    )
    if current is None:
        return None
    attempt_log = current["attempt_log"]
    if current["claimed_by"]:
        attempt_log = [
            *attempt_log,
            {
                "at": now.isoformat(),
                "stage": current["stage"],
                "kind": FailureKind.WORKER_LOST,
                "message": "The worker processing this document stopped before finishing; "
                "another worker took it over.",
            },
        ]
    updated = Document.objects.filter(
        pk=document_id,
        status=Status.PROCESSING,
        claimed_by=current["claimed_by"],
        heartbeat_at=current["heartbeat_at"],
    ).update(
        claimed_by=claim_owner(task_id, retries),
        heartbeat_at=now,
        last_task_id=task_id,
        attempts=F("attempts") + 1,
        attempt_log=attempt_log,
        started_at=now,
        resume_at=None,
        stage=Stage.DOWNLOADING,
        pages_done=0,
        chunks_done=0,
        stage_timings={},
    )
    if not updated:
        return None  # another delivery won the race
    return Document.objects.select_related("tenant").get(pk=document_id)


class StageRunner:
    """Writes stage, progress, timings and heartbeat for one claimed document."""

    def __init__(self, document: Document):
        self.document = document
        self.owner = document.claimed_by
        self.timings: dict = {}
        self._last_progress = 0.0

    def assert_claim(self) -> None:
        """Inside a transaction: lock the row and make sure it is still ours."""
        held = (
            Document.objects.select_for_update()
            .filter(pk=self.document.pk, claimed_by=self.owner)
            .exists()
        )
        if not held:
            raise ClaimLost(str(self.document.pk))

    def write(self, **fields) -> None:
        fields["heartbeat_at"] = timezone.now()
        updated = Document.objects.filter(pk=self.document.pk, claimed_by=self.owner).update(
            **fields
        )
        if not updated:
            raise ClaimLost(str(self.document.pk))

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        started = time.monotonic()
        self.timings[stage] = {"started": timezone.now().isoformat()}
        self.write(stage=stage, stage_timings=self.timings)
        yield
        self.timings[stage]["seconds"] = round(time.monotonic() - started, 3)
        self.write(stage_timings=self.timings)

    def progress(self, *, force: bool = False, **fields) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= _PROGRESS_INTERVAL_SECONDS:
            self._last_progress = now
            self.write(**fields)

    def switch_to_ocr(self) -> None:
        if Stage.OCR not in self.timings:
            self.timings[Stage.OCR] = {"started": timezone.now().isoformat()}
            self.write(stage=Stage.OCR, stage_timings=self.timings)


def _tracked_pages(runner: StageRunner, pages: Iterator[Page], total: int) -> Iterator[Page]:
    for done, page in enumerate(pages, start=1):
        if page.ocr:
            runner.switch_to_ocr()
        runner.progress(pages_done=done, force=done == total)
        yield page


def process(document_id: str, *, task_id: str, retries: int, clients: Clients | None = None):
    """Run every stage for one document. Returns a summary dict, or None when the document
    was not ours to process (already claimed, cancelled, or no longer processing)."""
    document = claim(document_id, task_id=task_id, retries=retries)
    if document is None:
        logger.info("document %s not claimable; another delivery holds it", document_id)
        return None
    runner = StageRunner(document)
    clients = clients or Clients.from_settings()
    embedder, store = clients.embedder, clients.store

    with ExitStack() as cleanup:
        with runner.stage(Stage.DOWNLOADING):
            path = cleanup.enter_context(storage.local_copy(document.storage_key))
        with runner.stage(Stage.EXTRACTING):
            extraction = extract_text(
                path, content_type=document.content_type, options=extract_options()
            )
            # On any way out (an error, a cancellation) stop its Tesseract processes and
            # remove its temporary files now, not whenever the iterator is collected.
            cleanup.callback(extraction.close)
            runner.write(pages_total=extraction.page_count)
            # Only the text is kept (a few MB for a 600-page book); rendered pages and
            # PDF objects are released page by page inside extract_text.
            pages = list(_tracked_pages(runner, extraction.pages, extraction.page_count))

    with runner.stage(Stage.CHUNKING):
        chunks = split_text(
            pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        )
        with transaction.atomic():
            # A run taken for dead (and replaced) must not rewrite the new run's chunks.
            runner.assert_claim()
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
                )
                for c in chunks
            )
        runner.write(chunks_total=len(chunks), chunk_count=len(chunks))

    with runner.stage(Stage.EMBEDDING):
        check_dimension(store, embedder.dimension)
        vectors = embed_chunks(
            embedder,
            [c.text for c in chunks],
            title=document.title,
            on_batch=lambda done: runner.progress(chunks_done=done),
            token_counts=[c.token_count for c in chunks],
        )

    with runner.stage(Stage.INDEXING):
        upsert_chunks(
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
        )

    runner.write(
        status=Status.COMPLETED,
        stage=Stage.DONE,
        chunks_done=len(chunks),
        finished_at=timezone.now(),
        failure_kind="",
        failure_message="",
        embedding_model=embedder.model_name,
        embedding_dimension=embedder.dimension,
        vector_count=len(chunks),
        claimed_by="",
    )
    return {"document_id": str(document.pk), "status": Status.COMPLETED, "chunks": len(chunks)}


def _attempt_entry(stage: str, error: ApplicationError) -> dict:
    return {
        "at": timezone.now().isoformat(),
        "stage": stage,
        "kind": error.kind,
        "message": error.message,
    }


def record_failure(
    document_id: str, error: ApplicationError, *, will_retry: bool, resume_at=None
) -> bool:
    """Record a failed attempt. With ``will_retry`` the document goes back to ``queued`` (or
    ``waiting`` until ``resume_at`` when a rate limit parks it); otherwise it is ``failed``
    with the error's kind and sentence. Returns False when the document had already left
    ``processing`` (cancelled), in which case nothing is written."""
    with transaction.atomic():
        document = (
            Document.objects.select_for_update()
            .filter(pk=document_id, status=Status.PROCESSING)
            .first()
        )
        if document is None:
            return False
        document.attempt_log = [*document.attempt_log, _attempt_entry(document.stage, error)]
        document.failure_kind = error.kind
        document.failure_message = error.message
        document.claimed_by = ""
        document.heartbeat_at = None
        document.resume_at = resume_at
        if will_retry:
            document.stage = Stage.WAITING if resume_at else Stage.QUEUED
            document.queued_at = timezone.now()
        else:
            document.status = Status.FAILED
            document.finished_at = timezone.now()
        document.save(
            update_fields=[
                "attempt_log",
                "failure_kind",
                "failure_message",
                "claimed_by",
                "heartbeat_at",
                "resume_at",
                "stage",
                "queued_at",
                "status",
                "finished_at",
                "updated_at",
            ]
        )
    return True


def unexpected_error(exc: BaseException) -> ApplicationError:
    """Turn an exception we did not foresee into a staff-readable internal failure."""
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, OperationalError | InterfaceError):
        return ApplicationError(
            "The database connection failed during processing; it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    if isinstance(exc, BrokerError | RedisConnectionError | RedisTimeoutError):
        return ApplicationError(
            "Redis could not be reached during processing; it will be retried.",
            FailureKind.UNAVAILABLE,
        )
    return ApplicationError(
        f"An unexpected error stopped processing ({type(exc).__name__}: {exc}). "
        "It has been reported to the developers.",
        FailureKind.INTERNAL,
    )


def remove_partial_vectors(document_id: str) -> None:
    """After a lost claim, drop what this run wrote -- but only when the document was stopped
    (cancelled). A claim can also be lost because a slow run was taken for dead and another
    worker took the document over; that worker's vectors share the same ids and must stay."""
    document = Document.objects.select_related("tenant").filter(pk=document_id).first()
    if document is not None and document.status == Status.FAILED:
        delete_document_vectors(
            get_vector_store(), namespace=document.namespace, document_id=document.pk
        )
