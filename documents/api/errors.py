"""One JSON error shape for the whole API: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from documents.errors import ApplicationError


def error_response(code: str, message: str, http_status: int) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=http_status)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return error_response(exc.kind, exc.message, exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail:
        message = str(detail["detail"])
        code = getattr(detail["detail"], "code", "error")
    else:
        message = "; ".join(
            f"{field}: {' '.join(str(m) for m in msgs) if isinstance(msgs, list) else msgs}"
            for field, msgs in (detail.items() if isinstance(detail, dict) else [("", detail)])
        )
        code = "invalid"
    if response.status_code == status.HTTP_403_FORBIDDEN and code == "not_authenticated":
        response.status_code = status.HTTP_401_UNAUTHORIZED
    response.data = {"error": {"code": str(code), "message": message}}
    return response
