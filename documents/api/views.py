"""The ingestion API: upload a document, list and follow documents of the caller's tenants."""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from documents import services
from documents.api.errors import error_response
from documents.api.serializers import (
    DocumentDetailSerializer,
    DocumentSerializer,
    IngestDuplicateSerializer,
    IngestRequestSerializer,
    IngestResponseSerializer,
)
from documents.audit import Source
from documents.models import Status
from documents.selectors import documents_for_user

# Multipart framing around the file; a request larger than the limit by more than this is
# refused from its Content-Length before a byte of the body is read.
_MULTIPART_SLACK_BYTES = 64 * 1024


class IngestView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": IngestRequestSerializer},
        responses={202: IngestResponseSerializer, 200: IngestDuplicateSerializer},
        summary="Upload a document for ingestion",
        description="202: a new document, queued (or held, when its estimate is over one of "
        "the tenant's limits), with its preflight estimate. 200: the tenant already has a "
        "file with these bytes (SHA-256); nothing was stored or queued, and the answer names "
        "the existing document -- send keep_duplicate=true to keep a new copy anyway. Only "
        "the caller's tenant is compared. 413: over the size limit, or over a tenant's page "
        "or cost limit when the tenant refuses such documents (the message names the limit "
        "and the estimate).",
    )
    def post(self, request):
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.DOCUMENT_MAX_UPLOAD_BYTES
        if declared > limit + _MULTIPART_SLACK_BYTES:
            return error_response(
                "too_large",
                f"The upload is {filesizeformat(declared)}; the limit is {filesizeformat(limit)}.",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        form = IngestRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        tenant = services.tenant_for_upload(
            user=request.user, tenant_slug=form.validated_data.get("tenant")
        )
        upload = services.document_upload(
            tenant=tenant,
            uploaded_file=form.validated_data.get("file"),
            uploaded_by=request.user,
            title=form.validated_data.get("title", ""),
            keep_duplicate=form.validated_data["keep_duplicate"],
            source=Source.API,
        )
        document = upload.document
        common = {
            "document_id": str(document.pk),
            "status_url": request.build_absolute_uri(f"/api/documents/{document.pk}/"),
            "status": document.status,
            "stage": document.stage,
            "estimate": document.estimate,
        }
        if upload.duplicate:
            # 200, not 409: nothing went wrong, the file is there and this is where. A client
            # follows status_url exactly as after a 202.
            return Response(
                {
                    "message": f"{tenant.name} already has this file (same SHA-256) as "
                    f"{document.title!r}; nothing was uploaded. Send keep_duplicate=true "
                    "to keep a new copy.",
                    "duplicate": True,
                    **common,
                },
                status=status.HTTP_200_OK,
            )
        return Response(
            {
                "message": "Held: " + document.held_reason
                if document.held_reason
                else "Processing started",
                "task_id": document.last_task_id,
                "async": True,
                "held_reason": document.held_reason,
                "duplicate": False,
                **common,
            },
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, enum=[s.value for s in Status]),
        OpenApiParameter("tenant", str, description="A tenant slug"),
    ]
)
class DocumentListView(generics.ListAPIView):
    serializer_class = DocumentSerializer

    def get_queryset(self):
        queryset = documents_for_user(self.request.user).select_related("tenant")
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in Status.values:
                raise ValidationError(
                    {"status": f"Unknown status {wanted!r}; use one of {', '.join(Status.values)}."}
                )
            queryset = queryset.filter(status=wanted)
        tenant = self.request.query_params.get("tenant")
        if tenant:
            queryset = queryset.filter(tenant__slug=tenant)
        return queryset.order_by("-created_at")


class DocumentDetailView(generics.RetrieveAPIView):
    serializer_class = DocumentDetailSerializer

    def get_queryset(self):
        # Another tenant's document answers 404, as if it did not exist.
        return documents_for_user(self.request.user).select_related("tenant")
