"""The Document admin: the scoped list with live progress, the read-only document page, the
bulk actions and the custom pages' URLs. State changes all go through ``services``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import ngettext

from documents import services
from documents.admin import views
from documents.admin.html import html_table
from documents.admin.insight import DocumentInsight
from documents.admin.paginator import EstimatedCountPaginator
from documents.admin.quality import DocumentQuality, LowQualityFilter
from documents.admin.tenants import TenantListFilter, TenantScopedAdmin
from documents.audit import Source
from documents.models import Document, Stage, VectorState
from documents.selectors import documents_for_user

# The stages in pipeline order, for the timeline on the document page.
_STAGE_ORDER = [s.value for s in Stage]


def status_badge_html(status: str, label: str):
    return format_html('<span class="doc-badge doc-badge--{}">{}</span>', status, label)


@admin.register(Document)
class DocumentAdmin(DocumentInsight, DocumentQuality, TenantScopedAdmin):
    list_display = [
        "title",
        "tenant",
        "status_cell",
        "stage_cell",
        "progress_cell",
        "failure_cell",
        "chunks_cell",
        "estimate_cell",
        "quality_cell",
        "created_at",
    ]
    list_filter = [
        TenantListFilter,
        "status",
        "stage",
        "failure_kind",
        "vector_state",
        LowQualityFilter,
        "created_at",
    ]
    search_fields = ["title", "original_filename", "=sha256"]
    list_select_related = ["tenant"]
    list_per_page = 50
    paginator = EstimatedCountPaginator
    # The "N total" beside the filtered count would be a second full COUNT(*) per page view.
    show_full_result_count = False
    # "Show counts" on the filters would run one COUNT per filter option over the whole table.
    show_facets = admin.ShowFacets.NEVER
    actions = [
        "reprocess",
        "purge_vectors",
        "retry_failed",
        "cancel",
        "release_held",
        "sum_estimates",
    ]
    change_list_template = "admin/documents/document/change_list.html"
    fieldsets = [
        (None, {"fields": ["title", "tenant", "file_facts", "download_link"]}),
        ("Status", {"fields": ["status_cell", "stage_cell", "progress_cell", "stage_timeline"]}),
        ("Estimate", {"fields": ["estimate_table"]}),
        ("Text quality", {"fields": ["quality_table"]}),
        ("Duplicates and history", {"fields": ["near_duplicates_list", "history"]}),
        ("Failure", {"fields": ["failure_kind", "failure_message", "attempts", "attempt_history"]}),
        (
            "Index",
            {
                "fields": [
                    "vectors",
                    "chunk_count",
                    "embedding",
                    "embedding_cache",
                    "chunks_link",
                ]
            },
        ),
        ("Tasks", {"fields": ["last_task_id", "claimed_by", "heartbeat_at"]}),
    ]
    readonly_fields = [
        "tenant",
        "file_facts",
        "download_link",
        "status_cell",
        "stage_cell",
        "progress_cell",
        "stage_timeline",
        "estimate_table",
        "quality_table",
        "near_duplicates_list",
        "history",
        "failure_kind",
        "failure_message",
        "attempts",
        "attempt_history",
        "vectors",
        "chunk_count",
        "embedding",
        "embedding_cache",
        "chunks_link",
        "last_task_id",
        "claimed_by",
        "heartbeat_at",
    ]

    class Media:
        css = {"all": ["documents/admin.css"]}

    def scoped_queryset(self, request):
        return documents_for_user(request.user)

    def has_add_permission(self, request):
        # Documents are added through the upload page, which validates like the API.
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    # --- custom pages --------------------------------------------------------------------

    def get_urls(self):
        def wrap(view):
            def wrapper(request, *args, **kwargs):
                return view(self, request, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        custom = [
            path("upload/", wrap(views.upload), name=f"{prefix}_upload"),
            path("progress/", wrap(views.progress), name=f"{prefix}_progress"),
            path("search/", wrap(views.search), name=f"{prefix}_search"),
            path("dashboard/", wrap(views.dashboard), name=f"{prefix}_dashboard"),
            path("<path:object_id>/chunks/", wrap(views.chunks), name=f"{prefix}_chunks"),
            path("<path:object_id>/download/", wrap(views.download), name=f"{prefix}_download"),
        ]
        return custom + super().get_urls()

    # --- list cells (no query per row: everything comes from the row itself) ----------------

    @admin.display(description="Status", ordering="status")
    def status_cell(self, obj: Document):
        return format_html(
            '<span data-doc-id="{}" data-doc-status="{}" class="doc-status">{}</span>',
            obj.pk,
            obj.status,
            status_badge_html(obj.status, obj.get_status_display()),
        )

    @admin.display(description="Stage", ordering="stage")
    def stage_cell(self, obj: Document):
        return format_html(
            '<span class="doc-stage" data-doc-id="{}">{}</span>', obj.pk, obj.get_stage_display()
        )

    @admin.display(description="Failure kind", ordering="failure_kind")
    def failure_cell(self, obj: Document):
        return format_html(
            '<span class="doc-failure" data-doc-id="{}">{}</span>',
            obj.pk,
            obj.get_failure_kind_display() or "-",
        )

    @admin.display(description="Chunks", ordering="chunk_count")
    def chunks_cell(self, obj: Document):
        return format_html(
            '<span class="doc-chunks" data-doc-id="{}">{}</span>', obj.pk, obj.chunk_count
        )

    @admin.display(description="Progress")
    def progress_cell(self, obj: Document):
        return format_html(
            '<span class="doc-progress" data-doc-id="{}"><progress max="100" value="{}"></progress>'
            ' <span class="doc-progress-text">{}%</span></span>',
            obj.pk,
            obj.progress_percent,
            obj.progress_percent,
        )

    # --- document page ---------------------------------------------------------------------

    @admin.display(description="File")
    def file_facts(self, obj: Document):
        rows = [
            ("Original name", obj.original_filename),
            ("Type", obj.content_type),
            ("Size", filesizeformat(obj.size_bytes)),
            ("SHA-256", obj.sha256),
            ("Pages", obj.pages_total if obj.pages_total is not None else "not yet known"),
            ("Uploaded by", obj.uploaded_by or "unknown"),
            ("Uploaded", obj.created_at),
            ("Id", obj.pk),
        ]
        return html_table("doc-facts", None, rows, header_column=True)

    @admin.display(description="Download")
    def download_link(self, obj: Document):
        if not obj.storage_key:
            return "-"
        # The scoped download view, not a storage URL: it checks the tenant on every click
        # and works on local storage too (a presigned URL is made only when followed).
        url = reverse("admin:documents_document_download", args=[obj.pk])
        return format_html(
            '<a href="{}" class="doc-download">Download {}</a>', url, obj.original_filename
        )

    @admin.display(description="Stage timeline")
    def stage_timeline(self, obj: Document):
        timings = obj.stage_timings or {}
        if not timings:
            return "No stage has started yet."
        order = {name: i for i, name in enumerate(_STAGE_ORDER)}
        rows = []
        for stage in sorted(timings, key=lambda s: (order.get(s, 99), s)):
            timing = timings[stage] if isinstance(timings[stage], dict) else {}
            seconds = timing.get("seconds")
            rows.append(
                (
                    stage,
                    timing.get("started", ""),
                    f"{float(seconds):.2f} s" if seconds is not None else "running",
                )
            )
        return html_table("doc-timeline", ["Stage", "Started", "Took"], rows)

    @admin.display(description="Attempt log")
    def attempt_history(self, obj: Document):
        log = [e for e in (obj.attempt_log or []) if isinstance(e, dict)]
        if not log:
            return "No failed attempt."
        rows = [
            (e.get("at", ""), e.get("stage", ""), e.get("kind", ""), e.get("message", ""))
            for e in log
        ]
        return html_table("doc-attempts", ["At", "Stage", "Kind", "Message"], rows)

    @admin.display(description="Embedding")
    def embedding(self, obj: Document):
        if not obj.embedding_model:
            return "-"
        return f"{obj.embedding_model} ({obj.embedding_dimension} dimensions)"

    @admin.display(description="Vectors")
    def vectors(self, obj: Document):
        """The count, and what is known of it: a purge counts only once the index shows it
        (Pinecone's reads lag its writes), so a pending purge says so instead of 0."""
        rows = [
            ("State", obj.get_vector_state_display()),
            (
                "Count",
                f"{obj.vector_count} (until the index shows the delete)"
                if obj.vector_state == VectorState.PURGE_PENDING
                else obj.vector_count,
            ),
            (
                "Ids written",
                f"chunk indexes 0 to {obj.vector_high - 1}" if obj.vector_high else "none",
            ),
            ("Last write's log sequence number", obj.vector_lsn or "not reported"),
            ("Since", obj.vector_state_at or "-"),
        ]
        return html_table("doc-facts", None, rows, header_column=True)

    @admin.display(description="Embedding cache")
    def embedding_cache(self, obj: Document):
        if obj.status != Document.Status.COMPLETED or not obj.chunk_count:
            return "-"
        return (
            f"{obj.chunks_from_cache} of {obj.chunk_count} chunks came from the cache "
            "(no embedding request)"
        )

    @admin.display(description="Chunks")
    def chunks_link(self, obj: Document):
        url = reverse("admin:documents_document_chunks", args=[obj.pk])
        return format_html('<a href="{}">View the {} chunks</a>', url, obj.chunk_count)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        # TaskResult rows are not tenant-scoped, so only users allowed to see every task
        # result (superusers, or staff given that permission) get the links.
        if obj is not None and request.user.has_perm("django_celery_results.view_taskresult"):
            base = reverse("admin:django_celery_results_taskresult_changelist")
            extra_context["task_links"] = {
                "latest": f"{base}?{urlencode({'task_id': obj.last_task_id})}"
                if obj.last_task_id
                else "",
                "all": f"{base}?{urlencode({'q': str(obj.pk)})}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- actions -------------------------------------------------------------------------

    @admin.action(description="Reprocess selected documents")
    def reprocess(self, request, queryset):
        result = services.documents_reprocess(
            queryset=queryset, actor=request.user, source=Source.ADMIN
        )
        self._report(request, result, "queued for reprocessing", "they are already processing")

    @admin.action(description="Purge the vectors of selected documents")
    def purge_vectors(self, request, queryset):
        result = services.documents_purge_vectors(
            queryset=queryset, actor=request.user, source=Source.ADMIN
        )
        self._report(request, result, "queued for a vector purge", "they are still processing")

    @admin.action(description="Retry selected failed documents")
    def retry_failed(self, request, queryset):
        result = services.documents_retry_failed(
            queryset=queryset, actor=request.user, source=Source.ADMIN
        )
        self._report(request, result, "queued for a retry", "they have not failed")

    @admin.action(description="Cancel selected processing documents")
    def cancel(self, request, queryset):
        result = services.documents_cancel(
            queryset=queryset,
            by=request.user.get_username(),
            actor=request.user,
            source=Source.ADMIN,
        )
        self._report(request, result, "cancelled", "they were not processing")

    def _report(self, request, result, done_text, skipped_reason):
        message = ngettext(
            "%(count)d document %(done)s", "%(count)d documents %(done)s", result.done
        ) % {"count": result.done, "done": done_text}
        if result.skipped:
            message += ngettext(
                ", %(count)d skipped because %(reason)s",
                ", %(count)d skipped because %(reason)s",
                result.skipped,
            ) % {"count": result.skipped, "reason": skipped_reason}
        level = messages.SUCCESS if result.done else messages.WARNING
        self.message_user(request, message + ".", level)

    # --- delete: the stored file and the vectors go too, after commit ----------------------

    def delete_model(self, request, obj):
        services.documents_delete(
            queryset=self.get_queryset(request).filter(pk=obj.pk),
            actor=request.user,
            source=Source.ADMIN,
        )

    def delete_queryset(self, request, queryset):
        services.documents_delete(queryset=queryset, actor=request.user, source=Source.ADMIN)

    def save_model(self, request, obj, form, change):
        # The title is the one field staff can change; the service records the edit.
        title = obj.title
        obj.title = form.initial.get("title", title)
        services.document_update(document=obj, title=title, actor=request.user, source=Source.ADMIN)
