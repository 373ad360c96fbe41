"""A fingerprint of a document's extracted text, to find the same text in a different file.

Two files with different bytes often carry the same text: a PDF exported twice (a new
creation date, a new document id), re-saved with other fonts or compression, or printed to
PDF again. The fingerprint is a SHA-256 of the text reduced to its words: Unicode-normalised
(NFKC: ligatures and full-width forms become plain letters), case-folded, every run of
punctuation, whitespace and line breaks dropped, page breaks included. What differs between
such copies -- line wrapping, spacing, curly or straight quotes, letter case -- does not change
it; a changed word does.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"\w+")


def normalised_words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def text_fingerprint(pages: Iterable[str]) -> str:
    """The fingerprint of a document's pages; empty when there is no word at all (nothing
    to compare: two empty documents are not the same text)."""
    digest = hashlib.sha256()
    words = 0
    for text in pages:
        for word in normalised_words(text):
            digest.update(word.encode("utf-8"))
            digest.update(b" ")
            words += 1
    return digest.hexdigest() if words else ""
