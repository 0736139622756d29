"""Input serializers that take JSON types as the schema states them.

DRF is lenient by design: a CharField takes ``5`` as ``"5"``, a BooleanField takes
``"yes"`` and ``0``, an IntegerField takes ``"7"``. The API documents JSON types, and a
client sending the wrong one has a bug it should hear about, so request bodies are read
strictly: a value of the wrong JSON type is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rest_framework import serializers
from rest_framework.relations import ManyRelatedField, PrimaryKeyRelatedField

if TYPE_CHECKING:
    # The mixin goes before a Serializer, which has the fields and reads the values.
    _SerializerBase = serializers.Serializer
else:
    _SerializerBase = object

# Field class → the JSON types its value may have, and how to name them to the client.
JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (PrimaryKeyRelatedField, (int,), "an integer id"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float, str), "a number"),
    (serializers.MultipleChoiceField, (list,), "a list"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.DateField, (str,), "a string"),
    (serializers.ListField, (list,), "a list"),
    (ManyRelatedField, (list,), "a list"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.JSONField, (object,), "a value"),
]


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` cannot be meant for ``field``, or None if its JSON type fits."""
    if value is None:
        return None  # allow_null decides
    for field_class, types, name in JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types and object not in types:
                return f"Expected {name}, got a boolean."
            if not isinstance(value, types):
                return f"Expected {name}, got {type(value).__name__}."
            return None
    return None


# For the serializers of request bodies: each value must have the JSON type its field
# documents, items of lists and values of objects included. (A comment, not a docstring:
# drf-spectacular would show a docstring as the description of every such serializer.)
class StrictJSONMixin(_SerializerBase):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            for field in self._writable_fields:
                name = field.field_name  # set once the field is bound, as these are
                if name is None or name not in data:
                    continue
                message = _deep_type_error(field, data[name])
                if message:
                    errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _deep_type_error(field: serializers.Field, value: Any) -> str | None:
    message = json_type_error(field, value)
    if message or value is None:
        return message
    child = getattr(field, "child", None) or getattr(field, "child_relation", None)
    if child is not None and isinstance(value, list | dict):
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            message = _deep_type_error(child, item)
            if message:
                return message
    return None
