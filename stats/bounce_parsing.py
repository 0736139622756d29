"""Reading one mail received at the bounce mailbox (stats/bounces.py) into a Report:
what it says happened, to which address, and what in it may name the delivery. Pure: no
database, no network; matching the report to a delivery and acting on it are the
mailbox's side. Understood here:

- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status):
  Action, Status and Diagnostic-Code of the failed recipient;
- RFC 5965 feedback reports (report-type=feedback-report) of type abuse: complaints;
- the common non-standard bounces (qmail, old Exim, Exchange): a mail from MAILER-DAEMON
  or postmaster, or with a bounce's subject, read for a status code or known wording;
- mail to the List-Unsubscribe mailto address, subject ``unsubscribe <token>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from django.utils import timezone

from stats.feedback import (
    Outcome,
    enhanced_status,
    outcome_of_status,
    outcome_of_temporary,
    outcome_of_text,
)

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


def header_text(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _address(field_value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    value = header_text(field_value).strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    return parseaddr(value)[1].strip().lower()


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(header_text(value))
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
    diagnostic = header_text(chosen.get("Diagnostic-Code", ""))
    diagnostic = " ".join(diagnostic.split())
    if ";" in diagnostic[:12]:  # "smtp; 550 5.1.1 ..."
        diagnostic = diagnostic.split(";", 1)[1].strip()
    report.status = enhanced_status(header_text(chosen.get("Status", "")), diagnostic)
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
            report.envelope.append(header_text(fields.get("Original-Mail-From", "")))
            report.occurred_at = _date(fields.get("Arrival-Date") or fields.get("Received-Date"))
        return


def _looks_like_bounce(message: Message, subject: str) -> bool:
    sender = parseaddr(header_text(message.get("From", "")))[1].lower()
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
    subject = " ".join(header_text(message.get("Subject", "")).split())
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
        for _, address in getaddresses([header_text(value) for value in message.get_all(name, [])])
    ]
    if report.returned is not None:
        addresses.append(header_text(report.returned.get("Return-Path", "")))
    report.tokens = list(dict.fromkeys(m.group(1) for a in addresses for m in _VERP.finditer(a)))
    return report
