"""Logging in and out, password change and reset."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from tests.factories import PASSWORD


def _logged_in(world_user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"login": world_user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def test_it_logs_in_with_the_email_and_out_with_a_post(world):
    client = _logged_in(world.alice)
    assert client.get("/").status_code == 200

    client.post("/accounts/logout/")

    assert client.get("/").url.startswith("/accounts/login/")


def test_it_refuses_a_wrong_password_with_a_message(world):
    response = Client().post("/accounts/login/", {"login": "alice@alpha.test", "password": "nope"})

    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_it_ends_other_sessions_when_the_password_changes(world):
    # given alice logged in on two browsers
    laptop = _logged_in(world.alice)
    phone = _logged_in(world.alice)

    # when she changes her password on the laptop
    response = laptop.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "N3w-passw0rd!", "password2": "N3w-passw0rd!"},
    )
    assert response.status_code == 302

    # then the laptop stays logged in and the phone is logged out
    assert laptop.get("/").status_code == 200
    assert phone.get("/").url.startswith("/accounts/login/")


def test_it_resets_a_forgotten_password_by_email(world):
    client = Client()
    client.post("/accounts/password/reset/", {"email": "alice@alpha.test"})

    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[-1] if "testserver" in link else "/" + link.split("/", 3)[3]
    page = client.get(path, follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else path

    weak = client.post(form_url, {"password1": "abcdefgh", "password2": "abcdefgh"})
    assert "a digit" in weak.content.decode()

    client.post(form_url, {"password1": "N3w-passw0rd!", "password2": "N3w-passw0rd!"})
    world.alice.refresh_from_db()
    assert world.alice.check_password("N3w-passw0rd!")


def test_it_does_not_say_whether_an_address_has_a_login(db):
    response = Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
