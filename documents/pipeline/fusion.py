"""Hybrid search's arithmetic: the query's terms, the query-adaptive fusion of a lexical and a
vector ranking, and the key that makes copies of one passage one result.

The method and its numbers were chosen on the retrieval benchmark (docs/retrieval.md, "The
fusion chosen"): when the lexical side's first chunk holds at least ``threshold`` of the
query's terms, the lexical ranking is the answer as it is; otherwise the two rankings are
fused by weighted reciprocal rank fusion. The benchmark imports these functions, so what it
measures is what production runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

_WORD = re.compile(r"\w+")

# How many candidates each side is asked for: the benchmark's depth.
CANDIDATES = 50

LEXICAL = "lexical"
VECTOR = "vector"
BOTH = "both"


def words(text: str) -> list[str]:
    """Lower-cased ``\\w+`` runs: how the benchmark makes queries and judges hits."""
    return _WORD.findall(text.lower())


def query_terms(query: str) -> list[str]:
    """The query's distinct words without English stop words, in query order."""
    return list(dict.fromkeys(w for w in words(query) if w not in STOP_WORDS))


def normalised_text(text: str) -> str:
    """The text with case and runs of whitespace ignored: two chunks with the same normalised
    text are one passage (a document uploaded twice, a merged file)."""
    return " ".join(text.lower().split())


def text_hash(text: str) -> str:
    """SHA-256 (hex) of the normalised text, stored with each chunk so that copies are found
    by an index lookup."""
    return hashlib.sha256(normalised_text(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FusionPlan:
    """When to trust the lexical ranking alone, and how to fuse otherwise."""

    threshold: float  # term coverage of the lexical first hit at or above which lexical wins
    k: int  # RRF's rank offset
    w_lex: float
    w_vec: float


# Chosen per lexical backend: PostgreSQL's all-terms-first ranking already puts chunks that
# hold every term first, so its first hit is the answer only when nearly every term is in it.
SQLITE_FTS5 = FusionPlan(threshold=0.5, k=10, w_lex=0.3, w_vec=0.7)
POSTGRES_ALL_TERMS_FIRST = FusionPlan(threshold=0.9, k=60, w_lex=0.1, w_vec=0.9)


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    found_by: str  # LEXICAL, VECTOR or BOTH: which sides returned it among their candidates


@dataclass(frozen=True)
class Fusion:
    ranked: list[Fused]
    # "lexical" when the lexical ranking was used as it is, else "fused"
    mode: str
    coverage: float


def term_coverage(terms: Sequence[str], first_text: str | None) -> float:
    """Share of the terms present among the words of the lexical side's first chunk."""
    if not terms or first_text is None:
        return 0.0
    held = set(words(first_text))
    return sum(t in held for t in terms) / len(terms)


def rrf(
    lexical: Sequence[str], vector: Sequence[str], *, k: int, w_lex: float, w_vec: float
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion, ``w_lex / (k + rank) + w_vec / (k + rank)`` (ranks from
    1), best first; ties go to the better of the two ranks, then to the id, so that the order
    is reproducible."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for weight, ranking in ((w_lex, lexical), (w_vec, vector)):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
            best[chunk_id] = min(best.get(chunk_id, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))


def fuse(
    terms: Sequence[str],
    lexical: Sequence[tuple[str, float]],
    vector: Sequence[tuple[str, float]],
    *,
    first_lexical_text: str | None,
    plan: FusionPlan,
) -> Fusion:
    """Both sides' candidates (id, score; best first) as one ranking.

    ``first_lexical_text`` is the text of ``lexical[0]``. In lexical mode the scores are the
    lexical side's own; in fused mode they are RRF scores. Either way higher is better, and
    they compare only within one answer."""
    lexical_ids = [i for i, _ in lexical]
    vector_ids = [i for i, _ in vector]
    in_lexical, in_vector = set(lexical_ids), set(vector_ids)

    def found_by(chunk_id: str) -> str:
        if chunk_id in in_lexical and chunk_id in in_vector:
            return BOTH
        return LEXICAL if chunk_id in in_lexical else VECTOR

    coverage = term_coverage(terms, first_lexical_text if lexical else None)
    if lexical and coverage >= plan.threshold:
        return Fusion(
            ranked=[Fused(i, float(s), found_by(i)) for i, s in lexical],
            mode="lexical",
            coverage=coverage,
        )
    fused = rrf(lexical_ids, vector_ids, k=plan.k, w_lex=plan.w_lex, w_vec=plan.w_vec)
    return Fusion(
        ranked=[Fused(i, s, found_by(i)) for i, s in fused], mode="fused", coverage=coverage
    )


def word_trigrams(text: str) -> frozenset[tuple[str, str, str]]:
    """The text's runs of three words, as the benchmark compares near-identical chunks."""
    ws = words(text)
    return frozenset(zip(ws, ws[1:], ws[2:], strict=False))


def collapse(
    ranked: Sequence[str],
    key_of: dict[str, str],
    *,
    text_of: dict[str, str] | None = None,
    near: float | None = None,
) -> list[tuple[str, list[str]]]:
    """The ranking with every id folded into one ranked above it whose key (a text hash) it
    repeats, or, with ``near`` and ``text_of``, whose word 3-grams it shares at a Jaccard
    similarity of at least ``near`` (a revised copy of a file, a chunk cut a few words
    differently): ``[(kept id, [folded ids in rank order])]``."""
    kept: dict[str, tuple[str, list[str]]] = {}
    grams: list[tuple[frozenset, str]] = []  # the kept ids' 3-grams, in rank order
    for chunk_id in ranked:
        key = key_of.get(chunk_id, chunk_id)
        if key in kept:
            kept[key][1].append(chunk_id)
            continue
        if near is not None and text_of is not None:
            mine = word_trigrams(text_of.get(chunk_id, ""))
            similar = next((k for theirs, k in grams if _jaccard(mine, theirs) >= near), None)
            if similar is not None:
                kept[similar][1].append(chunk_id)
                continue
            grams.append((mine, key))
        kept[key] = (chunk_id, [])
    return list(kept.values())


def _jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0
