"""Fusing a lexical and a vector ranking, and collapsing copies of one passage.

A ``Hybrid`` asks both sides for ``depth`` candidates and hands the two scored lists to a
fusion method; every method answers ``fuse(query, lexical, vector) -> ranked ids``:

* ``RRF``: reciprocal rank fusion, ``w_lex / (k + rank_lex) + w_vec / (k + rank_vec)``; plain
  RRF is both weights 1 and k = 60.
* ``Convex``: each side's scores min-max normalised over its own candidates (a candidate the
  other side did not return gets 0 there), then ``alpha * lexical + (1 - alpha) * vector``.
* ``Adaptive``: one of the two above with the lexical weight chosen per query from a signal
  that the lexical side has (or has not) found the query's words; see ``SIGNALS``.

``Collapsed`` wraps any retriever and drops a result whose text is identical, or nearly so, to
one ranked above it, so that copies of a re-uploaded document do not fill the top k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from documents.pipeline.fusion import normalised_text
from documents.pipeline.fusion import rrf as production_rrf
from retrieval.corpus import words
from retrieval.retrievers import ScoredRetriever, query_terms
from retrieval.scoring import trigram_set

Scored = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class RRF:
    w_lex: float = 1.0
    w_vec: float = 1.0
    k: int = 60

    @property
    def kind(self) -> str:
        return f"RRF k={self.k}"

    @property
    def label(self) -> str:
        return f"RRF k={self.k} w_lex={self.w_lex:g} w_vec={self.w_vec:g}"

    def for_texts(self, chunk_texts: dict[str, str]) -> RRF:
        return self

    def fuse_weighted(self, lexical: Scored, vector: Scored, w_lex: float, w_vec: float):
        # production's arithmetic (documents/pipeline/fusion.py), ties broken the same way
        fused = production_rrf(
            [i for i, _ in lexical], [i for i, _ in vector], k=self.k, w_lex=w_lex, w_vec=w_vec
        )
        return [chunk_id for chunk_id, _ in fused]

    def fuse(self, query: str, lexical: Scored, vector: Scored) -> list[str]:
        return self.fuse_weighted(lexical, vector, self.w_lex, self.w_vec)


@dataclass(frozen=True)
class Convex:
    alpha: float = 0.5  # weight of the lexical side

    kind = "convex min-max"

    @property
    def label(self) -> str:
        return f"convex min-max alpha_lex={self.alpha:g}"

    def for_texts(self, chunk_texts: dict[str, str]) -> Convex:
        return self

    def fuse_weighted(self, lexical: Scored, vector: Scored, w_lex: float, w_vec: float):
        scores: dict[str, float] = {}
        for weight, ranking in ((w_lex, lexical), (w_vec, vector)):
            for chunk_id, value in _min_max(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * value
        return _ranked(scores, lexical, vector)

    def fuse(self, query: str, lexical: Scored, vector: Scored) -> list[str]:
        return self.fuse_weighted(lexical, vector, self.alpha, 1.0 - self.alpha)


def _min_max(ranking: Scored) -> list[tuple[str, float]]:
    if not ranking:
        return []
    values = [v for _, v in ranking]
    low, high = min(values), max(values)
    if high == low:
        return [(chunk_id, 1.0) for chunk_id, _ in ranking]
    return [(chunk_id, (v - low) / (high - low)) for chunk_id, v in ranking]


def _ranked(scores: dict[str, float], lexical: Scored, vector: Scored) -> list[str]:
    # ties broken by the better of the two ranks, then by id, so results are reproducible
    best = {}
    for ranking in (lexical, vector):
        for rank, (chunk_id, _) in enumerate(ranking):
            best[chunk_id] = min(best.get(chunk_id, rank), rank)
    return sorted(scores, key=lambda c: (-scores[c], best[c], c))


# --- query-adaptive weighting ----------------------------------------------------------------


class Signals:
    """Per-query evidence about the lexical side, from what the two sides returned and the
    chunks' text (which a production search has at hand too)."""

    def __init__(self, chunk_texts: dict[str, str]):
        self._texts = chunk_texts
        self._words: dict[str, frozenset[str]] = {}

    def _chunk_words(self, chunk_id: str) -> frozenset[str]:
        found = self._words.get(chunk_id)
        if found is None:
            found = self._words[chunk_id] = frozenset(words(self._texts[chunk_id]))
        return found

    def term_coverage(self, query: str, lexical: Scored, vector: Scored) -> float:
        """Share of the query's terms that the lexical side's first chunk contains: close to 1
        when the query's words are the passage's words, low when only a few stray words
        matched."""
        # production's definition (documents/pipeline/fusion.py term_coverage), over the
        # chunk's words cached here
        terms = query_terms(query)
        if not terms or not lexical:
            return 0.0
        held = self._chunk_words(lexical[0][0])
        return sum(t in held for t in terms) / len(terms)

    @staticmethod
    def score_margin(query: str, lexical: Scored, vector: Scored) -> float:
        """(first - second) / first of the lexical scores: how far ahead its best chunk is."""
        if len(lexical) < 2 or lexical[0][1] <= 0:
            return 1.0 if lexical else 0.0
        return (lexical[0][1] - lexical[1][1]) / lexical[0][1]

    @staticmethod
    def short_query(query: str, lexical: Scored, vector: Scored) -> float:
        """1 for a query of at most six terms (a search-box query), else 0."""
        return 1.0 if len(query_terms(query)) <= 6 else 0.0


@dataclass(frozen=True)
class Adaptive:
    """Lexical weight ``high`` when the signal named ``signal_name`` (a method of ``Signals``)
    is at least ``threshold``, else ``low``; the vector side gets 1 minus it (RRF weights and
    convex alpha alike). ``signals`` holds the chunk texts the signal reads; ``for_texts``
    gives the same method over another tenant's chunks."""

    base: RRF | Convex
    signal_name: str
    threshold: float
    high: float
    low: float
    signals: Signals = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        return (
            f"adaptive {self.base.kind}: {self.signal_name} >= {self.threshold:g} ? "
            f"w_lex {self.high:g} : w_lex {self.low:g}"
        )

    def for_texts(self, chunk_texts: dict[str, str]) -> Adaptive:
        return replace(self, signals=Signals(chunk_texts))

    def fuse(self, query: str, lexical: Scored, vector: Scored) -> list[str]:
        signal = getattr(self.signals, self.signal_name)(query, lexical, vector)
        w_lex = self.high if signal >= self.threshold else self.low
        return self.base.fuse_weighted(lexical, vector, w_lex, 1.0 - w_lex)


# --- retrievers built from the above ---------------------------------------------------------


class Hybrid:
    """A lexical and a vector retriever fused by ``method``."""

    def __init__(
        self, lexical: ScoredRetriever, vector: ScoredRetriever, method, *, depth: int = 50
    ):
        self.lexical, self.vector, self.method, self.depth = lexical, vector, method, depth
        self.name = f"hybrid ({method.label}) over {lexical.name}"

    def search(self, query: str, k: int) -> list[str]:
        lexical = self.lexical.search_scored(query, self.depth)
        vector = self.vector.search_scored(query, self.depth)
        return self.method.fuse(query, lexical, vector)[:k]


class Collapsed:
    """Drops a result that repeats one ranked above it: the same text once whitespace and case
    are ignored, or (``near`` set) a Jaccard similarity of their word 3-gram sets of at least
    ``near``. Asks the inner retriever for ``depth`` results to fill k after dropping."""

    def __init__(self, inner, chunk_texts: dict[str, str], *, near: float | None, depth: int = 50):
        self.inner, self.near, self.depth = inner, near, depth
        self._texts = chunk_texts
        self._keys: dict[str, str] = {}
        self._grams: dict[str, frozenset] = {}
        how = "identical" if near is None else f"near-identical, 3-gram Jaccard >= {near:g}"
        self.name = f"{inner.name} + collapse {how}"

    def _key(self, chunk_id: str) -> str:
        key = self._keys.get(chunk_id)
        if key is None:
            key = self._keys[chunk_id] = normalised_text(self._texts[chunk_id])
        return key

    def _trigrams(self, chunk_id: str) -> frozenset:
        grams = self._grams.get(chunk_id)
        if grams is None:
            grams = self._grams[chunk_id] = trigram_set(self._texts[chunk_id])
        return grams

    def _repeats(self, chunk_id: str, kept: list[str], keys: set[str]) -> bool:
        if self._key(chunk_id) in keys:
            return True
        if self.near is None:
            return False
        grams = self._trigrams(chunk_id)
        for other in kept:
            theirs = self._trigrams(other)
            union = len(grams | theirs)
            if union and len(grams & theirs) / union >= self.near:
                return True
        return False

    def search(self, query: str, k: int) -> list[str]:
        kept: list[str] = []
        keys: set[str] = set()
        for chunk_id in self.inner.search(query, max(k, self.depth)):
            if not self._repeats(chunk_id, kept, keys):
                kept.append(chunk_id)
                keys.add(self._key(chunk_id))
                if len(kept) == k:
                    break
        return kept
