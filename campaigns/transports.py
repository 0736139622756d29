"""Transports: how a batch of campaign messages leaves Missive.

Transports share one interface (``open``, ``send``, ``close``) and report each message
as sent, to retry (4xx, timeouts, throttling) or failed (the server's permanent answer).
Whatever goes wrong with one message is that message's outcome; only a connection that
cannot go on (``ConnectionLost``) ends the batch, whose rest is retried later.

SMTP connections are per mailbox provider (domains.pacing): a connection carries one
provider's messages, at most its messages-per-connection, and holds one of the
provider's connection slots, shared by every worker, while it is open.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailSerializationError,
    AnymailUnsupportedFeature,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.utils import DNS_NAME
from django.utils.module_loading import import_string

from accounts.models import Account
from campaigns.messages import MessageFactory, Outgoing, ascii_domain
from config.env import parse_email_url
from domains import pacing, providers

logger = logging.getLogger(__name__)

NO_SMTPUTF8 = "The server does not accept internationalized addresses (SMTPUTF8)."


@dataclass(frozen=True)
class Result:
    outcome: str  # SENT, RETRY or FAILED
    detail: str = ""  # the provider's message id when sent, the reason otherwise
    # The receiving server refused the recipient's address itself (an RCPT answer): only
    # such a refusal can be held against the address. One of the sender (MAIL FROM) or
    # of the message (DATA) says nothing about it.
    recipient_refused: bool = False

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


class ConnectionLost(Exception):
    """The transport cannot go on with this batch; what is left of it is retried later."""


class ProviderBusy(ConnectionLost):
    """Every connection Missive may open to the receiving provider is in use: the rest of
    the batch waits in the queue, without spending an attempt."""


class Transport(Protocol):
    # ``first``: the mailbox provider of the batch's first message (domains.pacing), for a
    # transport whose connections are per provider.
    def open(self, first: str | None = None) -> None: ...

    # Called with each message before the one ahead of it is sent: a transport may start
    # work on it (SmtpTransport writes and signs it) while the other is on the wire.
    def prepare(self, factory: MessageFactory, message: Outgoing) -> None: ...

    def send(self, factory: MessageFactory, message: Outgoing) -> Result: ...

    def close(self) -> None: ...


@cache
def _writer(pid: int) -> ThreadPoolExecutor:
    """The thread that writes and signs messages ahead of the wire, one per process (a
    forked worker gets its own: threads do not survive a fork)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"missive-dkim-{pid}")


class SmtpTransport:
    """Plain SMTP, MIME written by ``MessageFactory.as_bytes``. A connection carries one
    provider's messages: the next message for another provider, or one past the
    provider's messages-per-connection, goes on a new connection, opened once one of the
    provider's connection slots is free.

    A DKIM signature is an RSA private-key operation, most of what signing costs. OpenSSL
    does it without holding the GIL, so ``prepare`` has it done on a thread of its own
    while the message ahead is on the wire and the worker would otherwise wait for the
    server's replies."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.host = str(options["EMAIL_HOST"])
        self.port = int(options["EMAIL_PORT"])
        self.username = str(options.get("EMAIL_HOST_USER") or "")
        self.password = str(options.get("EMAIL_HOST_PASSWORD") or "")
        self.use_tls = bool(options.get("EMAIL_USE_TLS"))
        self.use_ssl = bool(options.get("EMAIL_USE_SSL"))
        self.timeout = int(options.get("EMAIL_TIMEOUT") or 30)
        self.connection: smtplib.SMTP | None = None
        self.slot: pacing.Slot | None = None
        self.provider: str | None = None
        self.on_connection = 0  # messages attempted on the current connection

    def open(self, first: str | None = None) -> None:
        """Connect for the first message's provider now, so that a server that cannot be
        reached ends the batch before any message is built."""
        self._connect(first or providers.OTHER)

    def _connect(self, provider: str) -> None:
        try:
            slot = pacing.acquire_slot(provider)
        except pacing.SlotUnavailable as error:
            raise ProviderBusy(str(error)) from error
        try:
            self._dial()
        except BaseException:
            pacing.release_slot(slot)
            raise
        self.slot, self.provider, self.on_connection = slot, provider, 0

    def _dial(self) -> None:
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
            # What the server offers (SMTPUTF8 above all) decides, per message, whether
            # an address can go out at all.
            self.connection.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as error:
            self.connection = None
            raise ConnectionLost(f"Cannot reach the mail server: {error}") from error

    def _connection_for(self, provider: str) -> None:
        """Make the current connection one the next message to ``provider`` may go on."""
        if (
            self.connection is None
            # The server closed it after its last answer (421): the next message goes
            # on a new one.
            or self.connection.sock is None
            or provider != self.provider
            or self.on_connection >= pacing.limits_for(provider).per_connection
        ):
            self.close()
            self._connect(provider)
        elif self.slot is not None and not self.slot.renew():
            # The worker stalled past its lease, and the slot went to another worker:
            # this connection closes, and the next waits for a slot of its own.
            self.close()
            self._connect(provider)

    def prepare(self, factory: MessageFactory, message: Outgoing) -> None:
        if factory.signer is not None:
            message.prepared = _writer(os.getpid()).submit(factory.signed_bytes, message)

    def send(self, factory: MessageFactory, message: Outgoing) -> Result:
        assert self.provider is not None, "open() first"
        self._connection_for(message.provider or providers.by_name(message.to))
        assert self.connection is not None
        try:
            sender = ascii_domain(factory.envelope_sender(message))
            recipient = ascii_domain(message.to)
            options: list[str] = []
            if not (sender.isascii() and recipient.isascii()):
                # RFC 6531: an internationalized local part travels only where the
                # server says it can; elsewhere no retry will ever carry it.
                if not self.connection.has_extn("smtputf8"):
                    return Result(Result.FAILED, NO_SMTPUTF8)
                options.append("SMTPUTF8")
            if message.prepared is not None:
                data = message.prepared.result()
            else:
                data = factory.signed_bytes(message)
        except UnicodeError as error:  # a domain that IDNA cannot write
            return Result(Result.FAILED, f"The address cannot be written: {error}"[:1000])
        self.on_connection += 1
        try:
            self.connection.sendmail(sender, [recipient], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()), (450, b""))
            return _smtp_result(code, reply, recipient_refused=True)
        except (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError) as error:
            raise ConnectionLost(f"The mail server went away: {error}") from error
        except smtplib.SMTPResponseException as error:
            # Sender refused, data refused or any other answer: the server's own words.
            # After a 421 smtplib has closed the connection; the next message opens another.
            if self.connection.sock is not None:
                self._reset()
            return _smtp_result(error.smtp_code, error.smtp_error)
        except OSError as error:
            if not isinstance(error, smtplib.SMTPException):
                raise ConnectionLost(f"The mail server went away: {error}") from error
            self._reset()
            return Result(Result.FAILED, f"{type(error).__name__}: {error}"[:1000])
        except Exception as error:
            logger.warning("Message %s not sent", message.delivery_id, exc_info=True)
            self._reset()
            return Result(Result.FAILED, f"{type(error).__name__}: {error}"[:1000])
        return Result(Result.SENT, message.message_id)

    def _reset(self) -> None:
        assert self.connection is not None, "open() first"
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError) as error:
            raise ConnectionLost(f"The mail server went away: {error}") from error

    def close(self) -> None:
        try:
            if self.connection is not None:
                try:
                    self.connection.quit()
                except (smtplib.SMTPException, OSError):
                    self.connection.close()
                self.connection = None
        finally:
            if self.slot is not None:
                pacing.release_slot(self.slot)
                self.slot = None


def _smtp_result(code: int, reply: bytes | str, *, recipient_refused: bool = False) -> Result:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{code} {text}".strip()[:1000]
    if 500 <= code < 600:
        return Result(Result.FAILED, detail, recipient_refused=recipient_refused)
    return Result(Result.RETRY, detail)


# Providers whose API has no place for metadata (anymail refuses the message): the
# X-Missive-Campaign header each message carries still ties their feedback to it, and
# the provider's message id is recorded as it is sent.
WITHOUT_METADATA = frozenset({"Postal"})
# Providers that refuse a header that is not ASCII (Brevo would pass it on as raw 8-bit,
# so anymail stops it). The only such header of Missive's is List-Id, whose name part
# (RFC 2919: a phrase, optional) comes from the customer's list name.
ASCII_HEADERS_ONLY = frozenset({"Brevo", "SendinBlue"})


class DjangoTransport:
    """Any Django email backend: django-anymail's providers, and locmem/console in
    development and tests. The provider's message id is kept when it gives one."""

    def __init__(self, backend: str, options: Mapping[str, Any]) -> None:
        self.backend = backend
        self.options = dict(options)
        self.connection: BaseEmailBackend | None = None
        self.metadata = True
        self.ascii_headers = False

    def open(self, first: str | None = None) -> None:
        try:
            # A provider's backend reads its settings (API key, URL) here: a missing one
            # is the operator's to fix, and the batch waits for it in the queue.
            self.connection = get_connection(self.backend, fail_silently=False, **self.options)
            self.connection.open()
        except ImproperlyConfigured as error:
            self.connection = None
            raise ConnectionLost(f"The sending provider is not configured: {error}") from error
        except Exception as error:  # the provider's own errors have no common base
            self.connection = None
            raise ConnectionLost(f"Cannot open the sending provider: {error}") from error
        esp_name = getattr(self.connection, "esp_name", None)
        self.metadata = esp_name not in WITHOUT_METADATA
        self.ascii_headers = esp_name in ASCII_HEADERS_ONLY

    def prepare(self, factory: MessageFactory, message: Outgoing) -> None:
        return None  # the provider writes and signs what it is given

    def send(self, factory: MessageFactory, message: Outgoing) -> Result:
        assert self.connection is not None, "open() first"
        try:
            email = factory.as_email_message(message, self.connection, metadata=self.metadata)
            if self.ascii_headers:
                _list_id_without_name(email.extra_headers)
            sent = self.connection.send_messages([email])
        except Exception as error:
            return _provider_result(error)
        if not sent:
            # A backend that neither sends nor raises (a pre_send hook cancelled it).
            return Result(Result.FAILED, "The sending backend did not send it.")
        status = getattr(email, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) if status is not None else None
        return Result(Result.SENT, str(provider_id or message.message_id))

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None


def _list_id_without_name(headers: dict[str, str]) -> None:
    """Keep only the identifier of a List-Id whose name is not ASCII."""
    list_id = headers.get("List-Id", "")
    if not list_id.isascii():
        headers["List-Id"] = "<" + list_id.rpartition("<")[2]


# Errors that the same message, sent again, can only meet again.
_PERMANENT = (
    AnymailRecipientsRefused,
    AnymailInvalidAddress,
    AnymailUnsupportedFeature,
    AnymailSerializationError,
    ImproperlyConfigured,  # anymail's AnymailConfigurationError among them
)
# Answers worth another try: the provider was slow or asks to slow down.
_TRANSIENT_STATUS = (408, 429)


def _provider_result(error: Exception) -> Result:
    """One message's outcome from what its backend raised, with the provider's words."""
    detail = f"{type(error).__name__}: {error}"[:1000]
    if isinstance(error, _PERMANENT):
        return Result(Result.FAILED, detail)
    if isinstance(error, AnymailAPIError):
        status = _status_code(error)
        if status is None or status >= 500 or status in _TRANSIENT_STATUS:
            return Result(Result.RETRY, detail)  # no answer, or the provider's trouble
        # The provider answered and refused (4xx, or an error in a 2xx body).
        return Result(Result.FAILED, detail)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()), (450, b""))
        return _smtp_result(code, reply)
    if isinstance(error, smtplib.SMTPResponseException):
        return _smtp_result(error.smtp_code, error.smtp_error)
    if isinstance(error, OSError):
        return Result(Result.RETRY, detail)  # the network (requests' errors among them)
    # Anything else is a fault in this message that retrying cannot mend: anymail's own
    # refusals (a sender domain it cannot use, …), or one nobody foresaw.
    if not isinstance(error, AnymailError):
        logger.warning("Message not sent: %s", detail, exc_info=error)
    return Result(Result.FAILED, detail)


def _status_code(error: AnymailAPIError) -> int | None:
    """The HTTP status of the provider's answer; boto3 (Amazon SES) keeps it in a dict."""
    if error.status_code is not None:
        return int(error.status_code)
    response = error.response
    if isinstance(response, Mapping):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None


def _backend_options(name: str) -> tuple[str, dict[str, Any]]:
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
