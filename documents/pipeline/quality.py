"""How far a page's text can be trusted: garbage scores for PDF text layers, the choice
between a suspect text layer and its OCR, and a document's quality summary.

A text layer is scored 0 (clean) to 1 (garbage) on four signals; the score is the strongest:

- glyph names instead of letters (``/g123``, ``gid00042``, ``(cid:12)``): what a converter
  writes when a font has no Unicode mapping;
- characters no text is made of: private-use (a symbol font's glyphs, or a ToUnicode map
  pointing into the private area), U+FFFD (a failed decode), C1 controls;
- mojibake (UTF-8 read as Windows-1252, ``Ã©`` for ``é``), found and undone with ftfy, the
  library made for it: the share of the page's non-ASCII characters that a repair removes;
- words that are words in none of the page's likely languages: letters a broken ToUnicode
  map has shifted or shuffled ("Uif rvbsufsmz sfqpsu") read as text but not as any language.
  Measured against wordfreq's lists (the most frequent words of each language, shipped in the
  package, no download) for the language that knows most of the page's words; only Latin
  script words count, so Chinese, Thai or Arabic pages are judged on the other signals.

The thresholds are measured on every page of the corpus and on generated bad inputs
(bench/bench_quality.py; figures and reasoning in docs/quality-and-tables.md).

A page whose layer scores as garbage is read with OCR too, and ``choose_page`` keeps the
better of the two: a layer that OCR confirms (a page in a language we have no list for, or
lorem ipsum) is kept as it is and not flagged, so a false alarm costs OCR time, not text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ftfy
import ftfy.badness

from .types import ExtractOptions, Page

# A text-layer page scoring at least this is read with OCR as well. Clean corpus pages score
# at most ~0.75 (lorem ipsum: Latin words are in none of the lists) and the generated broken
# pages at least ~0.95; see docs/quality-and-tables.md.
GARBAGE_SCORE = 0.88
# An OCR page whose mean word confidence (Tesseract, 0-100) is below this is flagged. The
# corpus scans read at 75-96; the degraded scans that come out as nonsense read below 60.
LOW_CONFIDENCE = 65.0
# Fewer Latin words than this and the share of non-words says nothing (a title page, a
# table of numbers), so that signal is left out.
MIN_WORDS = 20
# Only words of at least this many letters count: shifted or shuffled letters make short
# strings that are words somewhere ("pg", "jo", "boe" are "of", "in", "and" shifted by one;
# 2-letter words made a broken page look 20 % known), while long garbage almost never is.
# Measured on the corpus: with 2 letters the clean and broken pages' scores overlapped
# (0.74 against 0.43), with 4 they part (0.84 against 0.91).
_MIN_LETTERS = 4
# A mojibake share needs this many non-ASCII characters to mean anything.
MIN_NON_ASCII = 8
# Words per language taken from wordfreq's frequency-ordered list: enough to cover running
# text well while keeping each language's set at a couple of MB (docs/quality-and-tables.md).
WORDS_PER_LANGUAGE = 20_000
# The languages a Latin-script page is checked against when the options name none.
DEFAULT_LANGUAGES: tuple[str, ...] = ExtractOptions.word_languages
# OCR must beat the text layer's score by this much to replace it, and share less than this
# part of its words with the layer (more means the layer says what the page shows).
_BETTER_BY = 0.2
_AGREEMENT = 0.5

# Latin letters (ASCII, Latin-1 without × and ÷, Latin Extended-A/B and Additional): the
# standard re module with explicit ranges is faster than \p{Latin} in ``regex``.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_WORD = re.compile(f"[{_LATIN}]+(?:'[{_LATIN}]+)*")
_GLYPH_NAMES = re.compile(r"/(?:g|G|gid|glyph|cid|uni)[0-9A-Fa-f]+|gid\d{3,}|\(cid:\d+\)")
# private-use areas (BMP and planes 15-16), U+FFFD, C1 controls
_ODD_CHARS = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff\ufffd\x80-\x9f]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NON_ASCII_RUN = re.compile("[^\x00-\x7f]{2,}")


@dataclass(frozen=True)
class TextScore:
    """The garbage score of a text, the signal that gave it, and the languages it was
    judged against (so OCR text can be judged the same way)."""

    score: float
    reason: str
    languages: tuple[str, ...] = DEFAULT_LANGUAGES

    @property
    def garbage(self) -> bool:
        return self.score >= GARBAGE_SCORE


def score_text(text: str, languages: Sequence[str] = DEFAULT_LANGUAGES) -> TextScore:
    """Score ``text`` 0 (clean) to 1 (garbage); ``reason`` names the strongest signal."""
    languages = tuple(languages)
    visible = len("".join(text.split()))
    if not visible:
        return TextScore(0.0, "", languages)
    signals = {
        "glyph names": sum(len(m) for m in _GLYPH_NAMES.findall(text)) / visible,
        "private-use or replacement characters": len(_ODD_CHARS.findall(text)) / visible,
        "mojibake": _mojibake_share(text),
        "words in no known language": _non_word_share(text, languages),
    }
    reason, score = max(signals.items(), key=lambda item: item[1])
    score = min(1.0, score)
    return TextScore(round(score, 4), reason if score > 0 else "", languages)


def _mojibake_share(text: str) -> float:
    # Mojibake is made of runs of non-ASCII characters ("Ã©", "â€™"), so ftfy's test (one
    # big regex, as costly as reading the page) looks at those runs alone: on an English
    # page that is next to nothing. The repair is only tried on pages the test finds broken.
    runs = _NON_ASCII_RUN.findall(text)
    before = sum(map(len, runs))
    if before < MIN_NON_ASCII or not ftfy.badness.is_bad(" ".join(runs)):
        return 0.0
    after = len(_NON_ASCII.findall(ftfy.fix_encoding(text)))
    # "Ã©" -> "é" halves the non-ASCII count, "â€™" -> "’" cuts it to a third: a page whose
    # every accent is mojibake scores 0.5-0.67, so the share is doubled to read 1 there.
    return max(0.0, 2 * (before - after) / before)


def _non_word_share(text: str, languages: tuple[str, ...]) -> float:
    words = [w for w in _WORD.findall(text.lower().replace("’", "'")) if len(w) >= _MIN_LETTERS]
    if len(words) < MIN_WORDS or not languages:
        return 0.0
    known = sum(map(_vocabulary(languages).__contains__, words))
    return 1 - known / len(words)


@functools.cache
def _vocabulary(languages: tuple[str, ...]) -> frozenset[str]:
    """The words of all ``languages`` in one set. One lookup a word instead of one per
    language: checking each language apart and keeping the best (the page's language)
    cost as much as reading the page and scored the corpus pages about the same
    (docs/quality-and-tables.md)."""
    import wordfreq

    words = frozenset().union(
        *(wordfreq.top_n_list(lang, WORDS_PER_LANGUAGE, wordlist="small") for lang in languages)
    )
    # wordfreq keeps every list it has read in an unbounded cache, which the set above
    # makes redundant.
    wordfreq.get_frequency_list.cache_clear()
    return words


def word_agreement(ocr_text: str, layer_text: str) -> float:
    """The share of OCR's distinct words that the text layer also has."""
    ocr_words = {w for w in _WORD.findall(ocr_text.lower()) if len(w) > 1}
    if not ocr_words:
        return 0.0
    layer_words = {w for w in _WORD.findall(layer_text.lower()) if len(w) > 1}
    return len(ocr_words & layer_words) / len(ocr_words)


def ocr_page(
    number: int, text: str, confidence: float | None, *, layer: str = "", layer_score=None
) -> Page:
    """The page to keep once OCR has read it: the OCR text, or the text layer it was
    meant to replace.

    ``layer_score`` is set when the layer was sent to OCR for scoring as garbage: OCR
    replaces it when it reads clearly better and does not merely confirm it. Otherwise
    the layer was too short, and is kept when OCR found no more (a caption beside a
    picture without words: what the PDF says exactly beats a guess)."""
    ocr_visible = len("".join(text.split()))
    if layer_score is not None and layer_score.garbage:
        confirmed = word_agreement(text, layer) >= _AGREEMENT
        ocr_score = score_text(text, layer_score.languages)
        if ocr_visible and not confirmed and ocr_score.score <= layer_score.score - _BETTER_BY:
            return _ocr(number, text, confidence, layer_score.score)
        if confirmed:
            return Page(number=number, text=layer, garbage_score=layer_score.score)
        return Page(
            number=number,
            text=layer,
            garbage_score=layer_score.score,
            flagged=True,
            flag_reason=f"text layer looks garbled ({layer_score.reason}) and OCR read no better",
        )
    if layer and ocr_visible <= len("".join(layer.split())):
        return Page(number=number, text=layer)
    return _ocr(number, text, confidence, None)


def _ocr(number: int, text: str, confidence: float | None, layer_score: float | None) -> Page:
    low = confidence is not None and confidence < LOW_CONFIDENCE and bool(text.strip())
    return Page(
        number=number,
        text=text,
        ocr=True,
        ocr_confidence=confidence,
        garbage_score=layer_score,
        flagged=low,
        flag_reason=f"low OCR confidence ({confidence:.0f} of 100)" if low else "",
    )


@dataclass(frozen=True)
class QualitySummary:
    """A document's quality at a glance: the share of its pages read with OCR, their mean
    word confidence (None without OCR pages), and the pages flagged for a person to check."""

    page_count: int
    ocr_pages: int
    ocr_share: float
    mean_confidence: float | None
    flagged_pages: tuple[int, ...]

    @property
    def low_quality(self) -> bool:
        return bool(self.flagged_pages)


def summarise_quality(pages: Iterable[Page]) -> QualitySummary:
    count = ocr = 0
    confidences: list[float] = []
    flagged: list[int] = []
    for page in pages:
        count += 1
        ocr += page.ocr
        if page.ocr_confidence is not None:
            confidences.append(page.ocr_confidence)
        if page.flagged:
            flagged.append(page.number)
    return QualitySummary(
        page_count=count,
        ocr_pages=ocr,
        ocr_share=round(ocr / count, 4) if count else 0.0,
        mean_confidence=round(sum(confidences) / len(confidences), 2) if confidences else None,
        flagged_pages=tuple(flagged),
    )


def quality_record(pages: Sequence[Page]) -> dict:
    """What the document keeps of its pages' signals (JSON): the summary, how many text
    layers scored as garbage (each then read with OCR too), and each flagged page with
    the reason a person reads."""
    summary = summarise_quality(pages)
    return {
        "pages": summary.page_count,
        "ocr_pages": summary.ocr_pages,
        "ocr_share": summary.ocr_share,
        "mean_confidence": summary.mean_confidence,
        "garbled_layers": sum(
            1 for p in pages if p.garbage_score is not None and p.garbage_score >= GARBAGE_SCORE
        ),
        "flagged": [
            {
                "page": p.number,
                "reason": p.flag_reason,
                "ocr_confidence": p.ocr_confidence,
                "garbage_score": p.garbage_score,
            }
            for p in pages
            if p.flagged
        ],
    }


def touches_flagged(page_start: int, page_end: int, flagged: frozenset[int]) -> bool:
    """Whether a chunk spanning these pages (inclusive) holds text of a flagged page."""
    return any(page_start <= page <= page_end for page in flagged)
