"""The audit trail in the admin: read-only for everyone, superusers included (no add,
change or delete), scoped to the staff member's tenants like every other list."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.utils.html import format_html

from documents.admin.tenants import TenantListFilter, TenantScopedAdmin
from documents.audit import ACTIONS
from documents.models import AuditEntry
from documents.selectors import audit_entries_for_user, audit_entries_naming


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return sorted(ACTIONS.items(), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantScopedAdmin):
    list_display = ["at", "action_label", "actor_name", "source", "tenant_name", "count"]
    list_filter = [TenantListFilter, ActionFilter, "source", "at"]
    # The search box takes a document id (every entry naming it), or a user or tenant name.
    search_fields = ["actor_name", "tenant_name"]
    search_help_text = "A document id, or the name of a user or a tenant."
    list_select_related = False
    show_full_result_count = False
    fields = [
        "at",
        "action_label",
        "actor_name",
        "source",
        "tenant_name",
        "count",
        "ids",
        "details",
        "batch",
    ]
    readonly_fields = fields

    def scoped_queryset(self, request):
        return audit_entries_for_user(request.user)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            document_id = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return audit_entries_naming(queryset, document_id), False

    # Append-only: nobody adds, changes or deletes an entry here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Action", ordering="action")
    def action_label(self, obj: AuditEntry):
        return ACTIONS.get(obj.action, obj.action)

    @admin.display(description="Ids")
    def ids(self, obj: AuditEntry):
        shown = obj.object_ids[:200]
        more = len(obj.object_ids) - len(shown)
        return format_html(
            '<code class="doc-audit-ids">{}</code>{}',
            ", ".join(str(i) for i in shown),
            f" … and {more} more" if more > 0 else "",
        )
