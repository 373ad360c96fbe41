"""Split a document's pages into chunks that fit the embedder's input limit.

Sentences come from spaCy's blank multi-language pipeline with the rule-based sentencizer
(no model to download; CJK, Thai and Arabic text goes through without errors). Sentences are
packed into chunks whose token count, measured with the embedder's own counter on the text
actually sent, never exceeds ``max_tokens``. A sentence that is over the limit on its own is
cut into pieces that fit, at word boundaries where a word fits, else inside the word.

Offsets: ``char_start``/``char_end`` index the document text (``PAGE_SEPARATOR.join`` of every
page's text, empty pages included). ``chunk.text`` equals that slice after whitespace
normalisation: ``chunk.text.split() == doc_text[char_start:char_end].split()``. Inside a
sentence the original whitespace is kept; between two sentences it is shortened to ``" "``,
``"\\n"`` or ``"\\n\\n"`` so a page of blank lines does not travel into the embedder.

Memory and time: the pages are held (run.py holds them anyway), plus the sentences of the chunk
being built and a batch of up to ``_COUNT_BATCH`` sentences being counted. Each sentence is
counted once on its own, a batch at a time when the counter has ``count_tokens_batch``. Chunks
are first packed on the sums of their sentences' counts and then checked in batches; only when
a check fails is the document packed again, re-counting the joined chunk when the running
estimate reaches the limit and once before a chunk is emitted. Either way the work is linear
in the text for any chunk size.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from documents.pipeline.types import PAGE_SEPARATOR, Page, TextChunk, TokenCounter

# spaCy refuses texts over 1,000,000 characters and its Doc costs ~several hundred bytes per
# token, so a huge single-page TXT is fed to it in blocks of about this many characters.
_BLOCK_CHARS = 100_000
# Sentence-final marks of scripts written without spaces: a break right after one of these is
# real even though no whitespace follows it. Any other break with no whitespace (spaCy splitting
# "end.Next") is undone, so a whitespace-delimited word never straddles two sentences.
_NO_SPACE_SENTENCE_ENDS = frozenset("。！？｡．")
# Sentences are counted this many at a time when the counter can count a batch in one call
# (the MiniLM tokenizer then spreads the work over the cores, outside the GIL: 6,420 sentences
# of the end-to-end bench set in 0.19 s instead of 0.39 s one call at a time).
_COUNT_BATCH = 256


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) with its place in the document."""

    text: str
    start: int  # offset of text[0] in the document text
    end: int
    page: int
    sep: str  # normalised whitespace joining it to the previous unit inside a chunk
    count: int = 0  # tokens of ``text`` alone, special tokens included


def split_text(
    pages: Iterable[Page], *, counter: TokenCounter, max_tokens: int, overlap: int
) -> list[TextChunk]:
    """Return the chunks of ``pages`` in document order."""
    if max_tokens < 1 or overlap < 0 or overlap >= max_tokens:
        raise ValueError(f"need 0 <= overlap < max_tokens, got {overlap=} {max_tokens=}")
    count = counter.count_tokens
    # tokens the counter adds to every text ([CLS]/[SEP] for BERT tokenizers, 0 for words)
    overhead = count("")
    if max_tokens <= overhead:
        raise ValueError(f"max_tokens={max_tokens} leaves no room after {overhead} special tokens")
    pages = pages if isinstance(pages, list) else list(pages)  # read twice on a fallback

    def pack(trust_sums: bool) -> Iterator[TextChunk]:
        units = _counted_units(_sentences(pages), counter, max_tokens, overhead)
        return _pack(units, count, max_tokens, overlap, overhead, trust_sums=trust_sums)

    # Pack trusting that a chunk has the tokens of its sentences added up (true of BERT-style
    # tokenizers, which split at whitespace before anything else), then check the chunks a
    # batch call at a time: 1,426 chunks of the end-to-end bench set in ~0.1 s, against
    # ~0.3 s counted one by one. Any difference (a counter that merges across sentences, or
    # the Gemini estimate) and the document is packed again, measuring each joined chunk.
    chunks = list(pack(trust_sums=True))
    if _counts_hold(chunks, _batch_counter(counter)):
        return chunks
    return list(pack(trust_sums=False))


def _counts_hold(chunks: list[TextChunk], count_batch: Callable[[list[str]], list[int]]) -> bool:
    # In batches: the tokenizer's result objects for a whole book of chunks at once cost
    # tens of MB (bench/bench_memory.py, to_chunks).
    for start in range(0, len(chunks), _COUNT_BATCH):
        batch = chunks[start : start + _COUNT_BATCH]
        if [c.token_count for c in batch] != count_batch([c.text for c in batch]):
            return False
    return True


@functools.cache
def _sentencizer():
    # Built once per process: spacy.blank is ~0.3 s. Imported here so importing this module
    # stays cheap for processes that never chunk.
    import spacy

    nlp = spacy.blank("xx")
    # Once any special case has matched, spaCy's tokenizer stops caching the tokens of
    # every later word of that text (spacy/tokenizer.pyx, ``has_special``), and the base
    # exceptions include "\n", " ", "\t" and "\xa0", which match on nearly every page.
    # Those four only say that the whitespace is one token, which it is without them: the
    # tokens and sentences come out the same (test_chunk.py checks it) and tokenizing the
    # end-to-end bench set takes 0.38 s instead of 0.65 s.
    nlp.tokenizer.rules = {
        text: tokens for text, tokens in nlp.tokenizer.rules.items() if text.strip()
    }
    nlp.add_pipe("sentencizer")
    return nlp


def _sentences(pages: Iterable[Page]) -> Iterator[_Unit]:
    """Yield every non-blank sentence of the document, stripped, with document offsets."""
    nlp = _sentencizer()
    page_offset = 0
    pending: _Unit | None = None  # held back until we know whether the next one glues to it
    for page in pages:
        text = page.text
        sep = PAGE_SEPARATOR
        prev_end = None  # end of the previous sentence, in page coordinates
        for block_start, block in _blocks(text):
            doc = nlp(block)
            for sent in doc.sents:
                raw = block[sent.start_char : sent.end_char]
                stripped = raw.strip()
                if not stripped:
                    continue
                start = block_start + sent.start_char + (len(raw) - len(raw.lstrip()))
                end = start + len(stripped)
                if prev_end is not None:
                    sep = _normalise_gap(text[prev_end:start])
                unit = _Unit(stripped, page_offset + start, page_offset + end, page.number, sep)
                prev_end = end
                if (
                    pending is not None
                    and sep == ""
                    and pending.text[-1] not in (_NO_SPACE_SENTENCE_ENDS)
                ):
                    pending = _Unit(
                        pending.text + unit.text, pending.start, unit.end, page.number, pending.sep
                    )
                    continue
                if pending is not None:
                    yield pending
                pending = unit
        page_offset += len(text) + len(PAGE_SEPARATOR)
    if pending is not None:
        yield pending


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    """Cut a page into spaCy-sized blocks, preferring a line break, then any whitespace."""
    start = 0
    while len(text) - start > _BLOCK_CHARS:
        limit = start + _BLOCK_CHARS
        cut = text.rfind("\n", start + _BLOCK_CHARS // 2, limit)
        if cut < 0:
            cut = _last_space(text, start + _BLOCK_CHARS // 2, limit)
        if cut <= start:
            cut = limit  # one enormous word: the glue rule in _sentences rejoins it
        yield start, text[start:cut]
        start = cut
    if start < len(text):
        yield start, text[start:]


def _normalise_gap(gap: str) -> str:
    newlines = gap.count("\n")
    if not gap:
        return ""
    return "\n\n" if newlines >= 2 else "\n" if newlines else " "


def _last_space(text: str, lo: int, hi: int) -> int:
    """Index of the last whitespace character in text[lo:hi], or -1."""
    for i in range(hi - 1, lo - 1, -1):
        if text[i].isspace():
            return i
    return -1


def _counted_units(
    units: Iterable[_Unit], counter: TokenCounter, max_tokens: int, overhead: int
) -> Iterator[_Unit]:
    count_batch = _batch_counter(counter)
    source = iter(units)
    while batch := list(islice(source, _COUNT_BATCH)):
        for unit, n in zip(batch, count_batch([unit.text for unit in batch]), strict=True):
            if n <= max_tokens:
                yield _with_count(unit, n)
            else:
                yield from _hard_split(unit, counter, max_tokens, overhead)


def _batch_counter(counter: TokenCounter) -> Callable[[list[str]], list[int]]:
    return getattr(counter, "count_tokens_batch", None) or (
        lambda texts: [counter.count_tokens(text) for text in texts]
    )


def _with_count(unit: _Unit, n: int) -> _Unit:
    return _Unit(unit.text, unit.start, unit.end, unit.page, unit.sep, n)


def _hard_split(
    unit: _Unit, counter: TokenCounter, max_tokens: int, overhead: int
) -> Iterator[_Unit]:
    """Cut an over-long sentence into pieces that each fit, never inside a word that fits."""
    text = unit.text
    count = counter.count_tokens
    token_offsets = getattr(counter, "token_offsets", None)
    offsets = token_offsets(text) if token_offsets else None
    pos = 0
    sep = unit.sep
    while pos < len(text):
        if offsets is not None:
            end, n = _cut_with_offsets(text, pos, offsets, count, max_tokens, overhead)
        else:
            end, n = _cut_by_search(text, pos, count, max_tokens)
        piece = text[pos:end].rstrip()
        if len(piece) != end - pos:
            n = count(piece)
        yield _Unit(piece, unit.start + pos, unit.start + pos + len(piece), unit.page, sep, n)
        nxt = end
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        sep = _normalise_gap(text[pos + len(piece) : nxt])
        pos = nxt


def _prefer_word_boundary(
    text: str, pos: int, end: int, n: int, count: Callable[[str], int], max_tokens: int
) -> tuple[int, int]:
    """Move a checked cut that falls inside a word to that word's edge when the result still
    fits: back to the space before it, or (when it is the piece's first word) to its end, so
    that a word which fits on its own is never split. Word-piece counts are not monotonic
    ("unbelievab" can take more tokens than "unbelievable"), hence the re-counts."""
    if end >= len(text) or text[end].isspace() or text[end - 1].isspace():
        return end, n
    space = _last_space(text, pos + 1, end)
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


def _cut_by_search(
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


def _cut_with_offsets(
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
    return _cut_by_search(text, pos, count, max_tokens)


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


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(u.sep + u.text for u in units[1:])


def _pack(
    units: Iterable[_Unit],
    count: Callable[[str], int],
    max_tokens: int,
    overlap: int,
    overhead: int,
    *,
    trust_sums: bool = False,
) -> Iterator[TextChunk]:
    """Yield chunks of at most ``max_tokens``. With ``trust_sums`` a chunk's count is the sum
    of its units' counts, never measured: the caller must check the chunks afterwards."""
    source = iter(units)
    pending: deque[_Unit] = deque()  # units pushed back after a chunk was cut short
    cur: list[_Unit] = []
    carried = 0  # leading units of ``cur`` repeated from the previous chunk (overlap)
    est = 0  # token estimate for _join(cur); exact when ``exact`` is True
    exact = False
    index = 0

    def fit() -> tuple[list[_Unit], list[_Unit], int]:
        known = est if exact or trust_sums else None
        return _fit(cur, carried, known, count, max_tokens)

    def take() -> _Unit | None:
        return pending.popleft() if pending else next(source, None)

    while True:
        unit = take()
        if unit is None:
            if len(cur) == carried:  # nothing new since the last chunk
                break
            chunk_units, carry, n = fit()
            yield _chunk(index, chunk_units, n)
            index += 1
            # The estimate fell short (a tokenizer that merges across sentences): the units
            # pushed back go round the loop again.
            pending.extend(carry)
            cur = _overlap_tail(chunk_units, overlap, overhead) if carry else []
            carried = len(cur)
            est, exact = _estimate(cur, overhead), False
            continue
        if not cur:
            cur, est, exact = [unit], unit.count, True
            continue
        # The unit's own special tokens are already in ``est``; add its content tokens only.
        if est + unit.count - overhead <= max_tokens:
            cur.append(unit)
            est, exact = est + unit.count - overhead, False
            continue
        # Near the limit: measure the real joined text, unless sums are trusted.
        n = est + unit.count - overhead if trust_sums else count(_join([*cur, unit]))
        if n <= max_tokens:
            cur.append(unit)
            est, exact = n, True
            continue
        if len(cur) == carried:
            # Only overlap so far and the new unit does not fit beside it: shorten the
            # overlap rather than emit a chunk with nothing new in it.
            pending.appendleft(unit)
            cur, carried = cur[1:], carried - 1
            est, exact = _estimate(cur, overhead), False
            continue
        chunk_units, carry, n = fit()
        yield _chunk(index, chunk_units, n)
        index += 1
        pending.appendleft(unit)
        pending.extendleft(reversed(carry))
        cur = _overlap_tail(chunk_units, overlap, overhead)
        carried = len(cur)
        est, exact = _estimate(cur, overhead), False


def _fit(
    cur: list[_Unit],
    carried: int,
    known: int | None,
    count: Callable[[str], int],
    max_tokens: int,
) -> tuple[list[_Unit], list[_Unit], int]:
    """Check the chunk on its joined text; if over, push trailing units back (or drop overlap
    when only one new unit is left). A single unit always fits: _counted_units made sure."""
    units = list(cur)
    carry: list[_Unit] = []
    n = known if known is not None else count(_join(units))
    while n > max_tokens:
        if len(units) - carried > 1:
            carry.insert(0, units.pop())
        else:
            units.pop(0)
            carried -= 1
        n = count(_join(units))
    return units, carry, n


def _overlap_tail(units: list[_Unit], overlap: int, overhead: int) -> list[_Unit]:
    """Trailing units whose content tokens add up to at most ``overlap``."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units[1:]):  # never the whole chunk again
        total += unit.count - overhead
        if total > overlap:
            break
        tail.insert(0, unit)
    return tail


def _estimate(units: list[_Unit], overhead: int) -> int:
    return sum(u.count - overhead for u in units) + overhead if units else 0


def _chunk(index: int, units: list[_Unit], n: int) -> TextChunk:
    return TextChunk(
        index=index,
        text=_join(units),
        token_count=n,
        page_start=units[0].page,
        page_end=units[-1].page,
        char_start=units[0].start,
        char_end=units[-1].end,
    )
