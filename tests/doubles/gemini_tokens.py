"""The Gemini double's model of the gemini-embedding-001 tokenizer.

There is no local tokenizer for gemini-embedding-001 (docs/external-services.md), so the double
counts with a model built from what is documented about Gemini's SentencePiece tokenizer, which
the Gemma models share ("a subset of the SentencePiece tokenizer of Gemini": it "splits digits,
does not remove extra whitespace, and relies on byte-level encodings for unknown tokens", Gemma
technical report, 2024), and from the Gemini docs' rule of thumb ("a token is equivalent to
about 4 characters; 100 tokens is about 60-80 English words", "Understand and count tokens").

The model, piece by piece:

- every decimal digit is a token of its own: "2026" is 4 tokens, "3.14" is 4;
- every punctuation mark, symbol, underscore or emoji code point is a token of its own
  (the worst case: SentencePiece merges some runs such as "...", most are single pieces);
- every Chinese, Japanese or Korean character is a token;
- any other run of letters is one token per 4 bytes of UTF-8, rounded up ("cat" 1,
  "quick" 2, "internationalization" 5): the docs' ~4 characters per token, counted in bytes
  so scripts with wider characters (Cyrillic, Greek) count more, as byte fallback does;
- whitespace is kept, not dropped: a single space before the next piece is free (it is the
  "▁" SentencePiece fuses into that piece), any other run of whitespace -- newlines, tabs,
  indentation -- is one token per 31 characters (the Gemma vocabulary holds whitespace runs
  up to 31 long).

This over-counts ordinary prose a little (real common words are one token however long) and
counts numbers exactly, which is what matters: a table of figures has several times more
tokens than its length in words suggests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECE = re.compile(
    rf"(?P<space>\s+)|(?P<digit>\d)|(?P<cjk>[{_CJK}])|(?P<word>(?:(?![{_CJK}])[^\W\d_])+)|.",
    re.DOTALL,
)
_WHITESPACE_RUN = 31
_BYTES_PER_TOKEN = 4


def _pieces(text: str) -> Iterator[tuple[re.Match, int]]:
    for m in _PIECE.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            run = m.group()
            yield m, 0 if run == " " else math.ceil(len(run) / _WHITESPACE_RUN)
        elif kind == "word":
            yield m, math.ceil(len(m.group().encode()) / _BYTES_PER_TOKEN)
        else:
            yield m, 1  # a digit, a CJK character, a mark, a symbol


def count_tokens(text: str) -> int:
    return sum(n for _, n in _pieces(text))


def truncate(text: str, limit: int) -> str:
    """The longest prefix of ``text`` with at most ``limit`` tokens: what the service embeds
    when it silently truncates an over-long input."""
    used = 0
    for m, n in _pieces(text):
        if used + n <= limit:
            used += n
            continue
        if m.lastgroup == "word":  # keep the part of the word the remaining tokens cover
            room, kept = (limit - used) * _BYTES_PER_TOKEN, 0
            for ch in m.group():
                if kept + len(ch.encode()) > room:
                    break
                kept += len(ch.encode())
            return text[: m.start()] + m.group().encode()[:kept].decode()
        return text[: m.start()]
    return text
