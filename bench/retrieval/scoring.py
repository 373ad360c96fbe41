"""What counts as finding the passage, and the figures reported for a ranked list.

A hit is a returned chunk that holds at least 60% of the target sentence's words in runs of
three: a word of the sentence counts when some word 3-gram of the sentence that contains it
also occurs, as three consecutive words, in the chunk. The test looks only at text, so it
judges any chunker's chunks alike (ours, LlamaIndex's, a re-upload's copy of the passage), and
a sentence cut between two overlapping chunks is found in either when most of it is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from documents.pipeline.fusion import word_trigrams as trigram_set  # the search's own 3-grams
from retrieval.corpus import words

HIT_SHARE = 0.6
KS = (1, 5)


def held_share(sentence_words: Sequence[str], chunk_trigrams: frozenset) -> float:
    """Share of the sentence's words that the chunk holds in runs of three."""
    held = set()
    for i in range(len(sentence_words) - 2):
        if tuple(sentence_words[i : i + 3]) in chunk_trigrams:
            held.update((i, i + 1, i + 2))
    return len(held) / len(sentence_words) if sentence_words else 0.0


class HitJudge:
    """Judges chunks by id against a query's sentence, caching each chunk's 3-grams."""

    def __init__(self, chunk_texts: dict[str, str]):
        self._texts = chunk_texts
        self._trigrams: dict[str, frozenset] = {}

    def trigrams(self, chunk_id: str) -> frozenset:
        found = self._trigrams.get(chunk_id)
        if found is None:
            found = self._trigrams[chunk_id] = trigram_set(self._texts[chunk_id])
        return found

    def hits(self, sentence: str, ranked_ids: Iterable[str]) -> list[bool]:
        ws = words(sentence)
        return [held_share(ws, self.trigrams(i)) >= HIT_SHARE for i in ranked_ids]


def hits_of_texts(sentence: str, ranked_texts: Iterable[str]) -> list[bool]:
    """The same test for chunks given as text (the LlamaIndex reference returns texts)."""
    ws = words(sentence)
    return [held_share(ws, trigram_set(t)) >= HIT_SHARE for t in ranked_texts]


@dataclass(frozen=True)
class Figures:
    recall_at_1: float
    recall_at_5: float
    mrr_at_5: float
    queries: int

    def as_dict(self) -> dict:
        return {
            "recall@1": round(self.recall_at_1, 4),
            "recall@5": round(self.recall_at_5, 4),
            "mrr@5": round(self.mrr_at_5, 4),
            "queries": self.queries,
        }


def first_hit_rank(hits: Sequence[bool]) -> int | None:
    """1-based rank of the first hit, or None."""
    for rank, hit in enumerate(hits, start=1):
        if hit:
            return rank
    return None


def figures(ranks: Sequence[int | None]) -> Figures:
    """recall@1, recall@5 and MRR@5 from each query's first-hit rank."""
    n = len(ranks)
    if n == 0:
        return Figures(0.0, 0.0, 0.0, 0)
    return Figures(
        recall_at_1=sum(r == 1 for r in ranks if r) / n,
        recall_at_5=sum(r <= 5 for r in ranks if r) / n,
        mrr_at_5=sum(1 / r for r in ranks if r and r <= 5) / n,
        queries=n,
    )
