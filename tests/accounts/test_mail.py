"""Missive's own mail (accounts/mail.py): one way to write a notice, sent by a task that
tries again what may pass, gives up at once on what cannot, and records its last failure.

The mail server here is a real one on loopback (aiosmtpd) whose answers the test writes;
the task's tries run in place, their delays not waited for (a real worker waits them in
tests/accounts/test_mail_worker.py)."""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Callable

import pytest
from anymail.exceptions import AnymailAPIError
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail import BadHeaderError
from django.db import transaction
from django.test import Client

from accounts import services
from accounts.mail import SUBJECT_LENGTH, compose_notice, is_transient, retry_delay, send_notice
from accounts.models import Invitation, MailFailure
from tests.factories import make_invitation
from tests.workers import SmtpSink

TEMPLATE = "privacy/email/your_data_link"
CONTEXT = {
    "email": "erin@alpha.test",
    "url": "http://testserver/your-data/abc/",
    "lifetime_hours": 24,
}


class AnsweringSink(SmtpSink):
    """A mail server that answers each RCPT from the test's script, then accepts."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.tries = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.tries += 1
        if self.answers:
            return self.answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def mail_server(start_smtp_server, settings) -> Callable[..., AnsweringSink]:
    """Starts a real SMTP server that answers RCPT with the given replies (then accepts),
    and points Django's mail at it."""

    def start(*answers: str) -> AnsweringSink:
        server = start_smtp_server(AnsweringSink(list(answers)))
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_TIMEOUT = 5
        return server.handler

    return start


def _send(capture, **options: object) -> None:
    with capture(execute=True):
        send_notice(TEMPLATE, CONTEXT, to=["erin@alpha.test"], subject="Your link", **options)


# --- Writing a notice -----------------------------------------------------------------------


def test_it_writes_a_notice_from_its_text_and_html_templates(settings):
    notice = compose_notice(
        TEMPLATE, CONTEXT, to=["erin@alpha.test"], subject="Your data:\r\n  the link\tyou asked"
    )

    assert notice.kind == "your_data_link"
    assert notice.subject == "Your data: the link you asked"
    assert notice.from_email == settings.DEFAULT_FROM_EMAIL
    assert notice.to == ["erin@alpha.test"]
    assert CONTEXT["url"] in notice.body
    assert f'href="{CONTEXT["url"]}"' in notice.html
    message = notice.message()
    assert message.alternatives[0][1] == "text/html"


def test_it_bounds_the_subject_and_sends_from_the_sender_given():
    notice = compose_notice(
        TEMPLATE,
        CONTEXT,
        to=["erin@alpha.test"],
        subject="Confirm " + "very " * 100 + "long",
        from_email="Letters <news@letters.example>",
    )

    assert len(notice.subject) == SUBJECT_LENGTH
    assert notice.subject.endswith("…")
    assert notice.from_email == "Letters <news@letters.example>"


def test_it_hands_the_rendered_notice_to_a_worker_once_the_transaction_commits(
    db, enqueued, django_capture_on_commit_callbacks
):
    # when a notice is asked for inside a transaction
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        send_notice(TEMPLATE, CONTEXT, to=["erin@alpha.test"], subject="Your link")
        # then nothing leaves before the commit
        assert enqueued == []

    # and after it the task gets the whole message, rendered
    [(name, [notice, hook], _)] = enqueued
    assert name == "accounts.send_notice"
    assert hook is None
    assert notice["to"] == ["erin@alpha.test"]
    assert CONTEXT["url"] in notice["body"]
    assert CONTEXT["url"] in notice["html"]


def test_a_rolled_back_request_sends_nothing(db, enqueued, django_capture_on_commit_callbacks):
    def failing_request() -> None:
        with transaction.atomic():
            send_notice(TEMPLATE, CONTEXT, to=["erin@alpha.test"], subject="Your link")
            raise RuntimeError("the request failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        failing_request()

    assert enqueued == []


# --- What is tried again ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (socket.gaierror(-3, "Temporary failure in name resolution"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPConnectError(421, b"Too many connections"), True),
        (smtplib.SMTPDataError(451, b"4.3.0 Try again later"), True),
        (smtplib.SMTPSenderRefused(452, b"4.3.1 Insufficient storage", "a@b.test"), True),
        (smtplib.SMTPRecipientsRefused({"a@b.test": (450, b"4.2.1 Busy")}), True),
        (smtplib.SMTPRecipientsRefused({"a@b.test": (550, b"5.1.1 Unknown user")}), False),
        (smtplib.SMTPDataError(554, b"5.7.1 Rejected"), False),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), False),
        (smtplib.SMTPNotSupportedError("SMTPUTF8 not supported"), False),
        (BadHeaderError("Header values can't contain newlines"), False),
        (AnymailAPIError("Service unavailable", status_code=503), True),
        (AnymailAPIError("Slow down", status_code=429), True),
        (AnymailAPIError("No answer"), True),
        (AnymailAPIError("Invalid sender", status_code=422), False),
        (ValueError("a fault in the message"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_it_tries_again_only_what_may_pass(error, transient):
    assert is_transient(error) is transient


def test_the_delay_doubles_and_stays_under_the_brokers_redelivery(settings):
    settings.MISSIVE_NOTICE_RETRY_DELAY = 30

    delays = [retry_delay(attempt) for attempt in range(1, 9)]

    assert delays == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_it_tries_again_after_a_4xx_answer_and_delivers(
    db, mail_server, tasks_inline, django_capture_on_commit_callbacks
):
    # given a mail server that says "later" twice
    server = mail_server("451 4.7.1 Try again later", "451 4.7.1 Try again later")

    # when a notice is sent
    _send(django_capture_on_commit_callbacks)

    # then the third try delivers it, and no failure is recorded
    assert server.tries == 3
    [message] = server.messages
    assert message.rcpt_tos == ("erin@alpha.test",)
    assert b"Your link" in message.raw
    assert not MailFailure.objects.exists()


def test_it_gives_up_at_once_on_a_5xx_answer_and_runs_the_hook(
    world, mail_server, tasks_inline, django_capture_on_commit_callbacks
):
    # given an invitation and a mail server that does not know the address
    invitation, _ = make_invitation(world.account_a, "gone@example.net")
    server = mail_server("550 5.1.1 <gone@example.net>: User unknown")

    # when its mail is sent, with the invitation's failure hook
    with django_capture_on_commit_callbacks(execute=True):
        send_notice(
            "accounts/email/invitation",
            {"invitation": invitation, "url": "http://testserver/x/", "lifetime_days": 7},
            to=["gone@example.net"],
            subject="Invited",
            on_failure=("accounts.invitation_not_sent", [invitation.pk, invitation.token_hash]),
        )

    # then one try only, recorded for the operator, and the inviter sees why
    assert server.tries == 1
    assert server.messages == []
    failure = MailFailure.objects.get()
    assert (failure.kind, failure.recipients, failure.attempts) == (
        "invitation",
        "gone@example.net",
        1,
    )
    assert failure.error == "550 5.1.1 <gone@example.net>: User unknown"
    invitation.refresh_from_db()
    assert invitation.email_error == failure.error
    assert tasks_inline == ["accounts.send_notice", "accounts.invitation_not_sent"]


def test_it_records_the_last_failure_after_the_last_try(
    db, mail_server, tasks_inline, django_capture_on_commit_callbacks, settings, caplog
):
    # given a mail server that says "later" every time
    settings.MISSIVE_NOTICE_MAX_ATTEMPTS = 4
    server = mail_server(*["450 4.2.1 Mailbox busy"] * 10)

    # when a notice is sent
    with caplog.at_level(logging.WARNING, logger="accounts.mail"):
        _send(django_capture_on_commit_callbacks)

    # then it was tried as often as allowed, then recorded, and logged without the address
    assert server.tries == 4
    failure = MailFailure.objects.get()
    assert failure.attempts == 4
    assert failure.error == "450 4.2.1 Mailbox busy"
    assert failure.subject == "Your link"
    [record] = [r for r in caplog.records if r.name == "accounts.mail"]
    assert record.levelno == logging.WARNING
    assert "4 attempts" in record.getMessage()
    assert "erin@alpha.test" not in record.getMessage()


def test_it_gives_up_at_once_on_a_header_that_cannot_be_written(
    db, tasks_inline, django_capture_on_commit_callbacks
):
    _send(django_capture_on_commit_callbacks, from_email="Missive <a@b.test>\nBcc: x@y.test")

    assert mail.outbox == []
    failure = MailFailure.objects.get()
    assert failure.attempts == 1
    assert "newlines" in failure.error


# --- The invitation's hook, and the operator's view ---------------------------------------------


def test_a_failure_of_an_old_link_leaves_a_resent_invitation_alone(world):
    # given an invitation sent again since (its link, and so its hash, changed)
    invitation, _ = make_invitation(world.account_a, "late@example.com")
    old_hash = "0" * 64

    # when the old mail's last try fails
    marked = services.invitation_mail_failed(
        invitation_id=invitation.pk, token_hash=old_hash, error="421 Service not available"
    )

    # then the invitation does not show the old mail's error
    assert marked == 0
    assert Invitation.objects.get(pk=invitation.pk).email_error == ""


def test_operators_see_failures_in_the_admin_and_cannot_edit_them(db):
    failure = MailFailure.objects.create(
        kind="data_request_notice",
        recipients="alice@alpha.test",
        subject="[Missive] Alpha: a data request (Erasure)",
        error="Connection refused",
        attempts=8,
    )
    operator = get_user_model().objects.create_superuser(
        email="ops@missive.test", password="Corr3ct-horse!"
    )
    staff = Client()
    staff.force_login(operator, backend="allauth.account.auth_backends.AuthenticationBackend")

    found = staff.get("/admin/accounts/mailfailure/", {"q": "alice@alpha.test"})
    edit = staff.post(
        f"/admin/accounts/mailfailure/{failure.pk}/change/", {"error": "nothing happened"}
    )

    assert found.status_code == 200
    assert "Connection refused" in found.content.decode()
    assert edit.status_code == 403
    assert MailFailure.objects.get(pk=failure.pk).error == "Connection refused"
