"""The stages of one claimed document up to its chunks, and the stage runner that records
stage, progress and timings through the document's claim.

``processing.py`` runs these for each document of a batch; the embedding and indexing stages
are in ``indexing.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from documents import estimates, indexing, storage
from documents.clients import extract_options
from documents.lifecycle import Claim
from documents.models import Stage
from documents.pipeline.budgets import document_time_limit
from documents.pipeline.chunk import split_text
from documents.pipeline.extract import extract_text
from documents.pipeline.fingerprint import text_fingerprint
from documents.pipeline.preflight import FULL
from documents.pipeline.quality import quality_record
from documents.pipeline.types import Page

logger = logging.getLogger(__name__)

# Progress writes are throttled: a 600-page PDF must not cost 600 UPDATEs per second.
_PROGRESS_INTERVAL_SECONDS = 1.0


class StageRunner:
    """Stage, progress and timings of one claimed document, written through its claim (so
    each write is also a heartbeat)."""

    def __init__(
        self, held: Claim, *, time_limit: float | None = None, started: float | None = None
    ):
        self.claim = held
        self.timings: dict = {}
        self._last_progress = 0.0
        self._started = 0.0
        self._time_limit = time_limit
        self._run_started = time.monotonic() if started is None else started

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        self.enter(stage)
        yield
        self.leave(stage)

    def enter(self, stage: str) -> None:
        self._check_time(stage)
        self._started = time.monotonic()
        self.timings[stage] = {"started": timezone.now().isoformat()}
        self.claim.write(stage=stage, stage_timings=self.timings)

    def _check_time(self, stage: str) -> None:
        """The document's wall time, checked again as each stage starts. Celery's soft time
        limit is the first guard, but a long native call only sees it when it returns, and
        the timer lives in the worker's main process; this check is the document's own."""
        if self._time_limit is None:
            return
        elapsed = time.monotonic() - self._run_started
        if elapsed > self._time_limit:
            raise document_time_limit(
                self._time_limit, elapsed, stage=f"starting the {stage} stage"
            )

    def leave(self, stage: str, *, seconds: float | None = None, **extra) -> None:
        """``seconds``: this document's share of a stage it shared with others (the
        estimates take each document's stage seconds as its own cost); else the time since
        ``enter``."""
        if seconds is None:
            seconds = time.monotonic() - self._started
        self.timings[stage].update(seconds=round(seconds, 3), **extra)
        self.claim.write(stage_timings=self.timings)

    def progress(self, *, force: bool = False, **fields) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= _PROGRESS_INTERVAL_SECONDS:
            self._last_progress = now
            self.claim.write(**fields)

    def switch_to_ocr(self) -> None:
        if Stage.OCR not in self.timings:
            self.timings[Stage.OCR] = {"started": timezone.now().isoformat()}
            self.claim.write(stage=Stage.OCR, stage_timings=self.timings)

    def tracked(self, pages: Iterator[Page], total: int) -> Iterator[Page]:
        for done, page in enumerate(pages, start=1):
            if page.ocr:
                self.switch_to_ocr()
            self.progress(pages_done=done, force=done == total)
            yield page


def estimate_now(held: Claim, path) -> None:
    """The ``estimating`` stage: the preflight of every page, for a document whose upload
    only read its structure; its estimate replaces the structure's. A file the preflight
    cannot read keeps the estimate it had: the extraction that follows says what is wrong
    with it."""
    document = held.document
    try:
        facts = estimates.inspect(
            path, content_type=document.content_type, size_bytes=document.size_bytes, depth=FULL
        )
    except SoftTimeLimitExceeded:
        raise  # the document's wall time, not a fault of the estimate
    except Exception:  # noqa: BLE001 - an estimate must never be why a document fails
        logger.exception("the preflight of document %s failed; processing goes on", document.pk)
        return
    if facts.complete:
        record = estimates.preflight_record(facts)
        held.write(preflight={**(document.preflight or {}), **record})


def read_and_chunk(held: Claim, runner: StageRunner, document, embedder) -> tuple[list, list]:
    """Download, (estimate,) extract and chunk a claimed document; its chunks are saved."""
    with ExitStack() as cleanup:
        with runner.stage(Stage.DOWNLOADING):
            path = cleanup.enter_context(storage.local_copy(document.storage_key))
        if document.needs_estimating:
            with runner.stage(Stage.ESTIMATING):
                estimate_now(held, path)
        with runner.stage(Stage.EXTRACTING):
            extraction = extract_text(
                path, content_type=document.content_type, options=extract_options()
            )
            # On any way out (an error, a cancellation) stop its Tesseract processes and
            # remove its temporary files now, not whenever the iterator is collected.
            cleanup.callback(extraction.close)
            held.write(pages_total=extraction.page_count)
            # Only the text is kept (a few MB for a 600-page book); rendered pages and
            # PDF objects are released page by page inside extract_text.
            pages = list(runner.tracked(extraction.pages, extraction.page_count))
        # The same text in another file of the tenant shows on the document page, and how
        # far the text can be trusted on the document page, the list and the API.
        quality = quality_record(pages)
        held.write(
            text_fingerprint=text_fingerprint(p.text for p in pages),
            quality=quality,
            low_quality=bool(quality["flagged"]),
        )

    with runner.stage(Stage.CHUNKING):
        chunks = split_text(
            pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        )
        flagged = frozenset(f["page"] for f in quality["flagged"])
        indexing.save_chunks(held, document, chunks, flagged_pages=flagged)
        held.write(chunks_total=len(chunks), chunk_count=len(chunks))
    return chunks, pages
