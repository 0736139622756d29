"""The public "do not contact" page: a person puts their own address on the platform-wide
list, after proving from an emailed link that they read that mailbox."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from contacts import selectors
from contacts.models import Suppression, email_sha256
from contacts.tokens import make_token

URL = "/do-not-contact/"


@pytest.fixture
def client(tasks_inline, django_capture_on_commit_callbacks) -> Client:
    """A person on the web. The mail is a task; here what it says is the subject, so it
    runs in place when the request's work commits."""
    person = Client()
    for method in ("get", "post"):
        plain = getattr(person, method)

        def committed(*args, _plain=plain, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return _plain(*args, **kwargs)

        setattr(person, method, committed)
    return person


def _link(message) -> str:
    match = re.search(r"http\S+/do-not-contact/confirm/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def _path(link: str) -> str:
    return link.removeprefix(settings.MISSIVE_BASE_URL)


def _without_csrf(body: bytes) -> str:
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", body.decode())


def test_it_shows_the_form_with_a_honeypot(client, db):
    response = client.get(URL)

    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="email"' in body
    assert 'type="text" name="website"' in body


def test_it_suppresses_platform_wide_after_get_then_post_of_the_link(client, world):
    # given erin, subscribed to a list of account A
    newsletter = world.extras["list"]
    assert selectors.sendable_subscriptions(world.account_a, [newsletter.pk]).count() == 1

    # when she asks, from the public page
    response = client.post(URL, {"email": " Erin@Alpha.test ", "website": ""})

    # then one mail, as Missive, text and HTML, carries a link to the confirmation page
    assert response.status_code == 200
    assert "a confirmation link is on its way" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["erin@alpha.test"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert "Missive" in message.subject
    assert message.alternatives[0][1] == "text/html"
    link = _link(message)
    assert link.startswith(settings.MISSIVE_BASE_URL + "/do-not-contact/confirm/")
    assert link in message.alternatives[0][0]

    # when a mail scanner, or erin, opens the link
    response = client.get(_path(link))

    # then the page shows the address and nothing has changed yet
    assert response.status_code == 200
    assert "erin@alpha.test" in response.content.decode()
    assert "Never contact me" in response.content.decode()
    assert not Suppression.objects.platform().exists()

    # when she presses the button
    response = client.post(_path(link))

    # then her hash is on the platform-wide list, and account A's audience drops her
    assert response.status_code == 200
    entry = Suppression.objects.platform().get()
    assert entry.email_sha256 == email_sha256("erin@alpha.test")
    assert entry.reason == Suppression.Reason.DO_NOT_CONTACT
    assert selectors.sendable_subscriptions(world.account_a, [newsletter.pk]).count() == 0

    # and pressing it again changes nothing
    assert client.post(_path(link)).status_code == 200
    assert Suppression.objects.platform().count() == 1


def test_it_answers_the_same_for_known_and_unknown_addresses(client, world):
    # when a known contact's address and an address nobody knows are given
    known = client.post(URL, {"email": "erin@alpha.test"})
    unknown = client.post(URL, {"email": "nobody@nowhere.test"})

    # then the pages are the same, and both mailboxes get the link
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known.content) == _without_csrf(unknown.content)
    assert sorted(m.to[0] for m in mail.outbox) == ["erin@alpha.test", "nobody@nowhere.test"]


def test_it_pretends_and_sends_nothing_when_the_honeypot_is_filled(client, db):
    response = client.post(URL, {"email": "victim@example.com", "website": "http://spam.test"})

    assert response.status_code == 200
    assert "a confirmation link is on its way" in response.content.decode()
    assert mail.outbox == []


def test_it_refuses_an_invalid_address_without_mail(client, db):
    response = client.post(URL, {"email": "not-an-address"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert mail.outbox == []


def test_it_limits_each_ip_to_five_requests_an_hour(client, db, django_capture_on_commit_callbacks):
    # given five requests from one address in the hour
    for n in range(5):
        assert client.post(URL, {"email": f"p{n}@example.com"}).status_code == 200

    # when a sixth comes
    response = client.post(URL, {"email": "p5@example.com"})

    # then it is refused with 429 on the friendly page, and no mail leaves
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == 5
    # and another client address is still served
    other = Client(REMOTE_ADDR="203.0.113.9")
    with django_capture_on_commit_callbacks(execute=True):
        assert other.post(URL, {"email": "p6@example.com"}).status_code == 200
    assert len(mail.outbox) == 6


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_to_an_altered_token(client, db, method):
    # given a genuine link with one character of its token changed
    client.post(URL, {"email": "erin@alpha.test"})
    path = _path(_link(mail.outbox[0]))
    token = path.rstrip("/").rsplit("/", 1)[1]
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]

    # when it is opened
    response = getattr(client, method)(f"/do-not-contact/confirm/{altered}/")

    # then a friendly 404, and nothing is suppressed
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_it_answers_404_to_an_expired_link(client, db):
    client.post(URL, {"email": "erin@alpha.test"})
    path = _path(_link(mail.outbox[0]))

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(path)

    assert response.status_code == 404
    assert not Suppression.objects.exists()


def test_it_answers_404_to_a_token_made_for_another_link(client, db):
    token = make_token("subscribe", {"email": "erin@alpha.test"})

    response = client.post(f"/do-not-contact/confirm/{token}/")

    assert response.status_code == 404
    assert not Suppression.objects.exists()


def test_the_link_does_not_carry_the_address(client, db):
    from tests.contacts.test_tokens import readable

    client.post(URL, {"email": "erin@alpha.test"})
    token = _path(_link(mail.outbox[0])).strip("/").rsplit("/", 1)[1]

    assert "erin" not in readable(token)


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_to_a_link_of_the_old_format(client, db, method):
    # given a link made when links carried the address, signed
    token = make_token("do-not-contact", {"email": "erin@alpha.test"})

    response = getattr(client, method)(f"/do-not-contact/confirm/{token}/")

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert not Suppression.objects.exists()
