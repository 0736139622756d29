"""Tenant isolation, proven for every URL of the project at once (see tests/tenancy.py)."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from accounts.models import Membership
from accounts.views.decorators import account_required
from tests.factories import World
from tests.tenancy import project_routes, sweep, victim_fingerprint


def _api_client(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_it_reveals_and_changes_nothing_of_another_account(world: World, charlie_client):
    # given the victim's data as it stands
    before = victim_fingerprint(world)

    # when the outsider requests every URL of the project, in the browser and the API
    problems = sweep(world, charlie_client, _api_client(world.charlie_key_secret))

    # then every answer is a refusal that shows nothing, and nothing changed
    assert problems == []
    assert victim_fingerprint(world) == before


def test_it_sweeps_the_api_and_the_html_views(db):
    routes = list(project_routes())
    assert any(r.is_api for r in routes)
    assert any(not r.is_api and r.keywords for r in routes)


# A view that forgets the account scope, planted to prove the sweep catches it.
@account_required()
def _leaky_member(request, membership_id: int) -> HttpResponse:
    membership = Membership.objects.get(pk=membership_id)  # unscoped on purpose
    return HttpResponse(membership.user.email)


_leaky_member.__module__ = "accounts.views.planted"

urlpatterns = [
    path("planted/<int:membership_id>/", _leaky_member, name="planted_member"),
    path("", include("config.urls")),
]


@pytest.mark.urls("tests.test_tenancy")
def test_it_catches_a_view_that_forgets_its_scope(world: World, charlie_client):
    with override_settings(ROOT_URLCONF="tests.test_tenancy"):
        problems = sweep(
            world,
            charlie_client,
            _api_client(world.charlie_key_secret),
            urlconf="tests.test_tenancy",
        )

    assert any("planted_member" in p and "200 for an outsider" in p for p in problems)
    assert any("planted_member" in p and "alpha.test" in p for p in problems)
