"""Geometry of the dashboard's inline SVG bar charts (no chart library: the machines are
offline and the admin loads nothing from a CDN)."""

from __future__ import annotations

WIDTH = 720
HEIGHT = 120


def bar_chart(buckets, *, label_every: int) -> dict:
    """``buckets``: [(hour start, documents, pages)]. Returns bars for documents (solid) and
    pages (outline), scaled to the larger of the two series."""
    count = max(1, len(buckets))
    step = WIDTH / count
    peak = max([1] + [max(n, pages) for _, n, pages in buckets])
    bars = []
    for i, (start, n, pages) in enumerate(buckets):
        doc_h = round(HEIGHT * n / peak, 1)
        page_h = round(HEIGHT * pages / peak, 1)
        bars.append(
            {
                "x": round(i * step, 2),
                "width": round(max(step - 1, 1), 2),
                "doc_y": round(HEIGHT - doc_h, 1),
                "doc_h": doc_h,
                "page_y": round(HEIGHT - page_h, 1),
                "page_h": page_h,
                "documents": n,
                "pages": pages,
                "start": start,
                "label": start.strftime("%d %H:00") if i % label_every == 0 else "",
            }
        )
    return {
        "bars": bars,
        "width": WIDTH,
        "height": HEIGHT,
        "peak": peak,
        "total_documents": sum(n for _, n, _ in buckets),
        "total_pages": sum(p for _, _, p in buckets),
    }
