"""The fusion's arithmetic, as docs/retrieval.md chose it."""

from __future__ import annotations

import pytest

from documents.pipeline.fusion import (
    POSTGRES_ALL_TERMS_FIRST,
    SQLITE_FTS5,
    FusionPlan,
    collapse,
    fuse,
    normalised_text,
    query_terms,
    rrf,
    term_coverage,
    text_hash,
)


def test_query_terms_are_distinct_lower_case_words_without_stop_words_in_query_order():
    assert query_terms("The Blog is a kind of public diary; the BLOG, again!") == [
        "blog",
        "kind",
        "public",
        "diary",
    ]
    assert query_terms("and or not the") == []


def test_the_text_hash_ignores_case_and_whitespace_only():
    assert normalised_text("  Spring\ttides\n FOLLOW ") == "spring tides follow"
    assert text_hash("Spring tides follow") == text_hash("spring  TIDES\nfollow")
    assert text_hash("Spring tides follow") != text_hash("Spring tides follow.")


def test_term_coverage_is_the_share_of_terms_in_the_first_chunks_words():
    assert term_coverage(["tide", "moon", "harbour"], "The tide and the MOON.") == pytest.approx(
        2 / 3
    )
    # words, not substrings: "tides" does not hold "tide"
    assert term_coverage(["tide"], "tides") == 0.0
    assert term_coverage([], "anything") == 0.0
    assert term_coverage(["tide"], None) == 0.0


def test_rrf_weighs_each_side_by_rank():
    ranked = rrf(["a", "b"], ["b", "c"], k=10, w_lex=0.3, w_vec=0.7)
    scores = dict(ranked)
    assert scores["a"] == pytest.approx(0.3 / 11)
    assert scores["b"] == pytest.approx(0.3 / 12 + 0.7 / 11)
    assert scores["c"] == pytest.approx(0.7 / 12)
    assert [i for i, _ in ranked] == ["b", "c", "a"]


def test_rrf_ties_go_to_the_better_rank_then_the_id():
    assert [i for i, _ in rrf(["x", "y"], ["y", "x"], k=60, w_lex=1, w_vec=1)] == ["x", "y"]


def test_a_lexical_first_hit_holding_enough_terms_makes_the_lexical_ranking_the_answer():
    lexical = [("l1", 9.0), ("l2", 5.0)]
    vector = [("v1", 0.9), ("l2", 0.8)]
    result = fuse(
        ["spring", "tides", "moon"],
        lexical,
        vector,
        first_lexical_text="Spring tides follow the moon",
        plan=SQLITE_FTS5,
    )
    assert result.mode == "lexical" and result.coverage == 1.0
    assert [(f.id, f.score, f.found_by) for f in result.ranked] == [
        ("l1", 9.0, "lexical"),
        ("l2", 5.0, "both"),
    ]


def test_below_the_threshold_the_sides_are_fused_by_weighted_rrf():
    lexical = [("l1", 9.0), ("both", 5.0)]
    vector = [("v1", 0.9), ("both", 0.8)]
    terms = ["spring", "tides", "moon", "sailors"]  # the first chunk holds one of four
    result = fuse(terms, lexical, vector, first_lexical_text="spring", plan=SQLITE_FTS5)
    assert result.mode == "fused" and result.coverage == 0.25
    assert [f.id for f in result.ranked] == ["both", "v1", "l1"]
    assert {f.id: f.found_by for f in result.ranked} == {
        "both": "both",
        "v1": "vector",
        "l1": "lexical",
    }
    assert result.ranked[0].score == pytest.approx(0.3 / 12 + 0.7 / 12)


def test_the_thresholds_differ_per_backend_as_chosen_on_the_benchmark():
    terms = ["a1", "b1", "c1", "d1", "e1"]
    first = "a1 b1 c1 d1"  # coverage 0.8
    lexical, vector = [("l", 1.0)], [("v", 1.0)]
    assert fuse(terms, lexical, vector, first_lexical_text=first, plan=SQLITE_FTS5).mode == (
        "lexical"
    )
    assert (
        fuse(terms, lexical, vector, first_lexical_text=first, plan=POSTGRES_ALL_TERMS_FIRST).mode
        == "fused"
    )
    assert FusionPlan(threshold=0.9, k=60, w_lex=0.1, w_vec=0.9) == POSTGRES_ALL_TERMS_FIRST
    assert FusionPlan(threshold=0.5, k=10, w_lex=0.3, w_vec=0.7) == SQLITE_FTS5


def test_with_no_lexical_candidates_the_vector_ranking_is_kept():
    result = fuse(
        ["moon"], [], [("v1", 0.9), ("v2", 0.5)], first_lexical_text=None, plan=SQLITE_FTS5
    )
    assert result.mode == "fused" and [f.id for f in result.ranked] == ["v1", "v2"]


def test_collapse_folds_copies_into_the_first_ranked():
    keys = {"a": "h1", "b": "h2", "c": "h1", "d": "h1", "e": "h3"}
    assert collapse(["a", "b", "c", "d", "e"], keys) == [
        ("a", ["c", "d"]),
        ("b", []),
        ("e", []),
    ]


def test_collapse_folds_nearly_identical_texts_when_asked():
    texts = {
        "a": "the harbour master opens the lock gates at dawn every day",
        "b": "apples ripen in the orchard in autumn and pears a little later",
        "c": "the harbour master opens the lock gates at dusk every day",
        "d": "the harbour master",
    }
    keys = {i: i for i in texts}  # no two identical
    assert collapse(["a", "b", "c", "d"], keys) == [("a", []), ("b", []), ("c", []), ("d", [])]
    # a and c share 6 of their 12 distinct 3-grams: Jaccard 0.5
    assert collapse(["a", "b", "c", "d"], keys, text_of=texts, near=0.5) == [
        ("a", ["c"]),
        ("b", []),
        ("d", []),
    ]
    assert collapse(["a", "b", "c", "d"], keys, text_of=texts, near=0.7) == [
        ("a", []),
        ("b", []),
        ("c", []),
        ("d", []),
    ]
