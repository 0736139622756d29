"""Errors as JSON, one shape for DRF's and Django's own."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus Django's own errors, in one shape:
    ``{"detail": "<field>: <message>", "errors": {"<field>": ["<message>", …]}}``."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        first_field, first_errors = next(iter(errors.items()))
        first = first_errors[0] if isinstance(first_errors, list) and first_errors else first_errors
        prefix = "" if first_field == "non_field_errors" else f"{first_field}: "
        response.data = {"detail": f"{prefix}{first}", "errors": errors}
    return response


def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}. See /api/v1/docs/."}, status=404
    )
