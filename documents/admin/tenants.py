"""Tenant and Membership admins, and the pieces every scoped admin shares."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils.translation import ngettext

from documents import reconcile, services
from documents.audit import Source
from documents.models import Membership, Reconciliation, Tenant
from documents.selectors import memberships_for_user, tenants_for_user


class TenantScopedAdmin(admin.ModelAdmin):
    """Non-superusers see only rows of their tenants: ``get_queryset`` is the scoped selector,
    so the change list, the change view (another tenant's id is "not found") and every action
    (Django filters the selected ids through ``get_queryset``) are scoped at once."""

    def scoped_queryset(self, request):
        raise NotImplementedError

    def get_queryset(self, request):
        return self.scoped_queryset(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


class SuperuserEditsOnly:
    """Tenants and memberships decide who sees what: only superusers change them."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class TenantListFilter(admin.SimpleListFilter):
    """Lists only the user's tenants. A crafted ``?tenant=`` of another tenant filters the
    already scoped queryset, so it shows nothing."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name) for pk, name in tenants_for_user(request.user).values_list("pk", "name")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not str(value).isdigit():
            return queryset.none()
        return queryset.filter(tenant_id=int(value))


@admin.register(Tenant)
class TenantAdmin(SuperuserEditsOnly, TenantScopedAdmin):
    list_display = [
        "name",
        "slug",
        "max_pages_per_document",
        "max_cost_per_document",
        "over_limit_action",
        "last_reconciliation",
        "created_at",
    ]
    readonly_fields = ["vector_namespace", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["reconcile_vectors", "reconcile_and_repair_vectors"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "vector_namespace", "created_at"]}),
        (
            "Upload limits",
            {
                "fields": ["max_pages_per_document", "max_cost_per_document", "over_limit_action"],
                "description": "Judged on each upload's preflight estimate. A document over a "
                "limit is refused (the upload answers with the limit and the estimate) or "
                "held until an admin releases it from the document list.",
            },
        ),
    ]

    def scoped_queryset(self, request):
        latest = Reconciliation.objects.filter(tenant=OuterRef("pk")).order_by("-started_at")
        return tenants_for_user(request.user).annotate(
            last_outcome=Subquery(latest.values("outcome")[:1]),
            last_reconciled=Subquery(latest.values("started_at")[:1]),
        )

    @admin.display(description="Last reconciliation", ordering="last_reconciled")
    def last_reconciliation(self, obj: Tenant):
        if not getattr(obj, "last_reconciled", None):
            return "never"
        label = dict(Reconciliation.Outcome.choices).get(obj.last_outcome, obj.last_outcome)
        return f"{label} ({obj.last_reconciled:%Y-%m-%d %H:%M})"

    # The comparison lists a whole namespace: it runs in a worker, not in the request.
    @admin.action(description="Reconcile the vectors with the database (report only)")
    def reconcile_vectors(self, request, queryset):
        self._queue(request, queryset, repair=False)

    @admin.action(
        description="Reconcile and repair the vectors (delete orphans, re-index missing)",
        permissions=["change"],
    )
    def reconcile_and_repair_vectors(self, request, queryset):
        self._queue(request, queryset, repair=True)

    def _queue(self, request, queryset, *, repair: bool):
        count = reconcile.tenants_reconcile_later(
            tenants=queryset, repair_drift=repair, source=Source.ADMIN, actor=request.user
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d tenant queued for reconciliation%(repair)s; the dashboard shows "
                "the result.",
                "%(count)d tenants queued for reconciliation%(repair)s; the dashboard shows "
                "the result.",
                count,
            )
            % {"count": count, "repair": " and repair" if repair else ""},
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        services.tenant_save(tenant=obj, actor=request.user, source=Source.ADMIN)

    def delete_model(self, request, obj):
        services.tenants_delete(
            queryset=Tenant.objects.filter(pk=obj.pk), actor=request.user, source=Source.ADMIN
        )

    def delete_queryset(self, request, queryset):
        services.tenants_delete(queryset=queryset, actor=request.user, source=Source.ADMIN)

    def get_deleted_objects(self, objs, request):
        # Documents are PROTECTed from a bare tenant delete; tenants_delete removes them first,
        # so the confirmation page must not call them a reason to refuse.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, perms_needed, []


@admin.register(Membership)
class MembershipAdmin(SuperuserEditsOnly, TenantScopedAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", TenantListFilter]
    autocomplete_fields = ["tenant"]

    def scoped_queryset(self, request):
        return memberships_for_user(request.user).select_related("user", "tenant")

    def save_model(self, request, obj, form, change):
        services.membership_save(membership=obj, actor=request.user, source=Source.ADMIN)

    def delete_model(self, request, obj):
        services.memberships_delete(
            queryset=self.get_queryset(request).filter(pk=obj.pk),
            actor=request.user,
            source=Source.ADMIN,
        )

    def delete_queryset(self, request, queryset):
        services.memberships_delete(queryset=queryset, actor=request.user, source=Source.ADMIN)
