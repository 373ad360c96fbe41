"""Properties of split_text, checked with three counters: whitespace words, the real
all-MiniLM-L6-v2 word-piece tokenizer (with and without its character offsets), and a
character counter whose joined count is larger than the sum of its parts (the trap that makes a
naive sentence packer overshoot)."""

from __future__ import annotations

import bisect

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents.pipeline.chunk import _sentencizer, split_text
from documents.pipeline.embedders.local import LocalEmbedder
from documents.pipeline.tables import markdown_tables
from documents.pipeline.types import PAGE_SEPARATOR, Page

# Sentence ends of scripts written without spaces: the chunker may break right after them even
# with no whitespace, so a "word" containing one mid-way may legitimately straddle two chunks.
NO_SPACE_ENDS = set("。！？｡．")


class WordCounter:
    def count_tokens(self, text: str) -> int:
        return len(text.split())


class CharCounter:
    """Counts characters, spaces between sentences included: count(a + " " + b) is more
    than count(a) + count(b), so only a check on the joined text keeps chunks in the limit."""

    def count_tokens(self, text: str) -> int:
        return len(text)


class CountOnly:
    """The MiniLM counter without ``token_offsets``: forces the binary-search split."""

    def __init__(self, inner):
        self._inner = inner

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)


MINILM = LocalEmbedder()


# -- text generation --------------------------------------------------------------------------

letters = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789")
    + list("éüßøçñ")  # Latin with accents
    + list("日本語文字中国")  # CJK
    + list("ภาษาไทย")  # Thai
    + list("العربية")  # Arabic
    + ["😀", "👍", "🏽", "\u0301", "ﬁ", "-", "'", ",", ";", ":", "(", ")", '"']
)
short_word = st.text(letters, min_size=1, max_size=12)
long_word = st.text(letters, min_size=30, max_size=400)
word = st.one_of(short_word, short_word, short_word, long_word)
space = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", " \n ", "\u3000", "\xa0", "   \n\n  "])
ending = st.sampled_from(["", ".", ".", "!", "?", "。", "...", ".)"])


@st.composite
def sentence(draw):
    # a few very long sentences without any punctuation
    words = draw(st.lists(word, min_size=1, max_size=draw(st.sampled_from([8, 8, 80]))))
    parts = [words[0]]
    for w in words[1:]:
        parts += [draw(space), w]
    return "".join(parts) + draw(ending)


@st.composite
def page_text(draw):
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(["", "   ", "\n\n\n", " \t \n"]))
    sentences = draw(st.lists(sentence(), min_size=1, max_size=12))
    gaps = [draw(st.sampled_from([" ", " ", "\n", "\n\n", "  ", ""])) for _ in sentences]
    lead, trail = draw(space), draw(st.sampled_from(["", " ", "\n"]))
    return lead + "".join(s + g for s, g in zip(sentences, gaps, strict=True)) + trail


pages_strategy = st.lists(page_text(), min_size=1, max_size=4).map(
    lambda texts: [Page(number=i + 1, text=t) for i, t in enumerate(texts)]
)


# -- checking ---------------------------------------------------------------------------------


def words_with_spans(text: str):
    """Whitespace-separated words (str.isspace, as str.split) with their offsets."""
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        start = i
        while i < n and not text[i].isspace():
            i += 1
        if i > start:
            yield text[start:i], start, i


def check_chunks(pages, counter, max_tokens, overlap):
    chunks = split_text(pages, counter=counter, max_tokens=max_tokens, overlap=overlap)
    doc = PAGE_SEPARATOR.join(p.text for p in pages)
    page_starts, offset = [], 0
    for p in pages:
        page_starts.append(offset)
        offset += len(p.text) + len(PAGE_SEPARATOR)

    def page_of(char: int) -> int:
        return pages[bisect.bisect_right(page_starts, char) - 1].number

    starts = []
    for i, c in enumerate(chunks):
        assert c.index == i
        # (a) within the limit, counted on the text that will be embedded
        assert counter.count_tokens(c.text) == c.token_count <= max_tokens
        # offsets: the slice is the chunk's text up to whitespace, after the table header
        # repeated at its top when it continues a table
        body = doc[c.char_start : c.char_end]
        assert c.text.split() == c.repeated_header.split() + body.split()
        assert c.text.startswith(c.repeated_header)
        assert c.text == c.text.strip() and c.text
        # (d) page span
        assert c.page_start == page_of(c.char_start)
        assert c.page_end == page_of(c.char_end - 1)
        starts.append(c.char_start)
    assert starts == sorted(set(starts)), "chunks go forward through the document"

    # (b) every word lands in a chunk: each of its characters is covered, and a word that
    # fits the limit on its own lies wholly inside one chunk
    spans = [(c.char_start, c.char_end) for c in chunks]
    span_starts = [s for s, _ in spans]
    for w, ws, we in words_with_spans(doc):
        k = bisect.bisect_right(span_starts, ws) - 1
        assert k >= 0 and spans[k][0] <= ws < spans[k][1] or any(s <= ws < e for s, e in spans), (
            f"word {w!r} at {ws} is in no chunk"
        )
        cuttable = any(ch in NO_SPACE_ENDS for ch in w[:-1])
        if counter.count_tokens(w) <= max_tokens and not cuttable:
            assert any(s <= ws and we <= e for s, e in spans), f"word {w!r} was split"
        else:
            covered = set()
            for s, e in spans:
                covered.update(range(max(s, ws), min(e, we)))
            assert covered == set(range(ws, we)), f"part of word {w!r} is in no chunk"
    return chunks


common = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@common
@given(pages=pages_strategy, max_tokens=st.integers(1, 40), data=st.data())
def test_properties_with_a_word_counter(pages, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = check_chunks(pages, WordCounter(), max_tokens, overlap)
    # (c) deterministic
    assert split_text(pages, counter=WordCounter(), max_tokens=max_tokens, overlap=overlap) == (
        chunks
    )


@common
@given(pages=pages_strategy, max_tokens=st.integers(4, 80), data=st.data())
def test_properties_with_the_minilm_tokenizer(pages, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens // 2))
    chunks = check_chunks(pages, MINILM, max_tokens, overlap)
    assert split_text(pages, counter=MINILM, max_tokens=max_tokens, overlap=overlap) == chunks


@settings(common, max_examples=60)
@given(pages=pages_strategy, max_tokens=st.integers(4, 80), data=st.data())
def test_properties_with_the_minilm_tokenizer_without_offsets(pages, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens // 2))
    check_chunks(pages, CountOnly(MINILM), max_tokens, overlap)


@settings(common, max_examples=100)
@given(pages=pages_strategy, max_tokens=st.integers(8, 400), data=st.data())
def test_properties_with_a_counter_that_grows_when_texts_are_joined(pages, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    check_chunks(pages, CharCounter(), max_tokens, overlap)


STOCK_XX = spacy.blank("xx")
STOCK_XX.add_pipe("sentencizer")
SPECIAL_CASES = (
    "J. R. R. Tolkien wrote it :) \u2014 in 1937 \u2014\nThe end.\n\tNext\xa0one! C++ too."
)


def assert_same_as_stock_spacy(text: str) -> None:
    ours, theirs = _sentencizer()(text), STOCK_XX(text)
    assert [(t.text, t.whitespace_) for t in ours] == [(t.text, t.whitespace_) for t in theirs]
    assert [s.start_char for s in ours.sents] == [s.start_char for s in theirs.sents]


# chunk.py drops the whitespace special cases from spaCy's tokenizer to keep its cache working;
# that must not change a single token or sentence boundary, first time or from the cache.
@common
@given(pages=pages_strategy)
def test_sentences_are_those_of_the_stock_spacy_pipeline(pages):
    for page in pages:
        assert_same_as_stock_spacy(page.text)
        assert_same_as_stock_spacy(SPECIAL_CASES + " " + page.text)


def test_special_cases_tokenise_as_in_the_stock_pipeline_also_from_the_cache():
    for _ in range(2):
        assert_same_as_stock_spacy(SPECIAL_CASES)
        assert_same_as_stock_spacy(SPECIAL_CASES.replace("\n", "\n\n").upper())


# -- examples ---------------------------------------------------------------------------------


def test_a_sentence_longer_than_the_limit_is_split_at_word_boundaries():
    words = [f"w{i}" for i in range(95)]
    chunks = split_text([Page(1, " ".join(words))], counter=WordCounter(), max_tokens=10, overlap=0)
    assert [c.token_count for c in chunks] == [10] * 9 + [5]
    assert " ".join(c.text for c in chunks) == " ".join(words)


def test_a_word_longer_than_the_limit_is_cut_into_pieces_that_fit_the_model():
    # No whitespace, 3000 word pieces ("x", "-", "x", ...). (A plain 3000-letter word would
    # not do: BERT's tokenizer turns any word over 100 characters into a single [UNK].)
    text = "Start. " + "x-" * 1500 + " end."
    assert MINILM.count_tokens("x-" * 1500) == 3002
    chunks = split_text([Page(1, text)], counter=MINILM, max_tokens=64, overlap=8)
    assert len(chunks) >= 3000 // 62
    assert all(MINILM.count_tokens(c.text) <= 64 for c in chunks)
    assert "".join(c.text for c in chunks).count("x") == 1500


def test_the_next_chunk_starts_with_the_last_sentences_of_the_previous_one():
    sentences = [f"Sentence number {i} here." for i in range(20)]  # 4 words each
    chunks = split_text(
        [Page(1, " ".join(sentences))], counter=WordCounter(), max_tokens=12, overlap=4
    )
    assert len(chunks) > 3
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        last_sentence = prev.text[prev.text.rindex("Sentence") :]
        assert nxt.text.startswith(last_sentence)
        assert nxt.char_start < prev.char_end
    no_overlap = split_text(
        [Page(1, " ".join(sentences))], counter=WordCounter(), max_tokens=12, overlap=0
    )
    assert all(a.char_end <= b.char_start for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_a_chunk_spans_pages_and_empty_pages_contribute_nothing():
    pages = [Page(1, "One two."), Page(2, "   \n"), Page(3, ""), Page(4, "Three four.")]
    (chunk,) = split_text(pages, counter=WordCounter(), max_tokens=10, overlap=2)
    assert (chunk.page_start, chunk.page_end) == (1, 4)
    assert chunk.text == "One two.\n\nThree four."
    doc = PAGE_SEPARATOR.join(p.text for p in pages)
    assert doc[chunk.char_start : chunk.char_end].split() == chunk.text.split()
    assert split_text(pages[1:3], counter=WordCounter(), max_tokens=10, overlap=2) == []


def test_chunks_at_the_limit_are_filled_not_cut_early():
    # MiniLM adds [CLS]/[SEP] to every count; summing per-sentence counts would waste 2 tokens
    # a sentence. With 200 short sentences the chunks must still come close to the limit.
    text = " ".join(f"Item {i} is fine." for i in range(200))
    chunks = split_text([Page(1, text)], counter=MINILM, max_tokens=256, overlap=0)
    assert all(c.token_count <= 256 for c in chunks)
    assert min(c.token_count for c in chunks[:-1]) >= 240


@pytest.mark.parametrize("max_tokens,overlap", [(0, 0), (10, 10), (10, -1)])
def test_it_refuses_impossible_settings(max_tokens, overlap):
    with pytest.raises(ValueError):
        split_text([Page(1, "a b")], counter=WordCounter(), max_tokens=max_tokens, overlap=overlap)


# -- tables -----------------------------------------------------------------------------------

cell = st.lists(st.one_of(short_word, short_word, long_word), min_size=0, max_size=4).map(" ".join)


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


@st.composite
def table_text(draw):
    columns = draw(st.integers(1, 4))
    header = draw(st.lists(short_word, min_size=columns, max_size=columns))
    rows = draw(st.lists(st.lists(cell, min_size=columns, max_size=columns), max_size=8))
    lines = [markdown_row(header), markdown_row(["---"] * columns)]
    return "\n".join(lines + [markdown_row(row) for row in rows])


@st.composite
def page_with_tables(draw):
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            parts.append(draw(sentence()))
        parts.append(draw(table_text()))
    if draw(st.booleans()):
        parts.append(draw(sentence()))
    return "\n".join(parts)


table_pages = st.lists(page_with_tables(), min_size=1, max_size=3).map(
    lambda texts: [Page(number=i + 1, text=t) for i, t in enumerate(texts)]
)


def check_tables(pages, chunks, counter, max_tokens):
    """Every row that fits the limit lies whole in a chunk, and when it fits together with
    its header, whole in a chunk that also holds the header (or repeats it at its top)."""
    offset = 0
    rows_checked = 0
    for page in pages:
        for table in markdown_tables(page.text):
            header = page.text[slice(*table.header)]
            h_start, h_end = (offset + x for x in table.header)
            for row_start, row_end in table.rows:
                row = page.text[row_start:row_end]
                start, end = offset + row_start, offset + row_end
                holding = [c for c in chunks if c.char_start <= start and end <= c.char_end]
                if counter.count_tokens(row) <= max_tokens:
                    assert holding, f"row {row!r} was split"
                if counter.count_tokens(f"{header}\n{row}") <= max_tokens:
                    rows_checked += 1
                    assert any(
                        c.repeated_header == header
                        or (c.char_start <= h_start and h_end <= c.char_end)
                        for c in holding
                    ), f"row {row!r} is in no chunk with its header"
        offset += len(page.text) + len(PAGE_SEPARATOR)
    return rows_checked


@common
@given(pages=table_pages, max_tokens=st.integers(1, 60), data=st.data())
def test_table_rows_stay_whole_and_with_their_header_with_a_word_counter(pages, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = check_chunks(pages, WordCounter(), max_tokens, overlap)
    check_tables(pages, chunks, WordCounter(), max_tokens)


@common
@given(pages=table_pages, max_tokens=st.integers(8, 120), data=st.data())
def test_table_rows_stay_whole_and_with_their_header_with_the_minilm_tokenizer(
    pages, max_tokens, data
):
    overlap = data.draw(st.integers(0, max_tokens // 2))
    chunks = check_chunks(pages, MINILM, max_tokens, overlap)
    check_tables(pages, chunks, MINILM, max_tokens)


@settings(common, max_examples=100)
@given(pages=table_pages, max_tokens=st.integers(16, 600), data=st.data())
def test_table_rows_stay_whole_with_a_counter_that_grows_when_texts_are_joined(
    pages, max_tokens, data
):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = check_chunks(pages, CharCounter(), max_tokens, overlap)
    check_tables(pages, chunks, CharCounter(), max_tokens)


def test_a_long_table_repeats_its_header_at_the_top_of_every_chunk_it_spans():
    header = "| Region | Revenue | Margin |\n| --- | --- | --- |"
    rows = [f"| Region number {i} | {1000 + i} euros | {i % 7} percent |" for i in range(60)]
    text = "Sales by region.\n" + header + "\n" + "\n".join(rows) + "\nEnd of the table."
    pages = [Page(1, text)]
    chunks = check_chunks(pages, MINILM, 64, 8)
    assert len(chunks) > 5
    assert chunks[0].repeated_header == ""  # the header is there in its own place
    for chunk in chunks:
        assert chunk.text.startswith(header) or chunk.text.startswith("Sales by region.")
        for line in chunk.text.splitlines():
            if line.startswith("| Region number"):
                assert line in rows  # never a piece of a row
    assert all(c.repeated_header == header for c in chunks[1:-1])
    assert check_tables(pages, chunks, MINILM, 64) == 60


def test_a_table_header_is_not_left_alone_at_the_end_of_a_chunk():
    text = " ".join(["word"] * 8) + "\n| A | B |\n| --- | --- |\n| one two | three four |"
    # 8 words, a header of 10 "words" (pipes count), a row of 7: the first two fit in 20
    chunks = split_text([Page(1, text)], counter=WordCounter(), max_tokens=20, overlap=0)
    assert [c.text for c in chunks] == [
        " ".join(["word"] * 8),
        "| A | B |\n| --- | --- |\n| one two | three four |",
    ]


def test_pipes_without_a_separator_line_are_ordinary_text():
    text = "| not a table |\n| just pipes |. And a sentence."
    assert markdown_tables(text) == []
