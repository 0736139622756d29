"""A notice survives a mail server that is down when it is sent: a real Celery worker,
over the real broker, tries it, waits, and tries again until a real SMTP server on
loopback takes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from celery.contrib.testing.worker import start_worker
from celery.signals import task_retry

from accounts.mail import SEND_TASK
from accounts.models import MailFailure
from config.celery import app
from privacy import data_requests
from tests.campaigns.conftest import SmtpSink

ERIN = "erin@alpha.test"


@pytest.fixture
def celery_worker(transactional_db):
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield


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


@pytest.fixture
def smtp_later(free_port) -> Iterator[tuple[SmtpSink, Callable[[], None]]]:
    """An SMTP server for ``free_port``, off until the test starts it."""
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port, ready_timeout=10)
    started: list[Controller] = []

    def start() -> None:
        controller.start()
        started.append(controller)

    yield sink, start
    for running in started:
        running.stop()


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_data_request_notice_arrives_once_the_mail_server_is_back(
    world, settings, free_port, first_try_failed, smtp_later, celery_worker
):
    # given Missive's mail pointed at a port where no server listens yet
    sink, start_server = smtp_later
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port
    settings.EMAIL_TIMEOUT = 5
    settings.MISSIVE_NOTICE_RETRY_DELAY = 1

    # when a person uses their data rights at account A, and its owner is to be told
    data_requests.data_request_access(contact=world.extras["contact"])

    # then the worker's first try fails on the closed port
    assert first_try_failed.wait(timeout=60), "the notice was never put back for a retry"
    assert len(sink) == 0

    # and once the server is up, a later try delivers the notice
    start_server()
    assert _wait_for(lambda: len(sink) >= 1), "the notice never arrived"
    [received] = sink.messages
    assert received.rcpt_tos == ("alice@alpha.test",)
    message = message_from_bytes(received.raw)
    assert "a data request" in str(make_header(decode_header(message["Subject"])))
    assert ERIN not in received.raw.decode(errors="replace")
    assert not MailFailure.objects.exists()
