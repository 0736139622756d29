"""The bounce mailbox: what mail servers send back about campaign mail sent over plain SMTP.

With ``MISSIVE_RETURN_PATH`` set, every SMTP message goes out with the envelope sender
``bounces+<signed delivery id>@domain`` (VERP), so the reports that come back name their
delivery. They arrive in a mailbox Missive reads (``manage.py fetch_bounces``, every
minute by beat when ``MISSIVE_BOUNCE_MAILBOX`` is set) or are posted to
``/webhooks/bounces/`` by the mail server (a pipe to curl). Understood here:

- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status):
  Action, Status and Diagnostic-Code of the failed recipient;
- RFC 5965 feedback reports (report-type=feedback-report) of type abuse: complaints;
- the common non-standard bounces (qmail, old Exim, Exchange): a mail from MAILER-DAEMON
  or postmaster, or with a bounce's subject, read for a status code or known wording;
- mail to the List-Unsubscribe mailto address, subject ``unsubscribe <token>``.

Anyone can send mail to these addresses, so a report names a delivery only by what a
forger cannot guess: the signed token of the VERP address, or the returned message's
Message-ID (it carries 48 random bits). The X-Missive-Campaign header of a returned
message is unsigned: it names a delivery only together with the address that delivery
was sent to, and never for a complaint (which could suspend an account).
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import logging
import poplib
import re
import ssl
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from django.utils import timezone

from accounts.models import same_address
from campaigns import public, tokens
from campaigns.models import Delivery
from stats.feedback import (
    Feedback,
    Outcome,
    enhanced_status,
    feedback_record,
    outcome_of_status,
    outcome_of_temporary,
    outcome_of_text,
)

logger = logging.getLogger(__name__)

SOURCE = "bounce mailbox"
# A signed delivery id in the local part of an address: bounces+<token>@domain.
_VERP = re.compile(r"[+=]([0-9a-z]{1,13}\.[A-Za-z0-9_-]{20})@")
# Headers where the envelope recipient of a report shows (which address it was sent to).
_ENVELOPE_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Rcpt-To",
    "To",
    "Cc",
)
_UNSUBSCRIBE_SUBJECT = re.compile(r"\bunsubscribe\s+([0-9a-z]{1,13}\.[A-Za-z0-9_-]{20})(?![\w-])")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status )?notification|failure notice|returned mail|"
    r"mail delivery (?:failed|failure|subsystem|system)|non-?delivery|delivery fail|"
    r"could not be delivered|delivery has failed|rejected:",
    re.IGNORECASE,
)
# Headers of the returned message, when a bounce quotes it in its text.
_QUOTED_HEADER = re.compile(
    r"^(Message-ID|X-Missive-Campaign|Return-Path)[ \t]*:[ \t]*(\S[^\r\n]*?)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
# qmail names each failed recipient on a line of its own: "<user@example.org>:".
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:[ \t]*\r?$", re.MULTILINE)
# Message-ID of a campaign message: <delivery id>.<12 hex>@domain (campaigns/messages.py).
_OUR_MESSAGE_ID = re.compile(r"^<?(\d{1,18})\.[0-9a-f]{12}@[^>\s]+>?$")
_SUPPORT_ID = re.compile(r"^\s*(\d+)-(\d+)-(\d+)\s*$")


class Result(StrEnum):
    BOUNCE = "bounce"
    DELAY = "delay"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    DUPLICATE = "duplicate"  # already recorded
    UNMATCHED = "unmatched"  # a report, but of no message Missive can name
    IGNORED = "ignored"  # not a report: an auto-reply, a person, spam


@dataclass
class Report:
    """What a received mail reports, before it is matched to a delivery."""

    outcome: Outcome | None = None
    status: str = ""
    diagnostic: str = ""
    recipient: str = ""  # the address that failed or complained
    deferred: bool = False
    occurred_at: datetime | None = None
    envelope: list[str] = field(default_factory=list)  # where the report names our sender
    tokens: list[str] = field(default_factory=list)  # VERP tokens found
    returned: Message | None = None  # headers of the returned message
    unsubscribe_token: str = ""


# -- reading one message -------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _address(field_value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    value = _text(field_value).strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    return parseaddr(value)[1].strip().lower()


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(_text(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)
    now = timezone.now()
    # A clock far off, or a forged date, would file the event where no report looks.
    return when if now - timedelta(days=365) <= when <= now + timedelta(hours=1) else None


def _header_block(payload: object) -> Message | None:
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return HeaderParser().parsestr(payload.lstrip("\r\n"))
    return None


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):
        chunks = re.split(r"\r?\n[ \t]*\r?\n", payload.strip())
        return [HeaderParser().parsestr(chunk) for chunk in chunks if chunk.strip()]
    return []


def _body_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_type() != "text/plain" or part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                texts.append(data.decode(charset, errors="replace"))
            except LookupError:
                texts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(texts)


def _quoted_headers(text: str) -> Message | None:
    found = Message()
    for name, value in _QUOTED_HEADER.findall(text):
        if found.get(name) is None:  # the first one: the returned message's own
            found[name] = value.strip()
    return found if len(found) else None


def _returned(message: Message) -> Message | None:
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            block = _header_block(part.get_payload())
            if block is not None:
                return block
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else ""
            return HeaderParser().parsestr(text.lstrip("\r\n"))
    return None


def _read_dsn(message: Message, report: Report) -> None:
    per_message: Message | None = None
    chosen: Message | None = None
    for part in message.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        blocks = _blocks(part)
        if not blocks:
            continue
        per_message, recipients = blocks[0], blocks[1:]
        by_action = {str(block.get("Action", "")).strip().lower(): block for block in recipients}
        chosen = by_action.get("failed") or by_action.get("delayed")
        break
    if chosen is None:
        return  # a positive notification (delivered, relayed), or nothing readable
    action = str(chosen.get("Action", "")).strip().lower()
    diagnostic = _text(chosen.get("Diagnostic-Code", ""))
    diagnostic = " ".join(diagnostic.split())
    if ";" in diagnostic[:12]:  # "smtp; 550 5.1.1 ..."
        diagnostic = diagnostic.split(";", 1)[1].strip()
    report.status = enhanced_status(_text(chosen.get("Status", "")), diagnostic)
    report.diagnostic = diagnostic
    report.recipient = _address(chosen.get("Original-Recipient") or "") or _address(
        chosen.get("Final-Recipient") or ""
    )
    report.occurred_at = _date(chosen.get("Last-Attempt-Date")) or (
        _date(per_message.get("Arrival-Date")) if per_message is not None else None
    )
    if action == "delayed":
        # Held against the address only when the Status or the words name its mailbox.
        report.outcome = outcome_of_temporary(
            report.status, diagnostic, unexplained=Outcome.DEFERRED
        )
        report.deferred = True
    else:
        report.outcome = _judge_failure(report.status, diagnostic)


def _judge_failure(status: str, text: str) -> Outcome:
    """A permanent failure: by its code, by the code in its text, by its wording; one
    that says nothing Missive understands counts as soft (three of them suppress). A
    message given up on after temporary failures (Status 4.x.x) is judged like them:
    only the mailbox's trouble is held against the address."""
    return (
        outcome_of_status(status)
        or outcome_of_status(enhanced_status(text))
        or outcome_of_text(text)
        or Outcome.SOFT_BOUNCE
    )


def _read_feedback_report(message: Message, report: Report) -> None:
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _header_block(part.get_payload())
        if fields is None:
            return
        kind = str(fields.get("Feedback-Type", "abuse")).strip().lower()
        if kind in ("abuse", "fraud"):
            report.outcome = Outcome.COMPLAINT
            report.recipient = _address(fields.get("Original-Rcpt-To") or "")
            report.envelope.append(_text(fields.get("Original-Mail-From", "")))
            report.occurred_at = _date(fields.get("Arrival-Date") or fields.get("Received-Date"))
        return


def _looks_like_bounce(message: Message, subject: str) -> bool:
    sender = parseaddr(_text(message.get("From", "")))[1].lower()
    return (
        sender.split("@")[0] in _BOUNCE_SENDERS
        or bool(message.get("X-Failed-Recipients"))
        or bool(_BOUNCE_SUBJECT.search(subject))
    )


def read_report(raw: bytes, *, envelope_to: str = "") -> Report:
    """What ``raw`` (one received mail) reports; ``outcome`` and ``unsubscribe_token``
    stay empty when it reports nothing."""
    message = message_from_bytes(raw)
    report = Report()
    subject = " ".join(_text(message.get("Subject", "")).split())
    kind = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower()
    if kind == "multipart/report" and report_type == "feedback-report":
        _read_feedback_report(message, report)
    elif kind == "multipart/report":
        _read_dsn(message, report)
    elif _looks_like_bounce(message, subject):
        text = _body_text(message)
        report.status = enhanced_status(text)
        report.diagnostic = " ".join(text.split())[:500]
        qmail = _QMAIL_RECIPIENT.search(text)
        report.recipient = _address(message.get("X-Failed-Recipients", "") or "") or (
            qmail.group(1).lower() if qmail else ""
        )
        report.outcome = _judge_failure(report.status, text)
    else:
        match = _UNSUBSCRIBE_SUBJECT.search(subject)
        if match:
            report.unsubscribe_token = match.group(1)
        return report
    report.occurred_at = report.occurred_at or _date(message.get("Date"))
    report.returned = _returned(message) or _quoted_headers(_body_text(message))
    # The report went to the VERP address; the returned message's Return-Path is it too.
    addresses = [envelope_to, *report.envelope] + [
        address
        for name in _ENVELOPE_HEADERS
        for _, address in getaddresses([_text(value) for value in message.get_all(name, [])])
    ]
    if report.returned is not None:
        addresses.append(_text(report.returned.get("Return-Path", "")))
    report.tokens = list(dict.fromkeys(m.group(1) for a in addresses for m in _VERP.finditer(a)))
    return report


# -- which delivery it is about -------------------------------------------------------------------


def _deliveries():
    return Delivery.objects.select_related("campaign__account", "contact")


def _by_message_id(message_id: str) -> Delivery | None:
    value = message_id.strip()
    bare = value.strip("<>")
    if not bare:
        return None
    variants = [f"<{bare}>", bare]
    ours = _OUR_MESSAGE_ID.match(value)
    if ours:
        delivery = _deliveries().filter(pk=int(ours.group(1))).first()
        if delivery is not None and delivery.message_id in variants:
            return delivery
    return _deliveries().filter(esp_message_id__in=variants).exclude(esp_message_id="").first()


def find_delivery(report: Report) -> Delivery | None:
    for token in report.tokens:
        delivery_id = tokens.read_bounce_token(token)
        if delivery_id is not None:
            delivery = _deliveries().filter(pk=delivery_id).first()
            if delivery is not None:
                return delivery
    returned = report.returned
    if returned is None:
        return None
    message_id = _text(returned.get("Message-ID", ""))
    if message_id:
        delivery = _by_message_id(message_id)
        if delivery is not None:
            return delivery
    support = _SUPPORT_ID.match(_text(returned.get("X-Missive-Campaign", "")))
    if support and report.recipient and report.outcome != Outcome.COMPLAINT:
        account_id, campaign_id, delivery_id = (int(part) for part in support.groups())
        delivery = (
            _deliveries()
            .filter(pk=delivery_id, campaign_id=campaign_id, campaign__account_id=account_id)
            .first()
        )
        if (
            delivery is not None
            and delivery.contact is not None
            and same_address(delivery.contact.email, report.recipient)
        ):
            return delivery
    return None


# -- acting on it ---------------------------------------------------------------------------------


def process_message(raw: bytes, *, envelope_to: str = "") -> Result:
    """Read one received mail and act on it: record a bounce or a complaint and apply the
    rules, or unsubscribe. ``envelope_to``: the address the mail server delivered it to,
    when it says (a pipe's ``${recipient}``)."""
    report = read_report(raw, envelope_to=envelope_to)
    if report.unsubscribe_token:
        return _unsubscribe(report.unsubscribe_token)
    if report.outcome is None:
        return Result.IGNORED
    delivery = find_delivery(report)
    if delivery is None:
        logger.info("A %s report names no message of Missive: ignored", report.outcome)
        return Result.UNMATCHED
    recorded = feedback_record(
        delivery=delivery,
        feedback=Feedback(
            outcome=report.outcome,
            source=SOURCE,
            occurred_at=report.occurred_at,
            dedup_key=f"mailbox:{hashlib.sha256(raw).hexdigest()}",
            status=report.status,
            diagnostic=report.diagnostic,
            deferred=report.deferred,
        ),
    )
    if not recorded:
        return Result.DUPLICATE
    if report.outcome == Outcome.COMPLAINT:
        return Result.COMPLAINT
    return Result.DELAY if report.deferred else Result.BOUNCE


def _unsubscribe(token: str) -> Result:
    delivery_id = tokens.read_recipient_token(token)
    who = public.recipient(delivery_id) if delivery_id is not None else None
    if who is None:
        return Result.UNMATCHED
    public.unsubscribe(who, how="mailto")
    return Result.UNSUBSCRIBE


# -- the mailbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxAddress:
    scheme: str  # imap, imaps, pop3, pop3s
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    starttls: bool = False

    @property
    def is_imap(self) -> bool:
        return self.scheme.startswith("imap")

    @property
    def is_tls(self) -> bool:
        return self.scheme.endswith("s")


_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}


def parse_mailbox_url(url: str) -> MailboxAddress:
    """``imaps://user:password@host[:port]/INBOX`` or ``pop3s://user:password@host``;
    ``?starttls=true`` upgrades a plain imap:// or pop3:// connection."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PORTS or not parts.hostname:
        raise ValueError(
            "The bounce mailbox must be imaps://user:password@host/INBOX or "
            "pop3s://user:password@host (imap:// and pop3:// for a local server)."
        )
    query = parse_qs(parts.query)
    return MailboxAddress(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or _PORTS[scheme],
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.strip("/")) or "INBOX",
        starttls=query.get("starttls", [""])[-1].lower() in ("1", "true", "yes", "on"),
    )


class Mailbox(Protocol):
    def messages(self, limit: int) -> Iterator[tuple[bytes, bytes]]: ...

    def delete(self, key: bytes) -> None: ...

    def keep(self, key: bytes) -> None: ...

    def close(self) -> None: ...


class ImapMailbox:
    """Reads unseen messages without marking them; ``delete`` flags one deleted (expunged
    at close), ``keep`` marks it seen so the next run passes it over."""

    def __init__(self, address: MailboxAddress, timeout: float = 30) -> None:
        context = ssl.create_default_context()
        if address.is_tls:
            self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                address.host, address.port, ssl_context=context, timeout=timeout
            )
        else:
            self.conn = imaplib.IMAP4(address.host, address.port, timeout=timeout)
            if address.starttls:
                self.conn.starttls(ssl_context=context)
        self.conn.login(address.user, address.password)
        status, _ = self.conn.select(f'"{address.folder}"')
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open the folder {address.folder!r}")

    def messages(self, limit: int) -> Iterator[tuple[bytes, bytes]]:
        _, data = self.conn.uid("SEARCH", None, "UNSEEN", "UNDELETED")
        uids = (data[0] or b"").split()[:limit]
        for uid in uids:
            status, fetched = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if status == "OK" and raw is not None:
                yield uid, raw

    def delete(self, key: bytes) -> None:
        self.conn.uid("STORE", key, "+FLAGS", "(\\Deleted)")

    def keep(self, key: bytes) -> None:
        self.conn.uid("STORE", key, "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.expunge()
            self.conn.close()
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()


class Pop3Mailbox:
    """POP3 has no flags: what was read is deleted (at QUIT), whatever it was; a message
    that failed to process is left for the next run."""

    def __init__(self, address: MailboxAddress, timeout: float = 30) -> None:
        context = ssl.create_default_context()
        if address.is_tls:
            self.conn: poplib.POP3 = poplib.POP3_SSL(
                address.host, address.port, timeout=timeout, context=context
            )
        else:
            self.conn = poplib.POP3(address.host, address.port, timeout=timeout)
            if address.starttls:
                self.conn.stls(context=context)
        self.conn.user(address.user)
        self.conn.pass_(address.password)

    def messages(self, limit: int) -> Iterator[tuple[bytes, bytes]]:
        count, _ = self.conn.stat()
        for number in range(1, min(count, limit) + 1):
            _, lines, _ = self.conn.retr(number)
            yield str(number).encode(), b"\r\n".join(lines) + b"\r\n"

    def delete(self, key: bytes) -> None:
        self.conn.dele(int(key))

    def keep(self, key: bytes) -> None:
        self.conn.dele(int(key))

    def close(self) -> None:
        with contextlib.suppress(poplib.error_proto, OSError):
            self.conn.quit()


def open_mailbox(url: str) -> Mailbox:
    address = parse_mailbox_url(url)
    return ImapMailbox(address) if address.is_imap else Pop3Mailbox(address)


def fetch_mailbox(url: str, *, limit: int = 500) -> Counter[str]:
    """Process up to ``limit`` waiting messages of the mailbox at ``url``: what was acted
    on (or names no message of Missive) is deleted, what is not a report is kept for a
    person, what failed stays for the next run. Returns how many of each result."""
    counts: Counter[str] = Counter()
    mailbox = open_mailbox(url)
    try:
        for key, raw in mailbox.messages(limit):
            try:
                result = process_message(raw)
            except Exception:  # one bad message must not stop the others; retried next run
                logger.exception("Bounce mailbox: cannot process message %s", key.decode())
                counts["error"] += 1
                continue
            counts[result.value] += 1
            if result == Result.IGNORED:
                mailbox.keep(key)
            else:
                mailbox.delete(key)
    finally:
        mailbox.close()
    return counts
