"""Errors as JSON, one shape for DRF's and Django's own."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence.")


class ValidationErrorSerializer(ErrorSerializer):
    """A 400: the request is not valid."""

    detail = serializers.CharField(help_text="The first error, as `<field>: <message>`.")
    errors = serializers.DictField(  # type: ignore[assignment]  # a declared field: DRF takes it off the class
        help_text="The messages by field name (`non_field_errors` for the request as a "
        "whole); a field holding a list or a mapping has its messages by index or key."
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus Django's own errors, in one shape:
    ``{"detail": "<field>: <message>", "errors": {"<field>": ["<message>", …]}}``.

    A refusal that only says the value clashes with one already stored (a list of that
    name exists: code ``unique``, as Django's own checks call it) is a 409, in that shape.
    """
    conflict = _codes(exc) == {"unique"}
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ValidationError(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ParseError):
        # A body that is not JSON (or not the form it claims) is a 400 like the others.
        exc = exceptions.ValidationError({"non_field_errors": [response.data["detail"]]})
        response.data = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        first_field, first = _first_error(errors)
        prefix = "" if first_field in ("", "non_field_errors") else f"{first_field}: "
        response.data = {"detail": f"{prefix}{first}", "errors": errors}
        if conflict:
            response.status_code = status.HTTP_409_CONFLICT
    return response


def _codes(exc: Exception) -> set[object]:
    """The codes of every message of a validation error (none for other errors)."""
    if isinstance(exc, DjangoValidationError):
        return (
            {error.code for error in exc.error_list}
            if not hasattr(exc, "error_dict")
            else {error.code for errors in exc.error_dict.values() for error in errors}
        )
    if isinstance(exc, exceptions.ValidationError):
        return set(_leaves(exc.get_codes()))
    return set()


def _leaves(codes: object) -> list[object]:
    if isinstance(codes, dict):
        return [leaf for value in codes.values() for leaf in _leaves(value)]
    if isinstance(codes, list):
        return [leaf for value in codes for leaf in _leaves(value)]
    return [codes]


def _first_error(errors: object, field: str = "") -> tuple[str, str]:
    """The first message and the field it belongs to, down nested errors: a list field
    names its item (``lists.0``), a mapping its key (``mapping.2``)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            if value:
                return _first_error(value, f"{field}.{key}" if field else str(key))
    elif isinstance(errors, list):
        for value in errors:
            if value:
                return _first_error(value, field)
    elif errors:
        return field, str(errors)
    return field, "This request is not valid."


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "too_large"


# Exempt, or a POST to a path that does not exist would meet the CSRF check before the
# 404, and answer a login form's HTML error page to an API client.
@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}. See /api/v1/docs/."}, status=404
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal: in JSON under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"CSRF Failed: {reason}"}, status=403)
    return csrf.csrf_failure(request, reason=reason)
