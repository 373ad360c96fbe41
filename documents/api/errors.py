"""One JSON error shape for the whole API: ``{"error": {"code", "message"}}``.

``code`` is one of ``ERROR_CODES`` (the schema lists them, so a client can switch on it);
``message`` is a sentence for a person. The schema documents every 4xx an operation can give
through ``error_responses``; ``not_found`` answers a path under ``/api/`` that matches no route
with the same JSON instead of Django's HTML page."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from documents.errors import (
    ApplicationError,
    FailureKind,
    InvalidUpload,
    NotAMember,
    TransientError,
)

# Every code the API answers with. Those of DRF's exceptions keep DRF's names.
ERROR_CODES = (
    "invalid",  # 400: a field or parameter is wrong; the message names it
    "parse_error",  # 400: the body could not be parsed
    "not_authenticated",  # 401: no credentials
    "authentication_failed",  # 401: wrong credentials
    "not_a_member",  # 403: a tenant the caller does not belong to, or none at all
    "permission_denied",  # 403
    "not_found",  # 404: no such document among the caller's tenants, or no such path
    "missing_file",  # 404: the document exists but its stored file is gone
    "method_not_allowed",  # 405
    "not_acceptable",  # 406
    "too_large",  # 413: over DOCUMENT_MAX_UPLOAD_BYTES
    "over_limit",  # 413: the preflight estimate is over one of the tenant's limits
    "unsupported_type",  # 415: the file's bytes are not a type the pipeline reads
    "unsupported_media_type",  # 415: the request body's own content type
    "throttled",  # 429: over a rate in API_THROTTLE_RATES; Retry-After says when to come back
    "internal",  # 500
    "unavailable",  # 503: the file store did not answer; worth trying again
)

_DESCRIPTIONS = {
    400: "Invalid input (`invalid`, `parse_error`); the message names the field.",
    401: "No credentials (`not_authenticated`) or wrong ones (`authentication_failed`).",
    403: "A tenant the caller is not a member of (`not_a_member`).",
    404: (
        "No such document among the caller's tenants, or a malformed id (`not_found`); for a "
        "download, also a stored file that is gone (`missing_file`)."
    ),
    413: (
        "The upload is over the size limit (`too_large`), or its estimate is over one of the "
        "tenant's page or cost limits and the tenant refuses such documents (`over_limit`); "
        "the message names the limit and the estimate."
    ),
    415: (
        "The file is not a PDF, DOCX, text, Markdown, PNG, JPEG or TIFF file, judged from its "
        "bytes (`unsupported_type`), or the body is not multipart (`unsupported_media_type`)."
    ),
    429: "Over a throttle rate (`throttled`); `Retry-After` gives the seconds to wait.",
    503: (
        "A service did not answer (`unavailable`): the file store, or for a search the "
        "embedding service or the vector index; try again later."
    ),
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error answers an operation gives, all in the one shape."""
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code])
        for code in statuses
    }


def error_response(code: str, message: str, http_status: int) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=http_status)


def _code_and_status(exc: ApplicationError) -> tuple[str, int]:
    # An ApplicationError's kind is a document failure kind; the ones raised before a document
    # exists need the API's own word.
    if isinstance(exc, NotAMember):
        return "not_a_member", status.HTTP_403_FORBIDDEN
    if isinstance(exc, InvalidUpload) and exc.kind == FailureKind.CORRUPT:
        # InvalidUpload's default kind: a request the API refuses, not a damaged document.
        return "invalid", status.HTTP_400_BAD_REQUEST
    if isinstance(exc, TransientError):
        return "unavailable", status.HTTP_503_SERVICE_UNAVAILABLE
    if exc.kind in ERROR_CODES:
        return exc.kind, exc.http_status
    return "internal", exc.http_status


def _message(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            f"{field}: {_message(messages)}" if field != "non_field_errors" else _message(messages)
            for field, messages in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        code, http_status = _code_and_status(exc)
        return error_response(code, exc.message, http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        code, message = "invalid", _message(exc.detail)
    elif isinstance(exc, APIException):
        code, message = exc.default_code, _message(exc.detail)
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    else:  # Http404 and PermissionDenied, which DRF turned into its own exceptions
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = "not_found" if response.status_code == 404 else "permission_denied"
        message = str(detail)
    if response.status_code == status.HTTP_403_FORBIDDEN and code == "not_authenticated":
        response.status_code = status.HTTP_401_UNAUTHORIZED
    if code not in ERROR_CODES:  # an exception DRF knows and this API never raised before
        code = "internal" if response.status_code >= 500 else "invalid"
    response.data = {"error": {"code": code, "message": message}}
    return response


def not_found(request, exception=None):
    """``handler404``: the API's JSON 404 under ``/api/``, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "There is nothing at this address."}},
            status=404,
        )
    return page_not_found(request, exception)
