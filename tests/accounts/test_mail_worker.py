"""A notice survives a mail server that is down when it is sent: a real Celery worker,
over the real broker, tries it, waits, and tries again until a real SMTP server on
loopback takes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from celery.signals import task_retry

from accounts.mail import SEND_TASK
from accounts.models import MailFailure
from privacy import data_requests
from tests.workers import wait_until

ERIN = "erin@alpha.test"


@pytest.fixture
def first_try_failed() -> Iterator[threading.Event]:
    """Set once the worker has put a notice back for another try."""
    failed = threading.Event()

    def on_retry(sender=None, **kwargs) -> None:
        if getattr(sender, "name", None) == SEND_TASK:
            failed.set()

    task_retry.connect(on_retry, weak=False)
    yield failed
    task_retry.disconnect(on_retry)


def test_a_data_request_notice_arrives_once_the_mail_server_is_back(
    world, settings, first_try_failed, start_smtp_server, celery_worker
):
    # given Missive's mail pointed at a port where no server listens yet
    server = start_smtp_server(start=False)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    settings.MISSIVE_NOTICE_RETRY_DELAY = 1

    # when a person uses their data rights at account A, and its owner is to be told
    data_requests.data_request_access(contact=world.extras["contact"])

    # then the worker's first try fails on the closed port
    wait_until(first_try_failed.is_set, timeout=60, message="the notice to be put back for a retry")
    assert len(server) == 0

    # and once the server is up, a later try delivers the notice
    server.start()
    wait_until(lambda: len(server) >= 1, timeout=60, message="the notice to arrive")
    [received] = server.messages
    assert received.rcpt_tos == ("alice@alpha.test",)
    message = message_from_bytes(received.raw)
    assert "a data request" in str(make_header(decode_header(message["Subject"])))
    assert ERIN not in received.raw.decode(errors="replace")
    assert not MailFailure.objects.exists()
