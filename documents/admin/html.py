"""Small HTML pieces the admin pages share; every cell is escaped."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join


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
