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
    DocumentSerializer,
    IngestRequestSerializer,
    IngestResponseSerializer,
)
from documents.api.throttles import AnonThrottle, IngestThrottle, UserThrottle
from documents.models import Status
from documents.selectors import documents_for_user

# Multipart framing around the file; a request larger than the limit by more than this is
# refused from its Content-Length before a byte of the body is read.
_MULTIPART_SLACK_BYTES = 64 * 1024


class IngestView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UserThrottle, AnonThrottle, IngestThrottle]

    @extend_schema(
        request={"multipart/form-data": IngestRequestSerializer},
        responses={202: IngestResponseSerializer},
        summary="Upload a document for ingestion",
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
        document = services.document_create(
            tenant=tenant,
            uploaded_file=form.validated_data.get("file"),
            uploaded_by=request.user,
            title=form.validated_data.get("title", ""),
        )
        return Response(
            {
                "message": "Processing started",
                "task_id": document.last_task_id,
                "document_id": str(document.pk),
                "status_url": request.build_absolute_uri(f"/api/documents/{document.pk}/"),
                "async": True,
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
    serializer_class = DocumentSerializer

    def get_queryset(self):
        # Another tenant's document answers 404, as if it did not exist.
        return documents_for_user(self.request.user).select_related("tenant")
