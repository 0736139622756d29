"""Missive's own mail: invitations, confirmation links, the notices a customer or a person
must get (not campaigns, which have their own pipeline in campaigns/sending.py).

Guarantees, each one a test in tests/accounts/test_mail.py:

- One way to write a notice: ``<template>.txt`` and ``<template>.html`` rendered with one
  context, a subject on one line and of bounded length, from DEFAULT_FROM_EMAIL unless
  the caller names another sender.
- ``send_notice`` renders in the caller's transaction and hands the rendered message to
  the task ``accounts.send_notice`` once that transaction commits: the worker reads
  nothing, so a notice says what was true when it was asked for, and a rolled-back
  request sends nothing.
- The task retries what may pass (no connection, a timeout, a 4xx answer, a server that
  hung up) with a doubling delay, and gives up at once on what cannot (a 5xx answer, a
  header that cannot be written). Its last failure is a ``MailFailure`` row in the admin
  and a warning in the log (without the addresses), and runs the caller's failure hook.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from anymail.exceptions import AnymailAPIError
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import MailFailure
from accounts.tasking import enqueue

logger = logging.getLogger(__name__)

SEND_TASK = "accounts.send_notice"
SUBJECT_LENGTH = 200
# A retry waits in the broker: Redis hands a message that waited longer than its
# visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS, an hour) to a second worker, so no
# single wait comes near it.
MAX_RETRY_DELAY = 30 * 60
# Answers worth another try from an email provider's API: slow, or asking to slow down.
_TRANSIENT_STATUS = (408, 429)


@dataclass(frozen=True)
class Notice:
    """A rendered message, as plain data: what the task is handed."""

    kind: str
    subject: str
    body: str
    html: str
    to: list[str]
    from_email: str

    def message(self) -> EmailMultiAlternatives:
        message = EmailMultiAlternatives(
            subject=self.subject, body=self.body, from_email=self.from_email, to=self.to
        )
        message.attach_alternative(self.html, "text/html")
        return message

    def as_data(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Notice:
        return cls(**data)  # type: ignore[arg-type]  # the task's JSON, made by as_data


def one_line(subject: str, limit: int = SUBJECT_LENGTH) -> str:
    """A subject as a header may carry it: on one line, at most ``limit`` characters."""
    text = " ".join(subject.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def compose_notice(
    template: str,
    context: Mapping[str, object],
    *,
    to: Sequence[str],
    subject: str,
    from_email: str = "",
) -> Notice:
    """The notice written from ``<template>.txt`` and ``<template>.html`` (``template`` is
    a path without its extension, e.g. ``privacy/email/data_request_notice``)."""
    if not to:
        raise ValueError("A notice needs at least one recipient.")
    return Notice(
        kind=template.rsplit("/", 1)[-1],
        subject=one_line(subject),
        body=render_to_string(f"{template}.txt", dict(context)),
        html=render_to_string(f"{template}.html", dict(context)),
        to=list(to),
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
    )


def send_notice(
    template: str,
    context: Mapping[str, object],
    *,
    to: Sequence[str],
    subject: str,
    from_email: str = "",
    on_failure: tuple[str, Sequence[object]] | None = None,
) -> Notice:
    """Render the notice now and have a worker send it once this transaction commits.

    ``on_failure`` is ``(task name, args)``: if the last attempt fails, that task runs
    with ``args`` followed by the error's text (say, to show the error to whoever asked
    for the mail). Its args travel as JSON."""
    notice = compose_notice(template, context, to=to, subject=subject, from_email=from_email)
    hook = [on_failure[0], list(on_failure[1])] if on_failure else None
    enqueue(SEND_TASK, notice.as_data(), hook)
    return notice


# --- The sending, in the worker -----------------------------------------------------------


def deliver(notice: Notice) -> None:
    """One attempt, through Django's mail backend; raises what the backend raised."""
    notice.message().send(fail_silently=False)


def is_transient(error: BaseException) -> bool:
    """Whether the same message, sent again later, may pass."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # Nobody accepted it (a partial refusal does not raise): worth another try if
        # one of them was told "later".
        return any(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPException | BadHeaderError):
        return False  # refused for what the message is (SMTPNotSupportedError, …)
    if isinstance(error, AnymailAPIError):
        status = error.status_code
        return status is None or status >= 500 or status in _TRANSIENT_STATUS
    # The network: refused, reset, unreachable, timed out (requests' errors among them).
    return isinstance(error, OSError)


def retry_delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
    return min(settings.MISSIVE_NOTICE_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def describe(error: BaseException) -> str:
    """The error as an operator or an inviter can read it: the server's own words."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = {_answer(code, reply) for code, reply in error.recipients.values()}
        text = "; ".join(sorted(answers)) or "Recipients refused"
    elif isinstance(error, smtplib.SMTPResponseException):
        text = _answer(error.smtp_code, error.smtp_error)
    else:
        text = str(error) or type(error).__name__
    return text[:1000]


def _answer(code: int, reply: bytes | str) -> str:
    words = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(f"{code} {words}".split())


def notice_failed(
    notice: Notice,
    *,
    error: BaseException,
    attempts: int,
    on_failure: tuple[str, Sequence[object]] | None = None,
) -> MailFailure:
    """The last attempt failed: record it for the operator and run the caller's hook."""
    text = describe(error)
    with transaction.atomic():
        failure = MailFailure.objects.create(
            kind=notice.kind,
            recipients=", ".join(notice.to),
            subject=notice.subject,
            error=text,
            attempts=attempts,
        )
        if on_failure:
            name, args = on_failure
            enqueue(name, *args, text)
    # The addresses stay in the admin's record, out of the logs.
    logger.warning(
        "Notice %s not sent after %d attempt%s (mail failure %s): %s",
        notice.kind,
        attempts,
        "" if attempts == 1 else "s",
        failure.pk,
        type(error).__name__,
    )
    return failure
