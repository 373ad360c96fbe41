"""``GET /api/audit/``: the audit trail of the caller's tenants, newest first, paginated."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError

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


@extend_schema(
    summary="The audit trail",
    description="Every staff action on documents and tenants (upload, reprocess, retry, "
    "cancel, purge, delete, edit, release, reconcile, tenant and membership changes): who, "
    "when, from where (admin, api, command, schedule), on which ids and how many. Only the "
    "entries of your tenants; a bulk action is one entry per tenant with every id.",
    parameters=[
        OpenApiParameter("document", str, description="Only entries naming this document id"),
        OpenApiParameter("action", str, enum=sorted(ACTIONS)),
        OpenApiParameter("source", str, enum=AuditEntry.Source.values),
        OpenApiParameter("tenant", str, description="A tenant slug"),
    ],
)
class AuditListView(generics.ListAPIView):
    serializer_class = AuditEntrySerializer

    def get_queryset(self):
        entries = audit_entries_for_user(self.request.user)
        params = self.request.query_params
        if params.get("document"):
            try:
                document_id = uuid.UUID(params["document"])
            except ValueError:
                raise ValidationError({"document": "Not a document id."}) from None
            entries = audit_entries_naming(entries, document_id)
        if params.get("action"):
            if params["action"] not in ACTIONS:
                raise ValidationError(
                    {"action": f"Unknown action; use one of {', '.join(sorted(ACTIONS))}."}
                )
            entries = entries.filter(action=params["action"])
        if params.get("source"):
            entries = entries.filter(source=params["source"])
        if params.get("tenant"):
            entries = entries.filter(tenant__slug=params["tenant"])
        return entries.order_by("-at", "-id")
