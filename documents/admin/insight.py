"""What the document page and list show about cost, duplicates and history (issue 13):
the preflight estimate against what processing found, the same text in other files of the
tenant, the document's audit entries; and the list's actions that sum the estimates of a
selection and release held documents. Mixed into ``DocumentAdmin``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django.utils.translation import ngettext

from documents import estimates, services
from documents.admin.html import html_table
from documents.audit import ACTIONS, Source
from documents.models import Document, Stage
from documents.selectors import document_history, near_duplicates

HISTORY_ROWS = 50
# Next to an estimate made at upload from the file's structure, before the worker's
# estimating stage replaces it with one from every page's text layer.
FROM_STRUCTURE = "(from structure)"


def _number(value, *, money: bool = False) -> str:
    if value is None:
        return "-"
    if money:
        return f"${value:,.4f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def document_link(document: Document):
    url = reverse("admin:documents_document_change", args=[document.pk])
    return format_html('<a href="{}">{}</a>', url, document.title)


class DocumentInsight:
    """Read-only fields and actions of the document admin about estimates, near-duplicates
    and the audit trail. Every figure comes from the row or a scoped selector."""

    # --- list ------------------------------------------------------------------------------

    @admin.display(description="Estimate")
    def estimate_cell(self, obj: Document):
        guess = obj.estimate
        if obj.stage == Stage.HELD:
            return format_html('<span class="doc-held" title="{}">held</span>', obj.held_reason)
        if not guess.get("complete"):
            return "estimating…" if guess else "-"
        cost = guess.get("cost_usd")
        return format_html(
            "{} OCR p. · {} tokens{}{}",
            guess.get("pages_to_ocr"),
            _number(guess.get("tokens")),
            f" · ${cost:,.4f}" if cost is not None else "",
            format_html(' <span class="help">{}</span>', FROM_STRUCTURE)
            if obj.estimate_from_structure
            else "",
        )

    @admin.action(description="Sum the estimates of selected documents")
    def sum_estimates(self, request, queryset):
        total = estimates.totals(queryset)
        parts = [
            f"{_number(total['pages'])} pages",
            f"{_number(total['pages_to_ocr'])} to OCR",
            f"{_number(total['tokens'])} tokens",
            f"{_number(total['chunks'])} chunks",
            f"{_number(total['requests'])} embedding requests",
        ]
        if total["cost_usd"] is not None:
            parts.append(f"${total['cost_usd']:,.4f}")
        parts.append(f"about {_number(round(total['seconds']))} s of processing")
        message = ngettext(
            "Estimate of %(count)d document: %(sum)s.",
            "Estimate of %(count)d documents: %(sum)s.",
            total["documents"],
        ) % {"count": total["documents"], "sum": ", ".join(parts)}
        if total["estimating"]:
            message += ngettext(
                " %(count)d more is still being estimated.",
                " %(count)d more are still being estimated.",
                total["estimating"],
            ) % {"count": total["estimating"]}
        self.message_user(request, message, messages.INFO)

    @admin.action(description="Release selected held documents")
    def release_held(self, request, queryset):
        result = services.documents_release(
            queryset=queryset, actor=request.user, source=Source.ADMIN
        )
        self._report(request, result, "released and queued", "they were not held")

    # --- document page ---------------------------------------------------------------------

    @admin.display(description="Estimate and actual")
    def estimate_table(self, obj: Document):
        guess = obj.estimate
        if not guess:
            return "No estimate (uploaded before estimates existed)."
        rows = [
            (label, _number(estimated, money=money), _number(actual, money=money))
            for label, estimated, actual in estimates.comparison(obj)
            for money in [label == estimates.COST_LABEL]
        ]
        note = ""
        estimated = "Estimated"
        if not guess.get("complete"):
            note = mark_safe(  # a constant sentence, nothing interpolated
                '<p class="help">Estimating: only the file\'s page count is known so far; '
                "the estimating stage reads every page.</p>"
            )
        elif obj.estimate_from_structure:
            estimated = f"Estimated {FROM_STRUCTURE}"
            note = mark_safe(  # a constant sentence, nothing interpolated
                '<p class="help">Estimated at upload from the file\'s structure (which PDF '
                "pages have a text layer, the size of a Word file's text, a text file's size), "
                "not from its extracted text. For a PDF or Word file the estimating stage reads "
                "every page's text layer and replaces it.</p>"
            )
        finish = estimates.expected_finish(obj)
        if finish is not None:
            note = format_html(
                '{}<p class="help">Expected to finish at {} (about {} s of processing; the '
                "wait behind other documents in the queue is not counted).</p>",
                note,
                date_format(localtime(finish), "DATETIME_FORMAT"),
                _number(guess.get("seconds")),
            )
        source = guess.get("rates_from_documents") or 0
        basis = (
            f"Times from the last {source} documents processed here."
            if source
            else "Times from the default rates (no document processed here yet)."
        )
        return format_html(
            '{}{}{}<p class="help">{}</p>',
            self._held_note(obj),
            note,
            html_table("doc-estimate", ["", estimated, "Actual"], rows, header_column=True),
            basis,
        )

    def _held_note(self, obj: Document):
        if obj.stage != Stage.HELD:
            return ""
        return format_html(
            '<p class="errornote">Held: {} Release it with the action '
            "“Release selected held documents” in the list.</p>",
            obj.held_reason,
        )

    @admin.display(description="Same text in other files")
    def near_duplicates_list(self, obj: Document):
        if not obj.text_fingerprint:
            return "Known once the text has been extracted."
        others = list(near_duplicates(obj)[:20])
        if not others:
            return "No other document of this tenant has the same text."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} ({}, {})</li>",
                (
                    (
                        document_link(d),
                        "the same file" if d.sha256 == obj.sha256 else "a different file",
                        d.get_status_display(),
                    )
                    for d in others
                ),
            ),
        )

    @admin.display(description="History")
    def history(self, obj: Document):
        entries = list(document_history(obj)[:HISTORY_ROWS])
        if not entries:
            return "No recorded action."
        rows = [
            (
                e.at,
                ACTIONS.get(e.action, e.action),
                e.actor_name or "-",
                e.get_source_display(),
                e.count,
            )
            for e in entries
        ]
        url = reverse("admin:documents_auditentry_changelist")
        return format_html(
            '{}<p class="help"><a href="{}?q={}">Every entry naming this document</a></p>',
            html_table("doc-history", ["At", "Action", "By", "From", "Documents"], rows),
            url,
            obj.pk,
        )
