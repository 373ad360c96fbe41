"""OCR through the real Tesseract. Text is drawn large and clear, so the words asserted are
ones Tesseract reads reliably; the fake-Tesseract scripts below stand in only where a test
must observe the process itself (its environment, how many run at once, a hang)."""

import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from documents.errors import BudgetExceeded, FailureKind, PermanentError, TransientError
from documents.pipeline import ocr
from documents.pipeline.budgets import Deadline
from documents.pipeline.extract import PDF, extract_text
from documents.pipeline.ocr import OcrError, OcrJob, ocr_pages
from documents.pipeline.types import ExtractOptions, Page
from tests.documents.pipeline import makedocs


def read(path: Path, content_type: str, **options):
    extraction = extract_text(path, content_type=content_type, options=ExtractOptions(**options))
    return extraction.page_count, list(extraction.pages)


def words(text: str) -> set[str]:
    return set(text.upper().split())


def test_an_image_only_pdf_is_read_page_by_page_with_ocr(tmp_path):
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["ALPHA INVOICE 4711", "BRAVO DELIVERY"])
    count, pages = read(path, PDF)
    assert count == 2
    assert [page.number for page in pages] == [1, 2]
    assert all(page.ocr for page in pages)
    assert {"ALPHA", "INVOICE", "4711"} <= words(pages[0].text)
    assert {"BRAVO", "DELIVERY"} <= words(pages[1].text)


def test_text_pages_and_scanned_pages_keep_their_order():
    text = "A page with a proper text layer, long enough to skip OCR."
    jobs = [
        Page(number=1, text=text),
        OcrJob(number=2, image=makedocs.text_image("CHARLIE SCANNED PAGE"), dpi=200),
        Page(number=3, text=text),
    ]
    pages = list(ocr_pages(jobs, languages="eng", parallel=2))
    assert [page.number for page in pages] == [1, 2, 3]
    assert [page.ocr for page in pages] == [False, True, False]
    assert {"CHARLIE", "SCANNED", "PAGE"} <= words(pages[1].text)


def test_a_multi_page_tiff_is_one_page_per_frame(tmp_path):
    path = makedocs.tiff(tmp_path / "scan.tif", ["ALPHA ONE", "BRAVO TWO", "CHARLIE THREE"])
    count, pages = read(path, "image/tiff")
    assert count == 3
    assert [page.number for page in pages] == [1, 2, 3]
    assert {"ALPHA", "ONE"} <= words(pages[0].text)
    assert {"BRAVO", "TWO"} <= words(pages[1].text)
    assert {"CHARLIE", "THREE"} <= words(pages[2].text)


def test_a_png_with_a_transparent_background_is_read(tmp_path):
    path = tmp_path / "label.png"
    makedocs.text_image("DELTA TRANSPARENT", mode="RGBA").save(path)
    _, pages = read(path, "image/png")
    assert {"DELTA", "TRANSPARENT"} <= words(pages[0].text)
    assert pages[0].ocr


def test_a_jpeg_is_read(tmp_path):
    path = tmp_path / "photo.jpg"
    makedocs.text_image("ECHO PHOTOGRAPH").save(path, quality=85)
    _, pages = read(path, "image/jpeg")
    assert {"ECHO", "PHOTOGRAPH"} <= words(pages[0].text)


def test_a_blank_image_fails_as_empty(tmp_path):
    path = tmp_path / "blank.png"
    makedocs.text_image("").save(path)
    with pytest.raises(PermanentError) as caught:
        read(path, "image/png")
    assert caught.value.kind == FailureKind.EMPTY


def test_a_truncated_image_is_corrupt(tmp_path):
    path = tmp_path / "whole.png"
    makedocs.text_image("FOXTROT").save(path)
    with pytest.raises(PermanentError) as caught:
        read(makedocs.truncated(path, tmp_path / "half.png"), "image/png")
    assert caught.value.kind == FailureKind.CORRUPT


def test_a_tiff_over_the_page_limit_is_refused(tmp_path):
    path = makedocs.tiff(tmp_path / "scan.tif", ["ONE", "TWO", "THREE"])
    with pytest.raises(PermanentError) as caught:
        extract_text(path, content_type="image/tiff", options=ExtractOptions(max_pages=2))
    assert caught.value.kind == FailureKind.TOO_MANY_PAGES


def test_a_language_that_is_not_installed_is_an_installation_error():
    jobs = [OcrJob(number=1, image=makedocs.text_image("GOLF"), dpi=200)]
    with pytest.raises(OcrError, match="Tesseract failed on page 1"):
        list(ocr_pages(jobs, languages="xxx", parallel=1))


# --- the process itself, observed through a stand-in for the tesseract binary -------------------


def fake_tesseract(tmp_path: Path, body: str) -> str:
    """A script called like tesseract (image, output base, options) that writes
    ``<output base>.txt`` after running ``body``."""
    script = tmp_path / "tesseract"
    script.write_text(f'#!/bin/sh\nLOG="{tmp_path}"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def blank_jobs(count: int) -> list[OcrJob]:
    return [
        OcrJob(number=n, image=makedocs.text_image("", size=(50, 50))) for n in range(1, count + 1)
    ]


def test_tesseract_runs_with_openmp_limited_to_one_thread(tmp_path, monkeypatch):
    tesseract = fake_tesseract(tmp_path, 'echo "OMP=$OMP_THREAD_LIMIT" > "$2.txt"')
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    pages = list(ocr_pages(blank_jobs(1), languages="eng", parallel=1, tesseract=tesseract))
    assert pages[0].text == "OMP=1"


@pytest.mark.parametrize("parallel", [1, 3])
def test_at_most_the_configured_number_of_pages_are_read_at_once(tmp_path, parallel):
    # Each process records how many were running when it started, then lingers a little.
    body = (
        'touch "$LOG/running.$$"; ls "$LOG" | grep -c running >> "$LOG/counts"; '
        'sleep 0.3; rm "$LOG/running.$$"; echo "$2" > "$2.txt"'
    )
    tesseract = fake_tesseract(tmp_path, body)
    pages = list(ocr_pages(blank_jobs(7), languages="eng", parallel=parallel, tesseract=tesseract))
    assert [page.number for page in pages] == list(range(1, 8))
    assert all(page.text.endswith(f"page-{page.number}") for page in pages)
    counts = [int(line) for line in (tmp_path / "counts").read_text().split()]
    assert max(counts) == parallel


def test_a_page_that_hangs_is_stopped_and_retried_later(tmp_path, monkeypatch):
    tesseract = fake_tesseract(tmp_path, "sleep 30")
    monkeypatch.setattr(ocr, "PAGE_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(TransientError, match="page 1 with OCR took longer"):
        list(ocr_pages(blank_jobs(1), languages="eng", parallel=1, tesseract=tesseract))


def test_a_missing_tesseract_binary_is_an_installation_error():
    with pytest.raises(OcrError, match="not installed"):
        list(ocr_pages(blank_jobs(1), languages="eng", parallel=1, tesseract="/nonexistent/tess"))


# --- every tesseract is killed and waited for, and the temporary folder removed ----------------

# Records its image's folder and then its pid, then reads page 1 at once and sleeps on the others
# (``exec``: the sleeping process is the one we started, so killing it leaves nothing behind).
# Folders are appended, one line each, before the pid: a tesseract killed while it starts leaves
# a missing line, never an empty one.
_LOGGING_TESSERACT = (
    'dirname "$1" >> "$LOG/workdirs"; echo $$ >> "$LOG/pids"; '
    'case "$1" in *page-1.pnm) echo first > "$2.txt"; exit 0;; esac; exec sleep 30'
)


def started(tmp_path: Path, count: int) -> list[int]:
    """The pids of the first ``count`` tesseracts, once they have all started."""
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.02)
    raise AssertionError(f"{count} tesseracts did not start, only {pids}")


def alive_or_zombie(pid: int) -> bool:
    """A process we started shows in /proc until it is waited for, as a zombie once dead."""
    return Path(f"/proc/{pid}").exists()


def assert_cleaned_up(tmp_path: Path, pids: list[int]) -> None:
    assert pids
    assert [pid for pid in pids if alive_or_zombie(pid)] == []
    workdirs = {line for line in (tmp_path / "workdirs").read_text().splitlines() if line}
    assert workdirs
    assert [folder for folder in workdirs if Path(folder).exists()] == []


def test_stopping_early_kills_and_reaps_every_tesseract_and_removes_the_temporary_files(tmp_path):
    tesseract = fake_tesseract(tmp_path, _LOGGING_TESSERACT)
    pages = ocr_pages(blank_jobs(4), languages="eng", parallel=3, tesseract=tesseract)
    assert next(pages).text == "first"
    pids = started(tmp_path, 3)  # page 1 done, pages 2 and 3 sleeping
    pages.close()
    assert_cleaned_up(tmp_path, pids)


class Cancelled(Exception):
    """What a task's time limit or a revoke raises in the middle of whatever runs."""


def test_an_exception_raised_while_waiting_kills_and_reaps_tesseract(tmp_path):
    tesseract = fake_tesseract(tmp_path, _LOGGING_TESSERACT)
    jobs = blank_jobs(3)[1:]  # pages 2 and 3: both sleep

    def cancel(signum, frame):
        raise Cancelled()

    previous = signal.signal(signal.SIGALRM, cancel)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Cancelled):
            list(ocr_pages(jobs, languages="eng", parallel=2, tesseract=tesseract))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert_cleaned_up(tmp_path, started(tmp_path, 2))


def test_the_document_deadline_stops_a_running_tesseract_as_a_permanent_failure(tmp_path):
    tesseract = fake_tesseract(tmp_path, _LOGGING_TESSERACT)
    deadline = Deadline(1.0)
    with pytest.raises(BudgetExceeded) as caught:
        list(
            ocr_pages(
                blank_jobs(3)[1:],
                languages="eng",
                parallel=1,
                tesseract=tesseract,
                deadline=deadline,
            )
        )
    assert caught.value.kind == FailureKind.TIME_LIMIT
    assert str(caught.value).startswith(
        "Reading this document took longer than the limit of 1 seconds (stopped after 1 "
        "seconds, at page 2)."
    )
    assert_cleaned_up(tmp_path, started(tmp_path, 1))


def test_closing_an_extraction_stops_its_ocr(tmp_path):
    tesseract = fake_tesseract(tmp_path, _LOGGING_TESSERACT)
    path = makedocs.image_pdf(tmp_path / "scan.pdf", ["ONE", "TWO", "THREE"])
    extraction = extract_text(
        path, content_type=PDF, options=ExtractOptions(tesseract_cmd=tesseract)
    )
    assert next(extraction.pages).text == "first"
    pids = started(tmp_path, 2)  # pages 1 and 2 (two at a time): page 2 sleeping
    extraction.close()
    assert_cleaned_up(tmp_path, pids)


def test_writing_the_word_table_leaves_the_text_byte_for_byte_the_same(tmp_path):
    # ocr.py asks Tesseract for the text and the TSV of words (for the confidence) in one
    # run; the text must be what the run without the TSV writes.
    image = tmp_path / "page.png"
    makedocs.text_image("HOTEL INDIA 1234\nJULIET kilo lima").save(image)
    common = ["-l", "eng", "--psm", ocr.PAGE_SEGMENTATION_MODE, "--dpi", "200"]
    subprocess.run(["tesseract", image, tmp_path / "alone", *common], check=True)
    subprocess.run(["tesseract", image, tmp_path / "both", *common, "txt", "tsv"], check=True)
    alone = (tmp_path / "alone.txt").read_bytes()
    assert "JULIET" in alone.decode()
    assert (tmp_path / "both.txt").read_bytes() == alone
    assert ocr.mean_confidence((tmp_path / "both.tsv").read_text()) > 80
