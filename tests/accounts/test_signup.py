"""Sign-up: the same answer, the same work and one mail for an address that has a login
and one that has not; and the name asked for, shown on the dashboard."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.test import Client

from accounts.models import Membership, User

STRONG = "Tr1cky!pass"


class CountingHasher(MD5PasswordHasher):
    """The test suite's hasher, counting how many passwords it hashed."""

    algorithm = "counting_md5"
    calls = 0

    def encode(self, password: str, salt: str) -> str:
        type(self).calls += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.accounts.test_signup.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


def _signup(email: str, **extra: str):
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"company": "Newco", "email": email, "password1": STRONG, **extra},
        follow=True,
    )
    return client, response


def _page(response, email: str) -> str:
    """The page as a visitor sees it, the address and the per-visit CSRF token aside."""
    body = response.content.decode().replace(email, "ADDRESS")
    return re.sub(r'"X-CSRFToken": "[^"]+"', "", body)


def test_it_answers_a_known_and_an_unknown_address_alike(world, counting_hasher):
    # when someone signs up with a new address, and someone with alice's
    _new_client, new = _signup("newcomer@example.com")
    hashes_for_new = counting_hasher.calls
    mails_for_new = len(mail.outbox)
    _known_client, known = _signup(world.alice.email)

    # then both land on the same "check your inbox" page
    assert new.redirect_chain == known.redirect_chain == [("/accounts/confirm-email/", 302)]
    assert _page(new, "newcomer@example.com") == _page(known, world.alice.email)
    # and both did the same work: one password hashed, one mail sent
    assert hashes_for_new == 1
    assert counting_hasher.calls - hashes_for_new == 1
    assert mails_for_new == 1
    assert len(mail.outbox) == 2
    # and no second login or account was made for alice
    assert User.objects.filter(email=world.alice.email).count() == 1
    assert not Membership.objects.filter(user=world.alice, account__name="Newco").exists()


def test_it_tells_the_owner_of_a_known_address_how_to_get_in(world):
    _client, _response = _signup(world.alice.email)

    (message,) = mail.outbox
    assert message.to == [world.alice.email]
    assert message.subject == "[Missive] Someone tried to sign up with your address"
    assert "http://testserver/accounts/login/" in message.body
    assert "http://testserver/accounts/password/reset/" in message.body
    assert STRONG not in message.body


def test_it_keeps_the_name_given_at_sign_up_and_welcomes_by_it(db):
    # given someone who signs up with their name
    client, _response = _signup("ada@example.com", name="  Ada   Lovelace ")
    user = User.objects.get(email="ada@example.com")
    assert user.first_name == "Ada Lovelace"

    # when they confirm their address
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body)
    client.post(link.group(1))
    dashboard = client.get("/", follow=True)

    # then the dashboard greets them by name
    assert "Welcome, Ada Lovelace" in dashboard.content.decode()


def test_it_welcomes_by_address_when_no_name_is_known(alice_client, world):
    world.alice.first_name = world.alice.last_name = ""
    world.alice.save()

    dashboard = alice_client.get("/", follow=True)

    assert f"Welcome, {world.alice.email}" in dashboard.content.decode()


def test_it_refuses_a_name_with_control_characters(db):
    _client, response = _signup("eve@example.com", name="Eve\x07")

    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    assert not User.objects.filter(email="eve@example.com").exists()
