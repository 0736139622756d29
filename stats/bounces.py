"""The bounce mailbox: what mail servers send back about campaign mail sent over plain SMTP.

With ``MISSIVE_RETURN_PATH`` set, every SMTP message goes out with the envelope sender
``bounces+<signed delivery id>@domain`` (VERP), so the reports that come back name their
delivery. They arrive in a mailbox Missive reads (``manage.py fetch_bounces``, every
minute by beat when ``MISSIVE_BOUNCE_MAILBOX`` is set) or are posted to
``/webhooks/bounces/`` by the mail server (a pipe to curl). Each mail is read into a
report by stats/bounce_parsing.py (which says what is understood); here the report is
matched to its delivery and acted on, and the mailbox is read over IMAP or POP3.

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
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from django.db.models import QuerySet

from accounts.models import same_address
from campaigns import public, tokens
from campaigns.models import Delivery
from stats.bounce_parsing import Report, header_text, read_report
from stats.feedback import Feedback, Outcome, feedback_record

logger = logging.getLogger(__name__)

SOURCE = "bounce mailbox"
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


# -- which delivery it is about -------------------------------------------------------------------


def _deliveries() -> QuerySet[Delivery]:
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
    message_id = header_text(returned.get("Message-ID", ""))
    if message_id:
        delivery = _by_message_id(message_id)
        if delivery is not None:
            return delivery
    support = _SUPPORT_ID.match(header_text(returned.get("X-Missive-Campaign", "")))
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
        _, data = self.conn.uid("SEARCH", "UNSEEN", "UNDELETED")
        uids = (data[0] or b"").split()[:limit]
        for uid in uids:
            status, fetched = self.conn.uid("FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if status == "OK" and raw is not None:
                yield uid, raw

    def delete(self, key: bytes) -> None:
        self.conn.uid("STORE", key.decode("ascii"), "+FLAGS", "(\\Deleted)")

    def keep(self, key: bytes) -> None:
        self.conn.uid("STORE", key.decode("ascii"), "+FLAGS", "(\\Seen)")

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
