"""What the document list and page show about text quality (issue 13, part 2): the "low
quality" filter, a badge in the list, and on the document page the summary with each
flagged page and why. Everything comes from the row (``Document.quality``, written after
extraction by ``processing.py``). Mixed into ``DocumentAdmin``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from documents.admin.html import html_table
from documents.models import Document


class LowQualityFilter(admin.SimpleListFilter):
    title = "text quality"
    parameter_name = "low_quality"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Low quality (pages flagged)"),
            ("no", "No page flagged"),
        ]

    def queryset(self, request, queryset):
        # The queryset is already the user's tenants' documents (TenantScopedAdmin).
        if self.value() == "yes":
            return queryset.filter(low_quality=True)
        if self.value() == "no":
            return queryset.filter(low_quality=False)
        return queryset


def _percent(share) -> str:
    return f"{share * 100:.0f} %" if isinstance(share, int | float) else "-"


def _confidence(value) -> str:
    return f"{value:.0f} of 100" if isinstance(value, int | float) else "-"


class DocumentQuality:
    """The list's quality column and the document page's "Text quality" section."""

    @admin.display(description="Quality", ordering="low_quality")
    def quality_cell(self, obj: Document):
        quality = obj.quality or {}
        if not quality:
            return "-"
        flagged = len(obj.flagged_pages)
        if flagged:
            pages = ", ".join(str(f.get("page")) for f in obj.flagged_pages[:5])
            more = "…" if flagged > 5 else ""
            return format_html(
                '<span class="doc-badge doc-badge--low-quality" title="Pages {}{}">'
                "{} page{} flagged</span>",
                pages,
                more,
                flagged,
                "" if flagged == 1 else "s",
            )
        if quality.get("ocr_pages"):
            return f"OCR {_percent(quality.get('ocr_share'))}"
        return "ok"

    @admin.display(description="Text quality")
    def quality_table(self, obj: Document):
        quality = obj.quality or {}
        if not quality:
            return "Known once the text has been extracted."
        summary = html_table(
            "doc-facts",
            None,
            [
                (
                    "Pages read with OCR",
                    f"{quality.get('ocr_pages', 0)} of "
                    f"{quality.get('pages', 0)} ({_percent(quality.get('ocr_share'))})",
                ),
                ("Mean OCR confidence", _confidence(quality.get("mean_confidence"))),
                ("Garbled text layers (read with OCR too)", quality.get("garbled_layers", 0)),
                ("Pages flagged", len(obj.flagged_pages)),
            ],
            header_column=True,
        )
        flagged = obj.flagged_pages
        if not flagged:
            return format_html(
                '{}<p class="help">No page flagged: every page read as trustworthy text.</p>',
                summary,
            )
        rows = [
            (
                f.get("page"),
                f.get("reason", ""),
                _confidence(f.get("ocr_confidence")),
                f"{f['garbage_score']:.2f}"
                if isinstance(f.get("garbage_score"), int | float)
                else "-",
            )
            for f in flagged
        ]
        chunks = reverse("admin:documents_document_chunks", args=[obj.pk])
        return format_html(
            '{}{}<p class="help">Flagged pages may hold wrong words: check them against the '
            'file. Their chunks are marked in the <a href="{}">chunk list</a> and in search '
            "results.</p>",
            summary,
            html_table(
                "doc-flagged-pages",
                ["Page", "Why", "OCR confidence", "Garbage score (0-1)"],
                rows,
            ),
            chunks,
        )
