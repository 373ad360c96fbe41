"""The ingestion API: upload a document, list and follow documents of the caller's tenants."""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from documents import services, storage
from documents.api.errors import error_response, error_responses
from documents.api.serializers import (
    DocumentDetailSerializer,
    DocumentFilterSerializer,
    DocumentSerializer,
    IngestDuplicateSerializer,
    IngestResponseSerializer,
    IngestSerializer,
)
from documents.api.throttles import AnonThrottle, IngestThrottle, UserThrottle
from documents.audit import Source
from documents.errors import FailureKind, PermanentError
from documents.selectors import documents_for_user
from documents.uploads import DOCX, JPEG, MARKDOWN, PDF, PNG, TEXT, TIFF

# Multipart framing around the file; a request larger than the limit by more than this is
# refused from its Content-Length before a byte of the body is read.
_MULTIPART_SLACK_BYTES = 64 * 1024


class IngestView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UserThrottle, AnonThrottle, IngestThrottle]

    @extend_schema(
        request={"multipart/form-data": IngestSerializer},
        responses={
            202: IngestResponseSerializer,
            200: IngestDuplicateSerializer,
            **error_responses(400, 401, 403, 413, 415, 429, 503),
        },
        summary="Upload a document for ingestion",
        description="202: a new document, queued (or held, when its estimate is over one of "
        "the tenant's limits), with its preflight estimate (from the file's structure; the "
        "estimating stage replaces it with one from every page). 200: the tenant already has a "
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
        form = IngestSerializer(data=request.data)
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
    parameters=[DocumentFilterSerializer],
    responses={200: DocumentSerializer(many=True), **error_responses(400, 401, 404, 429)},
    summary="List the documents of your tenants, newest first",
)
class DocumentListView(generics.ListAPIView):
    serializer_class = DocumentSerializer

    def get_queryset(self):
        queryset = documents_for_user(self.request.user).select_related("tenant")
        filters = DocumentFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        if "status" in filters.validated_data:
            queryset = queryset.filter(status=filters.validated_data["status"])
        if "tenant" in filters.validated_data:
            queryset = queryset.filter(tenant__slug=filters.validated_data["tenant"])
        if "low_quality" in filters.validated_data:
            queryset = queryset.filter(low_quality=filters.validated_data["low_quality"])
        return queryset.order_by("-created_at")


_DOCUMENT_ID = OpenApiParameter(
    "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The document's id"
)


@extend_schema(
    parameters=[_DOCUMENT_ID],
    responses={200: DocumentDetailSerializer, **error_responses(401, 404, 429)},
    summary="A document's status, stage, progress and failure",
)
class DocumentDetailView(generics.RetrieveAPIView):
    serializer_class = DocumentDetailSerializer
    # The URL matches any string; a malformed id is a 404 like an unknown one.
    lookup_url_kwarg = "pk"

    def get_queryset(self):
        # Another tenant's document answers 404, as if it did not exist.
        return documents_for_user(self.request.user).select_related("tenant")


_FILE_TYPES = (PDF, DOCX, TEXT, MARKDOWN, PNG, JPEG, TIFF)


@extend_schema(
    parameters=[
        _DOCUMENT_ID,
        OpenApiParameter(
            "Location",
            OpenApiTypes.URI,
            OpenApiParameter.HEADER,
            response=[302],
            required=True,
            description="The presigned URL.",
        ),
    ],
    responses={
        (200, media_type): OpenApiResponse(
            response=OpenApiTypes.BINARY, description="The file, streamed (local storage)."
        )
        for media_type in _FILE_TYPES
    }
    | {
        302: OpenApiResponse(
            description=(
                "A redirect to a presigned URL that expires after "
                "S3_PRESIGNED_EXPIRE_SECONDS (S3 storage)."
            )
        ),
        **error_responses(401, 404, 429),
    },
    summary="Download a document's file",
)
class DocumentDownloadView(generics.GenericAPIView):
    lookup_url_kwarg = "pk"

    def get_queryset(self):
        return documents_for_user(self.request.user)

    def get(self, request, pk):
        document = self.get_object()
        if not document.storage_key:
            return error_response(
                "missing_file", "This document has no stored file.", status.HTTP_404_NOT_FOUND
            )
        try:
            return storage.download_response(
                document.storage_key,
                filename=document.original_filename,
                content_type=document.content_type or "application/octet-stream",
            )
        except PermanentError as exc:
            if exc.kind != FailureKind.MISSING_FILE:
                raise
            return error_response("missing_file", exc.message, status.HTTP_404_NOT_FOUND)
