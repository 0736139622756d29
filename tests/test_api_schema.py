"""The API answers as its OpenAPI schema says.

Schemathesis reads the schema drf-spectacular generates (/api/v1/schema/), and for every
operation sends requests it derives from it, valid and invalid, with the key of an owner
of account A, to the Django application itself. Every check runs: no server error, only
documented status codes and content types, bodies that match their schema, invalid
requests refused and valid ones accepted, and the authentication the schema declares
enforced. Examples are few and derandomized, so a run is quick and repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection

from accounts.roles import Role
from tests.factories import SAMPLES, World, make_api_key, png_bytes

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())


@pytest.fixture(autouse=True)
def _one_connection_for_the_test():
    """The requests run inside the test's transaction, as with Django's test client: a
    real WSGI handler would close the connection after each response."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def owner_key(world: World) -> str:
    return make_api_key(world.account_a, role=Role.OWNER, name="Schema check key")[1]


def _existing_objects(world: World) -> dict[str, object]:
    """Body fields whose valid values depend on what the account holds, which a schema
    cannot say: an id must name one of the account's objects, an attribute must be
    declared. A valid request gets real ones; an invalid one is left as generated."""
    return {
        "lists": [world.extras["list"].pk],
        "campaign": world.extras["campaign"].pk,
        "template": world.extras["template"].pk,
        "segment": world.extras["segment"].pk,
        "contact": world.extras["contact"].pk,
        "contact_id": world.extras["contact"].pk,
        # A journey's trigger names a list, tag, segment… of the account's.
        "trigger": "subscribed",
        "trigger_config": {"list": world.extras["list"].pk},
        "goal": {"segment": world.extras["segment"].pk},
        "attributes": {world.extras["attribute"].name: "Springfield"},
        # A segment's conditions name the account's attributes, lists and tags.
        "definition": {
            "match": "any",
            "conditions": [
                {"field": f"attributes.{world.extras['attribute'].name}", "op": "is_empty"},
                {"field": "list", "op": "subscribed", "value": world.extras["list"].pk},
            ],
        },
    }


def _valid_at(case, location: ParameterLocation) -> bool:
    return case.meta is not None and not case.meta.is_negative_at(location)


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    # Each example is a few real requests against PostgreSQL; the account's data is made
    # once per operation, and each example may change it, as a client would.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_it_answers_as_its_schema_says(case, world, owner_key):
    # given account A's data, and a request schemathesis derived from the schema
    excluded = []
    if _valid_at(case, ParameterLocation.BODY) and isinstance(case.body, dict):
        for field, value in _existing_objects(world).items():
            if field in case.body:
                case.body[field] = value
    if (
        case.operation.label == "POST /api/v1/images/"
        and _valid_at(case, ParameterLocation.BODY)
        and isinstance(case.body, dict)
    ):
        # A schema says "a binary file", not "an image": a valid upload is a real one.
        case.body["file"] = png_bytes(700, 20)
        # Schemathesis cannot check bytes against a schema, so it would take the edited
        # body for an invalid one and expect a refusal.
        excluded.append(negative_data_rejection)
    if _valid_at(case, ParameterLocation.PATH) and case.path_parameters:
        # A generated id names nothing, except by chance: ids depend on how many rows the
        # tests before made, and one that happens to be account A's object (a campaign
        # that cannot be started yet) would make the run depend on the order of the tests.
        for keyword, value in case.path_parameters.items():
            if keyword in SAMPLES and value == SAMPLES[keyword](world):
                case.path_parameters[keyword] = value + 10**9
    if _valid_at(case, ParameterLocation.QUERY) and case.query:
        # A page cursor is whatever the previous page's `next` holds: any other is refused.
        case.query.pop("after", None)
        case.query.pop("cursor", None)
        # A rule OpenAPI cannot state, given in the parameter's description: a status
        # filter applies to one list.
        if case.operation.label == "GET /api/v1/contacts/" and case.query.get("status"):
            case.query["list"] = case.query.get("list") or world.extras["list"].pk
    if (
        case.operation.label == "POST /api/v1/events/"
        and _valid_at(case, ParameterLocation.BODY)
        and isinstance(case.body, dict)
    ):
        # An event is of one of the account's contacts, and its properties' names are
        # letters, digits and "_" (OpenAPI 3.0 cannot say so of an object's keys).
        if "email" in case.body:
            case.body["email"] = world.extras["contact"].email
        if isinstance(case.body.get("properties"), dict):
            case.body["properties"] = {
                f"p{n}": value for n, value in enumerate(case.body["properties"].values())
            }
        # The key is given once: in the header or the body (both, they must match).
        if case.headers and "Idempotency-Key" in case.headers:
            case.body.pop("idempotency_key", None)

    # when it is sent with an owner's key, then the answer is what the schema promises
    case.call_and_validate(
        headers={"Authorization": f"Bearer {owner_key}"}, excluded_checks=excluded
    )


def test_it_generates_a_valid_schema_without_warnings(tmp_path):
    # drf-spectacular warns of what it cannot describe (an untyped field, a clash of
    # names): each would be a part of the schema that says less than the API does
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", tmp_path / "api.yaml")

    assert "/api/v1/lists/{list_id}/" in (tmp_path / "api.yaml").read_text()
