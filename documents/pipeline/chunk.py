"""Split a document's pages into chunks that fit the embedder's input limit.

Sentences come from spaCy's blank multi-language pipeline with the rule-based sentencizer
(no model to download; CJK, Thai and Arabic text goes through without errors). Sentences are
packed into chunks whose token count, measured with the embedder's own counter on the text
actually sent, never exceeds ``max_tokens``. A sentence that is over the limit on its own is
cut into pieces that fit, at word boundaries where a word fits, else inside the word
(``cut.py``).

Tables: a Markdown table in a page's text (``tables.markdown_tables``: the PDF tables of
tables.py and the Word tables of docx_text.py) is not sentencized; its header (with the
separator line) and each row are units of their own, so a row that fits is never cut. A chunk
that starts inside a table gets the table's header repeated at its top (``repeated_header``),
a chunk never ends on a header whose rows go to the next, and a row is not packed into a
chunk that lacks its header when the two would fit together.

Offsets: ``char_start``/``char_end`` index the document text (``PAGE_SEPARATOR.join`` of every
page's text, empty pages included). ``chunk.text`` equals that slice after whitespace
normalisation, after any repeated table header:
``chunk.text.split() == chunk.repeated_header.split() + doc_text[char_start:char_end].split()``.
Inside a
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

import dataclasses
import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from documents.pipeline.cut import cut_by_search, cut_with_offsets, last_space
from documents.pipeline.tables import markdown_tables
from documents.pipeline.types import PAGE_SEPARATOR, Page, TextChunk, TokenCounter

# spaCy refuses texts over 1,000,000 characters and its Doc costs ~several hundred bytes per
# token, so a huge single-page TXT is fed to it in blocks of about this many characters.
_BLOCK_CHARS = 100_000
# Sentence-final marks of scripts written without spaces: a break right after one of these is
# real even though no whitespace follows it. Any other break with no whitespace (spaCy splitting
# "end.Next") is undone, so a whitespace-delimited word never straddles two sentences.
_NO_SPACE_SENTENCE_ENDS = frozenset("。！？｡．")
# Sentences are counted this many at a time when the counter can count a batch in one call:
# the MiniLM tokenizer then spreads the work over the cores, outside the GIL.
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
    table: int = -1  # the document's table this is the header or a row of, -1 for text
    header: bool = False  # the table's header line and separator line


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
    # batch call at a time, cheaper than counting each joined chunk as it is packed. Any
    # difference (a counter that merges across sentences, or the Gemini estimate) and the
    # document is packed again, measuring each joined chunk.
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
    # Built once per process (spacy.blank takes a noticeable fraction of a second). Imported
    # here so importing this module stays cheap for processes that never chunk.
    import spacy

    nlp = spacy.blank("xx")
    # Once any special case has matched, spaCy's tokenizer stops caching the tokens of
    # every later word of that text (spacy/tokenizer.pyx, ``has_special``), and the base
    # exceptions include "\n", " ", "\t" and "\xa0", which match on nearly every page.
    # Those four only say that the whitespace is one token, which it is without them: the
    # tokens and sentences come out the same (test_chunk.py checks it) and tokenizing is
    # markedly faster (docs/measurements.md, "spaCy's token cache").
    nlp.tokenizer.rules = {
        text: tokens for text, tokens in nlp.tokenizer.rules.items() if text.strip()
    }
    nlp.add_pipe("sentencizer")
    return nlp


def _sentences(pages: Iterable[Page]) -> Iterator[_Unit]:
    """Yield every non-blank sentence of the document, stripped, with document offsets; each
    header and row of a Markdown table is one unit of its own, never cut by the sentencizer."""
    nlp = _sentencizer()
    page_offset = 0
    tables_seen = 0
    pending: _Unit | None = None  # held back until we know whether the next one glues to it
    for page in pages:
        text = page.text
        sep = PAGE_SEPARATOR
        prev_end = None  # end of the previous sentence, in page coordinates
        for start, end, table, header in _page_spans(text, nlp, tables_seen):
            tables_seen = max(tables_seen, table + 1)
            if prev_end is not None:
                sep = _normalise_gap(text[prev_end:start])
            unit = _Unit(
                text[start:end], page_offset + start, page_offset + end, page.number, sep,
                table=table, header=header,
            )  # fmt: skip
            prev_end = end
            if (
                pending is not None
                and sep == ""
                and pending.table < 0
                and unit.table < 0
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


def _page_spans(text: str, nlp, first_table: int) -> Iterator[tuple[int, int, int, bool]]:
    """(start, end, table, is header) of each sentence or table line of a page, in order;
    table is -1 for a sentence, else the table's number in the document."""
    cursor = 0
    for number, table in enumerate(markdown_tables(text), start=first_table):
        yield from _text_spans(text, cursor, table.header[0], nlp)
        yield (*table.header, number, True)
        for row in table.rows:
            yield (*row, number, False)
        cursor = table.end
    yield from _text_spans(text, cursor, len(text), nlp)


def _text_spans(text: str, lo: int, hi: int, nlp) -> Iterator[tuple[int, int, int, bool]]:
    for block_start, block in _blocks(text[lo:hi]):
        doc = nlp(block)
        for sent in doc.sents:
            raw = block[sent.start_char : sent.end_char]
            stripped = raw.strip()
            if not stripped:
                continue
            start = lo + block_start + sent.start_char + (len(raw) - len(raw.lstrip()))
            yield start, start + len(stripped), -1, False


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    """Cut a page into spaCy-sized blocks, preferring a line break, then any whitespace."""
    start = 0
    while len(text) - start > _BLOCK_CHARS:
        limit = start + _BLOCK_CHARS
        cut = text.rfind("\n", start + _BLOCK_CHARS // 2, limit)
        if cut < 0:
            cut = last_space(text, start + _BLOCK_CHARS // 2, limit)
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
    return dataclasses.replace(unit, count=n)


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
            end, n = cut_with_offsets(text, pos, offsets, count, max_tokens, overhead)
        else:
            end, n = cut_by_search(text, pos, count, max_tokens)
        piece = text[pos:end].rstrip()
        if len(piece) != end - pos:
            n = count(piece)
        # Pieces of a row stay rows of their table (the header can still be repeated above
        # them); pieces of a header are plain text, too long to repeat.
        table = -1 if unit.header else unit.table
        start = unit.start + pos
        yield _Unit(piece, start, start + len(piece), unit.page, sep, n, table=table)
        nxt = end
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        sep = _normalise_gap(text[pos + len(piece) : nxt])
        pos = nxt


def _join(units: list[_Unit], head: _Unit | None = None) -> str:
    text = units[0].text + "".join(u.sep + u.text for u in units[1:])
    return f"{head.text}\n{text}" if head is not None else text


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
    of its units' counts, never measured: the caller must check the chunks afterwards.

    Tables: a chunk that starts inside a table (its first unit a row whose header is in an
    earlier chunk) gets the header repeated at its top as ``head``, outside its offsets, when
    the header and the chunk's first new unit fit together; a header is not left as the last
    unit of a chunk while its rows go to the next."""
    source = iter(units)
    pending: deque[_Unit] = deque()  # units pushed back after a chunk was cut short
    cur: list[_Unit] = []
    carried = 0  # leading units of ``cur`` repeated from the previous chunk (overlap)
    head: _Unit | None = None  # a table header repeated above ``cur``
    est = 0  # token estimate for _join(cur, head); exact when ``exact`` is True
    exact = False
    index = 0
    headers: dict[int, _Unit] = {}  # table -> its header unit, as counted

    def header_for(first: _Unit | None) -> _Unit | None:
        if first is None or first.table < 0 or first.header:
            return None
        return headers.get(first.table)

    def lacks_header(unit: _Unit) -> bool:
        """A row whose header is neither repeated above the chunk nor in it, though the
        two would fit together."""
        header = header_for(unit)
        return (
            header is not None
            and head is not header
            and not any(u.header and u.table == unit.table for u in cur)
            and header.count + unit.count - overhead <= max_tokens
        )

    def fit() -> tuple[_Unit | None, list[_Unit], list[_Unit], int]:
        known = est if exact or trust_sums else None
        return _fit(head, cur, carried, known, count, max_tokens, header_for)

    def take() -> _Unit | None:
        unit = pending.popleft() if pending else next(source, None)
        if unit is not None and unit.header:
            headers[unit.table] = unit
        return unit

    def restart(units: list[_Unit]) -> None:
        nonlocal cur, carried, head, est, exact
        cur, carried = units, len(units)
        head = header_for(cur[0]) if cur else None
        est, exact = _estimate(cur, head, overhead), False

    while True:
        unit = take()
        if unit is None:
            if len(cur) == carried:  # nothing new since the last chunk
                break
            head, chunk_units, carry, n = fit()
            yield _chunk(index, chunk_units, n, head)
            index += 1
            # The estimate fell short (a tokenizer that merges across sentences): the units
            # pushed back go round the loop again.
            pending.extend(carry)
            restart(_overlap_tail(chunk_units, overlap, overhead) if carry else [])
            continue
        if not cur:
            head = header_for(unit)
            if head is not None and head.count + unit.count - overhead > max_tokens:
                head = None  # the header and this row do not fit together: the row goes alone
            cur, est, exact = [unit], _estimate([unit], head, overhead), head is None
            continue
        if len(cur) > carried and lacks_header(unit):
            # The chunk began inside this row's table without the header (the header and
            # that first row were too long together): start a chunk where they fit.
            pending.appendleft(unit)
            head, chunk_units, carry, n = fit()
            yield _chunk(index, chunk_units, n, head)
            index += 1
            pending.extendleft(reversed(carry))
            restart(_overlap_tail(chunk_units, overlap, overhead))
            continue
        # The unit's own special tokens are already in ``est``; add its content tokens only.
        if est + unit.count - overhead <= max_tokens:
            cur.append(unit)
            est, exact = est + unit.count - overhead, False
            continue
        # Near the limit: measure the real joined text, unless sums are trusted.
        n = est + unit.count - overhead if trust_sums else count(_join([*cur, unit], head))
        if n <= max_tokens:
            cur.append(unit)
            est, exact = n, True
            continue
        if len(cur) == carried:
            # Only overlap so far and the new unit does not fit beside it: shorten the
            # overlap rather than emit a chunk with nothing new in it.
            pending.appendleft(unit)
            restart(cur[1:])
            continue
        head, chunk_units, carry, n = fit()
        if chunk_units[-1].header and len(chunk_units) - carried > 1:
            # Do not end on a table's header: it opens the next chunk with its rows.
            carry.insert(0, chunk_units.pop())
            n = _estimate(chunk_units, head, overhead) if trust_sums else None
            n = n if n is not None else count(_join(chunk_units, head))
        yield _chunk(index, chunk_units, n, head)
        index += 1
        pending.appendleft(unit)
        pending.extendleft(reversed(carry))
        restart(_overlap_tail(chunk_units, overlap, overhead))


def _fit(
    head: _Unit | None,
    cur: list[_Unit],
    carried: int,
    known: int | None,
    count: Callable[[str], int],
    max_tokens: int,
    header_for: Callable[[_Unit | None], _Unit | None],
) -> tuple[_Unit | None, list[_Unit], list[_Unit], int]:
    """Check the chunk on its joined text; if over, push trailing units back, then drop
    overlap, then the repeated header (when only one new unit is left). A single unit
    always fits: _counted_units made sure."""
    units = list(cur)
    carry: list[_Unit] = []
    n = known if known is not None else count(_join(units, head))
    while n > max_tokens:
        if len(units) - carried > 1:
            carry.insert(0, units.pop())
        elif carried:
            units.pop(0)
            carried -= 1
            # the chunk now starts elsewhere: inside a table it needs that table's header
            head = header_for(units[0])
        else:
            head = None
        n = count(_join(units, head))
    return head, units, carry, n


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


def _estimate(units: list[_Unit], head: _Unit | None, overhead: int) -> int:
    if not units:
        return 0
    total = sum(u.count - overhead for u in units) + overhead
    return total + head.count - overhead if head is not None else total


def _chunk(index: int, units: list[_Unit], n: int, head: _Unit | None) -> TextChunk:
    return TextChunk(
        index=index,
        text=_join(units, head),
        token_count=n,
        page_start=units[0].page,
        page_end=units[-1].page,
        char_start=units[0].start,
        char_end=units[-1].end,
        repeated_header=head.text if head is not None else "",
    )
