"""Text-quality signals: garbage scores of text layers, garbled layers sent to OCR (real
Tesseract), low-confidence OCR pages flagged, and a document's summary. The broken PDFs
draw the right glyphs through a ToUnicode map that names the wrong characters, as broken
producers do; the degraded scans are clean pictures of text blurred, speckled or washed
out with Pillow."""

from __future__ import annotations

import pytest

from documents.pipeline.extract import PDF, extract_text
from documents.pipeline.ocr import OcrJob, ocr_pages
from documents.pipeline.quality import (
    GARBAGE_SCORE,
    LOW_CONFIDENCE,
    quality_record,
    score_text,
    summarise_quality,
    touches_flagged,
)
from documents.pipeline.types import ExtractOptions, Page
from tests.documents.pipeline import makedocs

# Six lines of Helvetica 14 pt, well inside the page; 30 words of four letters or more.
REPORT = (
    "The quarterly report shows revenue growth in every region of the company.\n"
    "Customers renewed their contracts and the board approved the budget for\n"
    "the next year. Our teams opened two new offices and hired more staff to\n"
    "support the growing number of clients who asked for help with their\n"
    "projects during the summer months, before the holidays started again."
)
REPORT_WORDS = {"quarterly", "revenue", "customers", "contracts", "budget", "offices"}

FRENCH = (
    "Le conseil municipal s'est réuni à la mairie pour étudier le budget de l'année. "
    "Les élus ont approuvé à l'unanimité la création d'un nouveau réseau de pistes "
    "cyclables, la rénovation de l'école élémentaire et l'éclairage de la place. "
    "Le maire a remercié les bénévoles présents et a levé la séance après les questions."
)


def read(path, **options):
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions(**options))
    return list(extraction.pages)


def words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


# -- scoring text ------------------------------------------------------------------------------


def test_clean_english_and_french_text_score_well_below_the_threshold():
    assert score_text(REPORT.replace("\n", " ")).score < GARBAGE_SCORE / 2
    assert score_text(FRENCH).score < GARBAGE_SCORE / 2


@pytest.mark.parametrize(
    ("garbled", "reason"),
    [
        (" ".join(f"/g{ord(c)}" for c in FRENCH[:200]), "glyph names"),
        (" ".join(f"gid{ord(c):05d}" for c in FRENCH[:200]), "glyph names"),
        ("".join(chr(0xE000 + ord(c)) for c in FRENCH), "private-use or replacement characters"),
        ("".join("\ufffd" if c.isalpha() else c for c in FRENCH), "private-use or replacement"),
        (FRENCH.encode("utf-8").decode("cp1252", errors="replace"), "mojibake"),
        (
            REPORT.translate(
                str.maketrans("abcdefghijklmnopqrstuvwxy", "bcdefghijklmnopqrstuvwxyz")
            ),
            "words in no known language",
        ),
    ],
)
def test_each_kind_of_garbage_scores_above_the_threshold_and_is_named(garbled, reason):
    score = score_text(garbled)
    assert score.garbage, score
    assert score.reason.startswith(reason)


def test_a_few_accented_words_in_english_text_are_not_mojibake():
    text = REPORT + " The café served crème brûlée to the naïve attaché, déjà vu."
    assert score_text(text).score < GARBAGE_SCORE / 2


def test_a_page_with_too_few_words_is_not_judged_on_its_words():
    assert score_text("Xqzv Wrpt Kmnb Zlfx").score == 0.0


# -- garbled text layers go to OCR ----------------------------------------------------------


@pytest.mark.parametrize("broken", ["shifted", "private-use", "replacement", "glyph-names"])
def test_a_page_whose_tounicode_map_is_broken_is_read_with_ocr_instead(tmp_path, broken):
    path = makedocs.broken_tounicode_pdf(tmp_path / "broken.pdf", [REPORT], broken)
    (page,) = read(path)
    assert page.ocr
    assert page.garbage_score is not None and page.garbage_score >= GARBAGE_SCORE
    assert words(page.text) >= REPORT_WORDS
    assert page.ocr_confidence is not None and page.ocr_confidence >= LOW_CONFIDENCE
    assert not page.flagged


def test_a_clean_text_layer_is_kept_with_its_score(tmp_path):
    path = makedocs.text_pdf(tmp_path / "clean.pdf", [REPORT])
    (page,) = read(path)
    assert not page.ocr and page.ocr_confidence is None
    assert page.text.split() == REPORT.split()
    assert page.garbage_score is not None and page.garbage_score < GARBAGE_SCORE
    assert not page.flagged


def test_a_page_in_a_language_without_a_word_list_is_confirmed_by_ocr_and_kept(tmp_path):
    # Finnish is in none of the default lists, so its words look like garbage; OCR reads the
    # same words, which confirms the layer: it is kept exactly, and not flagged.
    finnish = (
        "Kansainvälinen yhteistyö edellyttää luottamusta, avoimuutta ja\n"
        "säännöllistä vuoropuhelua. Hallitus käsittelee esityksen huomenna,\n"
        "ja eduskunnan valiokunnat antavat lausuntonsa myöhemmin syksyllä.\n"
        "Kaupunginvaltuusto hyväksyi talousarvion yksimielisesti, mutta\n"
        "keskustelu jatkuu edelleen kunnallisvaaleihin saakka."
    )
    path = makedocs.text_pdf(tmp_path / "finnish.pdf", [finnish])
    (page,) = read(path)
    assert page.garbage_score is not None and page.garbage_score >= GARBAGE_SCORE
    assert not page.ocr
    assert page.text.split() == finnish.split()
    assert not page.flagged


def test_naming_the_language_in_the_options_keeps_such_a_page_away_from_ocr(tmp_path):
    finnish = "Kaupunginvaltuusto hyväksyi talousarvion yksimielisesti. " * 8
    path = makedocs.text_pdf(tmp_path / "finnish.pdf", [finnish])
    (page,) = read(path, word_languages=("en", "fi"))
    assert page.garbage_score is not None and page.garbage_score < GARBAGE_SCORE
    assert not page.ocr


# -- OCR confidence ---------------------------------------------------------------------------


def ocr_one(image):
    (page,) = ocr_pages([OcrJob(number=1, image=image, dpi=200)], languages="eng")
    return page


def test_a_clear_scan_reads_with_high_confidence_and_is_not_flagged():
    page = ocr_one(makedocs.text_image(REPORT, size=(2800, 1200)))
    assert page.ocr and not page.flagged
    assert page.ocr_confidence is not None and page.ocr_confidence >= 85


def test_a_badly_degraded_scan_is_flagged_for_low_confidence():
    clean = makedocs.text_image(REPORT, size=(2800, 1200))
    # 64-pixel letters blurred over 8 pixels: Tesseract still finds words, mostly wrong ones
    page = ocr_one(makedocs.degraded(clean, blur=8.0))
    assert page.ocr_confidence is not None and page.ocr_confidence < LOW_CONFIDENCE
    assert page.flagged and "confidence" in page.flag_reason


def test_confidence_falls_as_a_scan_degrades():
    clean = makedocs.text_image(REPORT, size=(2800, 1200))
    jobs = [
        OcrJob(number=i + 1, image=makedocs.degraded(clean, blur=blur), dpi=200)
        for i, blur in enumerate([0, 6.0, 8.0])
    ]
    confidences = [page.ocr_confidence for page in ocr_pages(jobs, languages="eng")]
    assert confidences[0] > confidences[1] > confidences[2], confidences


# -- the document's summary -------------------------------------------------------------------


def test_the_summary_counts_ocr_pages_their_mean_confidence_and_the_flagged_pages():
    pages = [
        Page(1, "text layer", garbage_score=0.02),
        Page(2, "scan", ocr=True, ocr_confidence=90.0),
        Page(3, "poor scan", ocr=True, ocr_confidence=40.0, flagged=True, flag_reason="low"),
        Page(4, "garbled", garbage_score=0.95, flagged=True, flag_reason="garbled"),
    ]
    summary = summarise_quality(pages)
    assert summary.page_count == 4
    assert summary.ocr_pages == 2
    assert summary.ocr_share == 0.5
    assert summary.mean_confidence == 65.0
    assert summary.flagged_pages == (3, 4)
    assert summary.low_quality


def test_a_document_without_ocr_pages_has_no_mean_confidence():
    summary = summarise_quality([Page(1, "a"), Page(2, "b")])
    assert summary.mean_confidence is None
    assert summary.ocr_share == 0.0
    assert not summary.low_quality


def test_the_record_keeps_each_flagged_page_with_its_reason_and_counts_garbled_layers():
    pages = [
        Page(1, "text layer", garbage_score=0.02),
        Page(2, "read again", ocr=True, ocr_confidence=91.0, garbage_score=0.97),
        Page(3, "poor scan", ocr=True, ocr_confidence=40.0, flagged=True, flag_reason="low"),
    ]
    assert quality_record(pages) == {
        "pages": 3,
        "ocr_pages": 2,
        "ocr_share": 0.6667,
        "mean_confidence": 65.5,
        "garbled_layers": 1,
        "flagged": [{"page": 3, "reason": "low", "ocr_confidence": 40.0, "garbage_score": None}],
    }


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(1, 2, False), (2, 3, True), (3, 3, True), (4, 9, True), (10, 12, False)],
)
def test_a_chunk_touches_a_flagged_page_when_its_span_includes_one(start, end, expected):
    assert touches_flagged(start, end, frozenset({3, 7})) is expected
