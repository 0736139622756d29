"""The subscribe confirmation mail, sent by a real Celery worker after the request."""

from __future__ import annotations

from django.core import mail
from django.test import Client

from contacts.models import Subscription
from contacts.subscribing import form_key
from tests.workers import wait_until


def test_it_mails_the_confirmation_from_a_worker(world, celery_worker):
    newsletter = world.extras["list"]

    response = Client().post(
        f"/subscribe/{form_key(newsletter)}/",
        {"email": "zed@example.com", "consent": "on", "website": ""},
    )

    assert response.status_code == 200
    subscription = Subscription.objects.get(contact__email="zed@example.com")
    assert subscription.status == Subscription.Status.UNCONFIRMED
    wait_until(lambda: mail.outbox, timeout=15, message="the confirmation mail")
    assert [m.to for m in mail.outbox] == [["zed@example.com"]]
    assert "/subscribe/confirm/" in mail.outbox[0].body
