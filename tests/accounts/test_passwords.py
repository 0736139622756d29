"""The password rule holds wherever a password is set."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account, Membership, User
from tests.factories import PASSWORD, make_invitation, make_user

WEAK = [
    ("password", ["a digit", "a special character", "too common"]),
    ("abcdefgh", ["a digit", "a special character"]),
    ("abcd1234", ["a special character"]),
    ("12345678!", ["a letter"]),
    ("Ab1!xyz", ["at least 8 characters"]),
]


def _signup(client, password: str, email: str = "new@example.com"):
    return client.post(
        "/accounts/signup/",
        {"company": "Newco", "email": email, "password1": password},
    )


@pytest.mark.parametrize(("password", "reasons"), WEAK)
def test_it_refuses_a_weak_password_at_sign_up_naming_the_rule(client, db, password, reasons):
    response = _signup(client, password)

    assert response.status_code == 200
    body = response.content.decode()
    for reason in reasons:
        assert reason in body
    assert not User.objects.filter(email="new@example.com").exists()
    assert not Account.objects.filter(name="Newco").exists()


def test_it_accepts_a_strong_password_and_creates_the_account_and_its_owner(client, db):
    response = _signup(client, "Tr1cky!pass")

    # the address is proven before the account is used
    assert response.url == "/accounts/confirm-email/"
    assert mail.outbox[0].to == ["new@example.com"]
    user = User.objects.get(email="new@example.com")
    assert user.check_password("Tr1cky!pass")
    membership = Membership.objects.get(user=user)
    assert membership.account.name == "Newco"
    assert membership.role == "owner"


def test_it_hashes_with_argon2_in_production():
    from config.settings import base

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_it_refuses_a_weak_password_in_createsuperuser(db, monkeypatch):
    # createsuperuser validates DJANGO_SUPERUSER_PASSWORD unless told not to
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "abcd1234")
    with pytest.raises(CommandError, match="special character"):
        call_command(
            "createsuperuser", "--noinput", "--email", "root@example.com", stdout=io.StringIO()
        )
    assert not User.objects.filter(email="root@example.com").exists()

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Tr1cky!pass")
    call_command(
        "createsuperuser", "--noinput", "--email", "root@example.com", stdout=io.StringIO()
    )
    assert User.objects.get(email="root@example.com").is_superuser


def test_it_refuses_a_weak_password_in_changepassword(db, monkeypatch):
    user = make_user("ops@example.com")
    answers = iter(["abcd1234", "abcd1234"] * 3)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="Aborting"):
        call_command(
            "changepassword", "ops@example.com", stdout=io.StringIO(), stderr=io.StringIO()
        )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_it_refuses_a_weak_password_in_the_admin(db, client):
    admin = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    client.force_login(admin, backend="allauth.account.auth_backends.AuthenticationBackend")

    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "staff@example.com",
            "usable_password": "true",
            "password1": "abcd1234",
            "password2": "abcd1234",
        },
    )

    assert response.status_code == 200
    assert "special character" in response.content.decode()
    assert not User.objects.filter(email="staff@example.com").exists()

    user = make_user("staff2@example.com")
    response = client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": "12345678!", "password2": "12345678!"},
    )
    assert response.status_code == 200
    assert "a letter" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_it_refuses_a_weak_password_when_changing_it(alice_client, world):
    response = alice_client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "abcdefgh", "password2": "abcdefgh"},
    )

    assert response.status_code == 200
    assert "a digit" in response.content.decode()
    world.alice.refresh_from_db()
    assert world.alice.check_password(PASSWORD)


def test_it_refuses_a_weak_password_when_accepting_an_invitation(client, world):
    _invitation, token = make_invitation(world.account_a, "newcomer@example.com")

    response = client.post(f"/invitations/{token}/", {"password": "Ab1!xyz"})

    assert response.status_code == 200
    assert "at least 8 characters" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_it_names_every_missing_character_class():
    from django.core.exceptions import ValidationError

    from accounts.validators import CharacterClassValidator

    with pytest.raises(ValidationError) as error:
        CharacterClassValidator().validate("")
    message = error.value.messages[0]
    assert "a letter" in message
    assert "a digit" in message
    assert "a special character" in message
    CharacterClassValidator().validate("Tr1cky!pass")


def test_it_offers_no_bypass_in_interactive_createsuperuser(db, monkeypatch):
    # given an operator who types a weak password, would happily bypass the rule,
    # then types a strong one
    passwords = iter(["abcd1234", "abcd1234", "Tr1cky!pass", "Tr1cky!pass"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(passwords))
    monkeypatch.setattr(
        "builtins.input", lambda prompt="": "y" if "Bypass" in prompt else "root@example.com"
    )
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    err = io.StringIO()

    # when createsuperuser runs interactively
    call_command("createsuperuser", interactive=True, stdout=io.StringIO(), stderr=err)

    # then the weak one was refused (never bypassed) and the strong one kept
    assert "special character" in err.getvalue()
    user = User.objects.get(email="root@example.com")
    assert user.check_password("Tr1cky!pass")
