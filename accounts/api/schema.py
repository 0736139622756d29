"""The OpenAPI schema of the API, as drf-spectacular builds it, plus the errors every
operation can answer.

Views declare their own successes and the refusals only they make (409 for a state
conflict, 503 for an unreachable mail server). The errors that come from the shared
machinery are added here, once, so the schema cannot forget one: 400 for invalid input,
401 and 403 from authentication and roles, 404 wherever a path names an object (a
cursor that is not one a list gave is invalid input: 400), 413 for uploads, 415 for a
body of another media type, 429 where a throttle applies. Each in the shape
accounts/api/errors.py gives it.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from accounts.api.errors import ErrorSerializer, ValidationErrorSerializer
from accounts.models import validate_single_line

INVALID = OpenApiResponse(
    ValidationErrorSerializer,
    description="The request is not valid (a field of the body, or a query parameter: "
    "each may be given once): `errors` names each one at fault.",
)
UNAUTHENTICATED = OpenApiResponse(
    ErrorSerializer, description="No API key, or one that is unknown or revoked."
)
FORBIDDEN = OpenApiResponse(
    ErrorSerializer,
    description="The key's role does not allow this (or, with a login, two-factor "
    "authentication is missing or the CSRF token is).",
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer,
    description="No such object in this account (another account's answers the same).",
)
DUPLICATE = OpenApiResponse(
    ValidationErrorSerializer,
    description="The value clashes with one already stored (a name or an address that "
    "must be unique): `errors` names the field.",
)
TOO_LARGE = OpenApiResponse(ErrorSerializer, description="The request body is too large.")
UNSUPPORTED = OpenApiResponse(
    ErrorSerializer, description="The body is not of a media type this endpoint reads."
)
THROTTLED = OpenApiResponse(
    ErrorSerializer, description="Too many requests: try again after `Retry-After` seconds."
)


# What DRF's CharField refuses beyond lengths, as patterns (Python ``re`` semantics, which
# the field's own ``strip()`` shares for whitespace): a NUL character always; a control
# character in a name (``validate_single_line``); a value that is blank once trimmed,
# unless blank is allowed. drf-spectacular offers the empty string beside a pattern, so
# the patterns of fields that may be blank match only non-empty values.
NO_NUL = r"^[^\x00]+$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
SINGLE_LINE = r"^[^\x00-\x1f\x7f]+$"
SINGLE_LINE_NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def _text_pattern(field: serializers.CharField) -> str:
    single_line = validate_single_line in field.validators
    if field.allow_blank:
        return SINGLE_LINE if single_line else NO_NUL
    return SINGLE_LINE_NOT_BLANK if single_line else NOT_BLANK


class MissiveAutoSchema(AutoSchema):
    def _map_serializer_field(
        self, field: serializers.Field, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            schema["pattern"] = _text_pattern(field)
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            # DRF reads an empty query value (``?status=``) as one left out.
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        responses = operation["responses"]
        for code, response in self._shared_errors(operation).items():
            responses.setdefault(str(code), self._get_response_for_code(response, str(code)))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _shared_errors(self, operation: dict[str, Any]) -> dict[int, OpenApiResponse]:
        # Any request may be refused as invalid: a query parameter given twice, at least.
        errors = {400: INVALID, 401: UNAUTHENTICATED, 403: FORBIDDEN}
        body = operation.get("requestBody", {}).get("content", {})
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            errors[404] = NOT_FOUND
        if "multipart/form-data" in body:
            errors[413] = TOO_LARGE
        if body:
            errors[415] = UNSUPPORTED
        if self.view.get_throttles():
            errors[429] = THROTTLED
        return errors
