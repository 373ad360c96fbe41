"""The back-office: every change list, change view and action is scoped to the tenants the
staff member belongs to (superusers see everything), through ``selectors``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import ngettext

from documents import services
from documents.models import Chunk, Document, Membership, Status, Tenant
from documents.selectors import documents_for_user, memberships_for_user, tenants_for_user

_BADGE_COLOURS = {
    Status.PROCESSING: "#2563eb",
    Status.COMPLETED: "#15803d",
    Status.FAILED: "#b91c1c",
}


class TenantScopedAdmin(admin.ModelAdmin):
    """Non-superusers see only rows of their tenants, and only superusers may add/delete."""

    def scoped_queryset(self, request):
        raise NotImplementedError

    def get_queryset(self, request):
        return self.scoped_queryset(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "vector_namespace", "created_at"]
    readonly_fields = ["vector_namespace", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def scoped_queryset(self, request):
        return tenants_for_user(request.user)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]
    autocomplete_fields = ["tenant"]

    def scoped_queryset(self, request):
        return memberships_for_user(request.user).select_related("user", "tenant")

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["index", "page_span", "token_count", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Document)
class DocumentAdmin(TenantScopedAdmin):
    list_display = [
        "title",
        "tenant",
        "status_badge",
        "stage",
        "progress",
        "failure_kind",
        "chunk_count",
        "created_at",
    ]
    list_filter = ["status", "failure_kind", "tenant", "created_at"]
    search_fields = ["title", "original_filename", "=sha256"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "id",
        "tenant",
        "uploaded_by",
        "original_filename",
        "content_type",
        "size_bytes",
        "sha256",
        "storage_key",
        "status",
        "stage",
        "pages_total",
        "pages_done",
        "chunks_total",
        "chunks_done",
        "chunk_count",
        "failure_kind",
        "failure_message",
        "attempts",
        "attempt_log",
        "stage_timings",
        "queued_at",
        "started_at",
        "finished_at",
        "claimed_by",
        "heartbeat_at",
        "last_task_id",
        "embedding_model",
        "embedding_dimension",
        "created_at",
        "updated_at",
    ]
    fields = ["title", *readonly_fields]
    inlines = [ChunkInline]
    actions = ["reprocess", "retry_failed"]

    def scoped_queryset(self, request):
        return documents_for_user(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Document):
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 8px;border-radius:8px">{}</span>',
            _BADGE_COLOURS.get(obj.status, "#555"),
            obj.get_status_display(),
        )

    @admin.display(description="Progress")
    def progress(self, obj: Document):
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress>',
            obj.progress_percent,
            obj.progress_percent,
        )

    @admin.action(description="Reprocess selected documents")
    def reprocess(self, request, queryset):
        result = services.documents_reprocess(queryset=queryset)
        self._report(request, result, "queued for reprocessing", "already processing")

    @admin.action(description="Retry selected failed documents")
    def retry_failed(self, request, queryset):
        result = services.documents_retry_failed(queryset=queryset)
        self._report(request, result, "queued for a retry", "not failed")

    def _report(self, request, result, done_text, skipped_text):
        message = ngettext(
            "%(count)d document %(done)s", "%(count)d documents %(done)s", result.done
        ) % {"count": result.done, "done": done_text}
        if result.skipped:
            message += f", {result.skipped} skipped because they are {skipped_text}"
        self.message_user(request, message + ".", messages.SUCCESS)
