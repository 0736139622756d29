"""Two-factor authentication: TOTP for a user, and an owner's rule for the account."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.test import Client

from tests.factories import PASSWORD


def _enable_totp(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def _code(secret: str) -> str:
    """What an authenticator app shows now."""
    counter = next(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counter))


def test_it_asks_for_a_code_after_the_password_when_totp_is_on(world):
    secret = _enable_totp(world.alice)
    client = Client()

    response = client.post("/accounts/login/", {"login": "alice@alpha.test", "password": PASSWORD})
    assert response.status_code == 302
    assert "/accounts/2fa/authenticate/" in response.url
    assert "_auth_user_id" not in client.session

    response = client.post("/accounts/2fa/authenticate/", {"code": _code(secret)})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_it_sends_members_without_totp_to_set_it_up_when_the_owner_requires_it(
    alice_client, bob_client, world
):
    # given the owner requires two-factor authentication
    alice_client.post("/settings/security/", {"require_mfa": "on"})
    world.account_a.refresh_from_db()
    assert world.account_a.require_mfa

    # then bob, without an authenticator app, is sent to set one up
    response = bob_client.get("/team/")
    assert response.status_code == 302
    assert response.url == "/accounts/2fa/totp/activate/"
    # the setup page itself is reachable (after allauth asks him to confirm who he is)
    setup = bob_client.get(response.url, follow=True)
    assert setup.status_code == 200
    assert setup.redirect_chain[-1][0].startswith("/accounts/")

    # and once he has one, he gets through
    _enable_totp(world.bob)
    assert bob_client.get("/team/").status_code == 200


def test_it_lets_only_an_owner_change_the_rule(world):
    world.bob_membership.role = "admin"
    world.bob_membership.save()
    bob = Client()
    bob.force_login(world.bob, backend="allauth.account.auth_backends.AuthenticationBackend")

    bob.post("/settings/security/", {"require_mfa": "on"})

    world.account_a.refresh_from_db()
    assert not world.account_a.require_mfa
    assert Authenticator.objects.count() == 0


def test_it_pauses_two_factor_codes_after_five_wrong_ones(world):
    secret = _enable_totp(world.alice)
    client = Client()
    client.post("/accounts/login/", {"login": "alice@alpha.test", "password": PASSWORD})

    for _ in range(5):
        response = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
        assert "Incorrect code" in response.content.decode()

    # even the right code is refused now
    response = client.post("/accounts/2fa/authenticate/", {"code": _code(secret)})
    assert "Too many wrong codes" in response.content.decode()
    assert "_auth_user_id" not in client.session
