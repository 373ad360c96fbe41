"""The text fingerprint: the same words make the same fingerprint, a changed word does not."""

from __future__ import annotations

from documents.pipeline.fingerprint import text_fingerprint


def test_layout_case_punctuation_and_ligatures_do_not_change_it():
    a = text_fingerprint(["The ﬁrst page.\nIt ends here.", "Page two: “quoted”"])
    b = text_fingerprint(["the first   page it ends\n\nhere", 'PAGE TWO "quoted"'])
    assert a == b


def test_a_changed_word_or_order_changes_it():
    base = text_fingerprint(["one two three"])
    assert text_fingerprint(["one two four"]) != base
    assert text_fingerprint(["two one three"]) != base


def test_page_breaks_are_not_words():
    assert text_fingerprint(["one two", "three"]) == text_fingerprint(["one", "two three"])


def test_no_words_has_no_fingerprint():
    assert text_fingerprint(["", "  ...  ", "\n"]) == ""
