"""The subscribe confirmation mail, sent by a real Celery worker after the request."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.test import Client

from config.celery import app
from contacts.models import Subscription
from contacts.subscribing import form_key


@pytest.fixture
def celery_worker(transactional_db):
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield


def test_it_mails_the_confirmation_from_a_worker(world, celery_worker):
    newsletter = world.extras["list"]

    response = Client().post(
        f"/subscribe/{form_key(newsletter)}/",
        {"email": "zed@example.com", "consent": "on", "website": ""},
    )

    assert response.status_code == 200
    subscription = Subscription.objects.get(contact__email="zed@example.com")
    assert subscription.status == Subscription.Status.UNCONFIRMED
    deadline = time.monotonic() + 15
    while not mail.outbox and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m.to for m in mail.outbox] == [["zed@example.com"]]
    assert "/subscribe/confirm/" in mail.outbox[0].body
