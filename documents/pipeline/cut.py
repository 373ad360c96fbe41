"""Where to cut a sentence that is over the embedder's token limit on its own (chunk.py's
last resort): after the last token that fits, at a word boundary whenever the piece still
fits there, so that a word which fits on its own is never split."""

from __future__ import annotations

from collections.abc import Callable


def last_space(text: str, lo: int, hi: int) -> int:
    """Index of the last whitespace character in text[lo:hi], or -1."""
    for i in range(hi - 1, lo - 1, -1):
        if text[i].isspace():
            return i
    return -1


def _prefer_word_boundary(
    text: str, pos: int, end: int, n: int, count: Callable[[str], int], max_tokens: int
) -> tuple[int, int]:
    """Move a checked cut that falls inside a word to that word's edge when the result still
    fits: back to the space before it, or (when it is the piece's first word) to its end, so
    that a word which fits on its own is never split. Word-piece counts are not monotonic
    ("unbelievab" can take more tokens than "unbelievable"), hence the re-counts."""
    if end >= len(text) or text[end].isspace() or text[end - 1].isspace():
        return end, n
    space = last_space(text, pos + 1, end)
    if space > pos:
        m = count(text[pos:space])
        return (space, m) if m <= max_tokens else (end, n)
    # Look for the word's end only a few piece-lengths ahead: a longer word cannot fit, and
    # scanning a megabyte-long "word" once per piece would be quadratic.
    word_end = end
    horizon = min(len(text), end + 4 * (end - pos) + 16)
    while word_end < horizon and not text[word_end].isspace():
        word_end += 1
    if word_end < horizon or word_end == len(text):
        m = count(text[pos:word_end])
        if m <= max_tokens:
            return word_end, m
    return end, n


def cut_by_search(
    text: str, pos: int, count: Callable[[str], int], max_tokens: int
) -> tuple[int, int]:
    """A long end with count(text[pos:end]) <= max_tokens, found by galloping + bisection so
    that each count covers about one piece, not the rest of the sentence."""
    good, good_n = pos + 1, count(text[pos : pos + 1])
    if good_n > max_tokens:
        raise ValueError(f"one character {text[pos]!r} is over max_tokens={max_tokens}")
    step = max(64, 4 * max_tokens)
    bad = None
    while bad is None:
        hi = min(len(text), pos + step)
        n = count(text[pos:hi])
        if n <= max_tokens:
            good, good_n = hi, n
            if hi == len(text):
                return good, good_n
            step *= 2
        else:
            bad = hi
    while bad - good > 1:
        mid = (good + bad) // 2
        n = count(text[pos:mid])
        if n <= max_tokens:
            good, good_n = mid, n
        else:
            bad = mid
    return _prefer_word_boundary(text, pos, good, good_n, count, max_tokens)


def cut_with_offsets(
    text: str,
    pos: int,
    offsets: list[tuple[int, int]],
    count: Callable[[str], int],
    max_tokens: int,
    overhead: int,
) -> tuple[int, int]:
    """Cut after the last token that fits, using the counter's character offsets; the piece is
    re-counted because a word piece re-tokenised on its own can come out differently."""
    first = _first_token_at(offsets, pos)
    budget = max_tokens - overhead
    while budget > 0:
        last = min(first + budget, len(offsets)) - 1
        if last == len(offsets) - 1:
            end = len(text)
        else:
            # End at the last whole word in reach when there is one, so the piece needs
            # one count rather than one here and more in _prefer_word_boundary.
            end = _last_word_end(text, offsets, first, last)
            if end <= pos:
                end = max(offsets[last][1], pos + 1)
        n = count(text[pos:end])
        if n <= max_tokens:
            return _prefer_word_boundary(text, pos, end, n, count, max_tokens)
        budget -= max(1, n - max_tokens)
    return cut_by_search(text, pos, count, max_tokens)


def _last_word_end(text: str, offsets: list[tuple[int, int]], first: int, last: int) -> int:
    """The end of the last token in ``offsets[first:last + 1]`` that whitespace follows, or -1."""
    for j in range(last, first - 1, -1):
        end = offsets[j][1]
        if end < len(text) and text[end].isspace():
            return end
    return -1


def _first_token_at(offsets: list[tuple[int, int]], pos: int) -> int:
    lo, hi = 0, len(offsets)
    while lo < hi:  # first token whose end is past pos
        mid = (lo + hi) // 2
        if offsets[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, max(len(offsets) - 1, 0))
