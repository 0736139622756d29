"""Transports: how a batch of campaign messages leaves Missive.

Transports share one interface (``open``, ``send``, ``close``) and report each message
as sent, to retry (4xx, timeouts, throttling) or failed (the server's permanent answer).
Whatever goes wrong with one message is that message's outcome; only a connection that
cannot go on (``ConnectionLost``) ends the batch, whose rest is retried later.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.utils import DNS_NAME
from django.utils.module_loading import import_string

from accounts.models import Account
from campaigns.messages import MessageFactory, Outgoing
from config.env import parse_email_url


@dataclass(frozen=True)
class Result:
    outcome: str  # SENT, RETRY or FAILED
    detail: str = ""  # the provider's message id when sent, the reason otherwise

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


class ConnectionLost(Exception):
    """The transport cannot go on with this batch; what is left of it is retried later."""


class Transport(Protocol):
    def open(self) -> None: ...

    def send(self, factory: MessageFactory, message: Outgoing) -> Result: ...

    def close(self) -> None: ...


class SmtpTransport:
    """Plain SMTP, one connection per batch, MIME written by ``MessageFactory.as_bytes``."""

    def __init__(self, options: Mapping[str, object]) -> None:
        self.host = str(options["EMAIL_HOST"])
        self.port = int(options["EMAIL_PORT"])
        self.username = str(options.get("EMAIL_HOST_USER") or "")
        self.password = str(options.get("EMAIL_HOST_PASSWORD") or "")
        self.use_tls = bool(options.get("EMAIL_USE_TLS"))
        self.use_ssl = bool(options.get("EMAIL_USE_SSL"))
        self.timeout = int(options.get("EMAIL_TIMEOUT") or 30)
        self.connection: smtplib.SMTP | None = None

    def open(self) -> None:
        try:
            if self.use_ssl:
                context = ssl.create_default_context()
                self.connection = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=context,
                    local_hostname=DNS_NAME,
                )
            else:
                self.connection = smtplib.SMTP(
                    self.host, self.port, timeout=self.timeout, local_hostname=DNS_NAME
                )
                if self.use_tls:
                    self.connection.starttls(context=ssl.create_default_context())
            if self.username:
                self.connection.login(self.username, self.password)
        except (smtplib.SMTPException, OSError) as error:
            self.connection = None
            raise ConnectionLost(f"Cannot reach the mail server: {error}") from error

    def send(self, factory: MessageFactory, message: Outgoing) -> Result:
        assert self.connection is not None, "open() first"
        try:
            self.connection.sendmail(
                factory.envelope_sender(message), [message.to], factory.as_bytes(message)
            )
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()), (450, b""))
            return _smtp_result(code, reply)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
            self._reset()
            return _smtp_result(error.smtp_code, error.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPException, OSError) as error:
            raise ConnectionLost(f"The mail server went away: {error}") from error
        return Result(Result.SENT, message.message_id)

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError) as error:
            raise ConnectionLost(f"The mail server went away: {error}") from error

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


def _smtp_result(code: int, reply: bytes | str) -> Result:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{code} {text}".strip()[:1000]
    return Result(Result.FAILED if 500 <= code < 600 else Result.RETRY, detail)


class DjangoTransport:
    """Any Django email backend: django-anymail's providers, and locmem/console in
    development and tests. The provider's message id is kept when it gives one."""

    def __init__(self, backend: str, options: Mapping[str, object]) -> None:
        self.backend = backend
        self.options = dict(options)
        self.connection = None

    def open(self) -> None:
        self.connection = get_connection(self.backend, fail_silently=False, **self.options)
        try:
            self.connection.open()
        except Exception as error:  # the provider's own errors have no common base
            raise ConnectionLost(f"Cannot reach the sending provider: {error}") from error

    def send(self, factory: MessageFactory, message: Outgoing) -> Result:
        email = factory.as_email_message(message, self.connection)
        try:
            self.connection.send_messages([email])
        except Exception as error:  # classified below, by what the provider said
            return _provider_result(error)
        status = getattr(email, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) if status is not None else None
        return Result(Result.SENT, str(provider_id or message.message_id))

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None


def _provider_result(error: Exception) -> Result:
    detail = f"{type(error).__name__}: {error}"[:1000]
    try:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a dependency
        return Result(Result.RETRY, detail)
    if isinstance(error, AnymailRecipientsRefused):
        return Result(Result.FAILED, detail)
    if isinstance(error, AnymailAPIError):
        status = getattr(error, "status_code", None)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return Result(Result.FAILED, detail)
    return Result(Result.RETRY, detail)


def _backend_options(name: str) -> tuple[str, dict[str, object]]:
    """(Django backend path, options) of a configured sending backend."""
    if name and name != "default":
        spec = settings.MISSIVE_SENDING_BACKENDS.get(name.lower())
        if not spec:
            raise ConnectionLost(f"The sending backend {name!r} is not configured.")
        if spec.startswith("esp:"):
            return f"anymail.backends.{spec[4:].strip().lower()}.EmailBackend", {}
        options = parse_email_url(spec)
        return options.pop("EMAIL_BACKEND"), options
    options = {
        key: getattr(settings, key)
        for key in (
            "EMAIL_HOST",
            "EMAIL_PORT",
            "EMAIL_HOST_USER",
            "EMAIL_HOST_PASSWORD",
            "EMAIL_USE_TLS",
            "EMAIL_USE_SSL",
            "EMAIL_TIMEOUT",
        )
        if hasattr(settings, key)
    }
    return settings.EMAIL_BACKEND, options


def transport_for(account: Account) -> Transport:
    """The account's transport: the operator's choice for it, or the platform default."""
    backend, options = _backend_options(account.sending_backend)
    if import_string(backend) is import_string("django.core.mail.backends.smtp.EmailBackend"):
        return SmtpTransport(options)
    return DjangoTransport(backend, {})
