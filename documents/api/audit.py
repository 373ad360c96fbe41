"""``GET /api/audit/``: the audit trail of the caller's tenants, newest first, paginated."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from documents.api.errors import error_responses
from documents.api.serializers import FormSerializer
from documents.audit import ACTIONS
from documents.models import AuditEntry
from documents.selectors import audit_entries_for_user, audit_entries_naming


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    tenant = serializers.CharField(source="tenant_name")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "source",
            "tenant",
            "action",
            "count",
            "object_ids",
            "details",
            "batch",
        ]


class AuditFilterSerializer(FormSerializer):
    """The list's query parameters, checked like a body: a bad one is a 400 naming it."""

    document = serializers.UUIDField(
        required=False, help_text="Only entries naming this document id."
    )
    action = serializers.ChoiceField(choices=sorted(ACTIONS), required=False)
    source = serializers.ChoiceField(choices=AuditEntry.Source.choices, required=False)
    tenant = serializers.SlugField(required=False, help_text="A tenant's slug.")


@extend_schema(
    summary="The audit trail",
    description="Every staff action on documents and tenants (upload, reprocess, retry, "
    "cancel, purge, delete, edit, release, reconcile, tenant and membership changes): who, "
    "when, from where (admin, api, command, schedule), on which ids and how many. Only the "
    "entries of your tenants; a bulk action is one entry per tenant with every id.",
    parameters=[AuditFilterSerializer],
    responses={200: AuditEntrySerializer(many=True), **error_responses(400, 401, 404, 429)},
)
class AuditListView(generics.ListAPIView):
    serializer_class = AuditEntrySerializer

    def get_queryset(self):
        entries = audit_entries_for_user(self.request.user)
        filters = AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        if "document" in wanted:
            entries = audit_entries_naming(entries, wanted["document"])
        if "action" in wanted:
            entries = entries.filter(action=wanted["action"])
        if "source" in wanted:
            entries = entries.filter(source=wanted["source"])
        if "tenant" in wanted:
            entries = entries.filter(tenant__slug=wanted["tenant"])
        return entries.order_by("-at", "-id")
