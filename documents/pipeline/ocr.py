"""OCR of page images with Tesseract, a few pages at a time, results in page order.

Tesseract runs as one subprocess per page with ``OMP_THREAD_LIMIT=1``: a single-threaded
page is faster than one using Tesseract's default OpenMP threads on few cores, so the
parallelism comes from running ``parallel`` single-threaded processes side by side. The
binary is started directly, not through pytesseract, so that the limit reaches Tesseract
alone and not torch in the same worker (docs/decisions/0002-tesseract-without-pytesseract.md);
the processes run on their own and we wait for them in page order.

Each image is written to a temporary file as soon as its job is taken, so at most
``parallel`` rendered pages exist at once (on disk, not in memory), whatever the page count.

Every ``tesseract`` started is killed (when still running) and waited for on every way out:
the consumer closing the iterator early, an error, the document's deadline, an exception
raised while we wait (a task's time limit, a cancellation). A process nobody waits for stays
a zombie until the worker exits. The temporary folder goes with them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from documents.errors import TransientError

from .budgets import Deadline
from .quality import TextScore, ocr_page
from .types import Page

# A dense page takes seconds; one still running after this long is a runaway (Tesseract can
# loop on noise), and holding the worker forever is worse than a retry.
PAGE_TIMEOUT_SECONDS = 300

# --psm 1 is automatic page segmentation *with orientation detection*: scanned pages come in
# any orientation, and the default --psm 3 reads an upside-down page as garbage (decision
# record 0002).
PAGE_SEGMENTATION_MODE = "1"

# How many pages with a text layer may wait behind a running OCR job: they are small, and
# letting a few queue keeps Tesseract busy on a document that mixes text and scanned pages.
_READY_SLACK = 16


@dataclass
class OcrJob:
    """A page to read: its image, the image's resolution when known (Tesseract guesses it
    from the text height otherwise), and the text layer to keep if OCR finds less."""

    number: int
    image: Image.Image
    dpi: int | None = None
    fallback_text: str = ""
    # set when the text layer was sent to OCR for looking garbled (quality.py)
    fallback_score: TextScore | None = None


class OcrError(RuntimeError):
    """Tesseract failed (missing binary, missing language data): a problem of the worker's
    installation, not of the document, so it is left to surface as an internal error."""


def ocr_pages(
    items: Iterable[Page | OcrJob],
    *,
    languages: str,
    parallel: int = 2,
    tesseract: str = "tesseract",
    deadline: Deadline | None = None,
) -> Iterator[Page]:
    """Yield one Page per item, in the order given. Pages pass through; each OcrJob is read
    with Tesseract, with up to ``parallel`` of them running at once. Waiting for a page stops
    at ``deadline`` (BudgetExceeded, TIME_LIMIT) as well as at PAGE_TIMEOUT_SECONDS.

    ``items`` is consumed lazily: an item is taken (and a job's page rendered by the caller)
    only while the next page in order is still being read and fewer than ``parallel`` jobs
    run. Pages with a text layer may queue up behind a running job (up to ``_READY_SLACK``)."""
    parallel = max(1, parallel)
    source = iter(items)
    exhausted = False
    queue: deque[Page | _Running] = deque()
    workdir = Path(tempfile.mkdtemp(prefix="ocr-"))
    try:
        while True:
            while not exhausted and _wants_more(queue, parallel):
                item = next(source, None)
                if item is None:
                    exhausted = True
                elif isinstance(item, OcrJob):
                    queue.append(_start(item, workdir, languages, tesseract))
                    del item  # the image now lives in the temporary file only
                else:
                    queue.append(item)
            if not queue:
                return
            head = queue[0]
            # Finished before it leaves the queue: if the wait is interrupted, the process
            # is still in the queue for the cleanup below to kill and reap.
            page = head if isinstance(head, Page) else head.finish(deadline)
            queue.popleft()
            yield page
    finally:
        # The consumer may stop early (an error downstream, a cancelled task): stop the
        # processes still running rather than leaving them to finish unobserved.
        for entry in queue:
            if isinstance(entry, _Running):
                entry.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        # Close the source now (it holds the open PDF) rather than whenever it is collected.
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _wants_more(queue: deque, parallel: int) -> bool:
    if queue and isinstance(queue[0], Page):
        return False  # the next page in order is ready: hand it out first
    running = sum(1 for entry in queue if isinstance(entry, _Running))
    return running < parallel and len(queue) < parallel + _READY_SLACK


@dataclass
class _Running:
    job_number: int
    fallback_text: str
    fallback_score: TextScore | None
    process: subprocess.Popen
    output: Path
    words: Path
    errors: Path
    files: tuple[Path, ...]

    def finish(self, deadline: Deadline | None = None) -> Page:
        timeout = PAGE_TIMEOUT_SECONDS
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline.remaining()))
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            if deadline is not None and deadline.remaining() <= 0:
                raise deadline.exceeded(page=self.job_number) from None
            raise TransientError(
                f"Reading page {self.job_number} with OCR took longer than "
                f"{PAGE_TIMEOUT_SECONDS} seconds and was stopped."
            ) from None
        try:
            if self.process.returncode != 0:
                detail = self.errors.read_text(errors="replace").strip()
                raise OcrError(
                    f"Tesseract failed on page {self.job_number} "
                    f"(exit {self.process.returncode}): {detail}"
                )
            text = self.output.read_text(encoding="utf-8", errors="replace").strip()
            # No TSV (a Tesseract built without it) costs the confidence, not the page.
            words = (
                self.words.read_text(encoding="utf-8", errors="replace")
                if self.words.exists()
                else ""
            )
            confidence = mean_confidence(words)
        finally:
            self._cleanup()
        # OCR text or the text layer it was to replace: quality.ocr_page decides.
        return ocr_page(
            self.job_number,
            text,
            confidence,
            layer=self.fallback_text,
            layer_score=self.fallback_score,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)


def _start(job: OcrJob, workdir: Path, languages: str, tesseract: str) -> _Running:
    base = workdir / f"page-{job.number}"
    image_path = base.with_suffix(".pnm")
    errors = base.with_suffix(".err")
    # PNM because it costs no compression time and Leptonica reads it; "1", "L" and "RGB"
    # are the modes it can hold.
    image = job.image if job.image.mode in ("1", "L", "RGB") else job.image.convert("L")
    image.save(image_path, format="PPM")
    command = [tesseract, str(image_path), str(base), "-l", languages]
    command += ["--psm", PAGE_SEGMENTATION_MODE]
    if job.dpi:
        command += ["--dpi", str(job.dpi)]
    command += ["txt", "tsv"]  # config files, after the options: text and words in one run
    try:
        with errors.open("wb") as stderr:
            # stdout/stderr go to files, not pipes: a pipe nobody reads while we wait for
            # another page could fill up and stall Tesseract.
            process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )
    except FileNotFoundError:
        raise OcrError(f"Tesseract is not installed on this worker ({tesseract!r}).") from None
    return _Running(
        job_number=job.number,
        fallback_text=job.fallback_text,
        fallback_score=job.fallback_score,
        process=process,
        output=base.with_suffix(".txt"),
        words=base.with_suffix(".tsv"),
        errors=errors,
        files=(image_path, errors, base.with_suffix(".txt"), base.with_suffix(".tsv")),
    )


def mean_confidence(tsv: str) -> float | None:
    """Tesseract's mean word confidence (0-100) from its TSV output, or None without words.
    Rows of level 5 are words; the other levels (page, block, paragraph, line) carry -1."""
    confidences = []
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 12 and fields[0] == "5" and fields[11].strip():
            confidence = float(fields[10])
            if confidence >= 0:
                confidences.append(confidence)
    return round(sum(confidences) / len(confidences), 2) if confidences else None


def visible_chars(text: str) -> int:
    """Characters that are not whitespace. ``str.split()`` splits on exactly what
    ``str.isspace()`` accepts, and does it in C, faster than testing each character."""
    return len("".join(text.split()))
