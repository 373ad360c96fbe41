"""Small HTML pieces the admin pages share; every cell is escaped."""

from __future__ import annotations

import re

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe


def html_table(css_class: str, headers, rows, *, header_column: bool = False):
    """A small read-only table for the document page; every cell is escaped."""
    first = "<th>{}</th>" if header_column else "<td>{}</td>"
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html(first, row[0])
                + format_html_join("", "<td>{}</td>", ((c,) for c in row[1:])),
            )
            for row in rows
        ),
    )
    head = (
        format_html("<tr>{}</tr>", format_html_join("", "<th>{}</th>", ((h,) for h in headers)))
        if headers
        else ""
    )
    return format_html('<table class="{}">{}{}</table>', css_class, head, body)


_WORD = re.compile(r"\w+")
# English endings folded before comparing a word with a query term, so that "tides" is marked
# for "tide" as the full-text search (Porter stemming) matched it; an approximation of the
# stemmer, for display only.
_ENDINGS = ("ies", "ing", "es", "ed", "ly", "s")


def _fold(word: str) -> str:
    word = word.lower()
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)] + ("y" if ending == "ies" else "")
    return word


def highlight(text: str, terms) -> str:
    """``text`` escaped, with the words that match one of ``terms`` in ``<mark>``."""
    wanted = {_fold(t) for t in terms}
    pieces, last = [], 0
    for match in _WORD.finditer(text):
        if _fold(match.group()) in wanted:
            pieces.append(escape(text[last : match.start()]))
            pieces.append(format_html("<mark>{}</mark>", match.group()))
            last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece was escaped above
