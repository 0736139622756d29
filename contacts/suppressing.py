"""Suppression lists in bulk, and the public "do not contact" request.

Who must never be mailed: an account's own list, filled from pasted lines or an uploaded
file, and the platform-wide list (account empty), filled by Missive's operators in the
admin and by any person for their own address once they prove they read its mail.

Guarantees:

- Only the SHA-256 of an address is stored (``contacts.models.email_sha256``). Addresses
  read from a form, a file or a link live in memory for one request and are written
  nowhere: not in the database, not in the audit log, not in log lines.
- Adding is idempotent. An address already on the list keeps its reason, note and
  author, and is reported as "already there".
- One audit entry per operation on an account's list, however many addresses it carries.
- The public request looks nothing up: it mails a signed, expiring link to whatever
  valid address it is given, so its answer and its timing say nothing about whether
  Missive knows that address. The link carries the address itself (readable, not
  secret) because it only ever goes to that mailbox, and the confirmation page shows it.
- A link never changes anything on GET: mail scanners open links. The POST does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from accounts.mail import send_notice
from accounts.models import Account, User
from accounts.query import parse_cursor
from contacts.models import PublicLink, Suppression, email_sha256, email_sha256_forms
from contacts.selectors import COUNT_CAP
from contacts.services import clean_email, suppress, suppression_add
from contacts.tokens import link_issue, link_open

R = Suppression.Reason
# What a customer may give as the reason: erasure is Missive's own doing.
ACCOUNT_REASONS = (R.MANUAL, R.DO_NOT_CONTACT, R.UNSUBSCRIBE, R.HARD_BOUNCE, R.COMPLAINT)

PAGE_SIZE = 100
BATCH_SIZE = 1000
# How many refused lines a report lists one by one; the count covers them all.
REPORT_LIMIT = 200
MAX_EMAIL_LENGTH = 254
MAX_UPLOAD_BYTES = 5 * 1024 * 1024

DO_NOT_CONTACT = PublicLink.Purpose.DO_NOT_CONTACT
DO_NOT_CONTACT_LINK_AGE = timedelta(days=7)


# --- Reads --------------------------------------------------------------------------------


@dataclass
class SuppressionPage:
    entries: list[Suppression]
    next_cursor: str | None
    total: int
    total_is_capped: bool


def suppressions_page(account: Account, *, cursor: str = "") -> SuppressionPage:
    """One page of the account's own list, newest first, by keyset on (created_at, id)."""
    queryset = Suppression.objects.for_account(account)
    total = queryset[: COUNT_CAP + 1].count()
    after = _parse_cursor(cursor)
    if after is not None:
        created_at, pk = after
        queryset = queryset.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk)
        )
    rows = list(
        queryset.select_related("created_by").order_by("-created_at", "-id")[: PAGE_SIZE + 1]
    )
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1] if rows else None
    return SuppressionPage(
        entries=rows,
        next_cursor=f"{last.created_at.isoformat()}|{last.pk}" if has_more and last else None,
        total=min(total, COUNT_CAP),
        total_is_capped=total > COUNT_CAP,
    )


def _parse_cursor(cursor: str) -> tuple[datetime, int] | None:
    parsed = parse_cursor(cursor)
    if parsed is None:
        return None
    value, pk = parsed
    try:
        created_at = parse_datetime(value)
    except ValueError:
        return None
    return (created_at, pk) if created_at else None


def suppressions_matching(account: Account, email: str) -> list[Suppression]:
    """The entries that stop ``account`` from mailing ``email``: its own, the platform's,
    both or none. The account's own entry comes first."""
    entries = Suppression.objects.applying_to(account).filter(
        email_sha256__in=email_sha256_forms(email)
    )
    return sorted(entries, key=lambda entry: entry.account_id is None)


def _defused(text: str) -> str:
    """A note a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def suppressions_csv(account: Account) -> Iterator[str]:
    """The account's list as CSV, hashes only, newest first, streamed row by row."""
    writer = csv.writer(_Echo())
    yield writer.writerow(["email_sha256", "reason", "note", "created_at"])
    rows = (
        Suppression.objects.for_account(account)
        .order_by("-created_at", "-id")
        .values_list("email_sha256", "reason", "note", "created_at")
    )
    for digest, reason, note, created_at in rows.iterator(chunk_size=BATCH_SIZE):
        yield writer.writerow([digest, reason, _defused(note), created_at.isoformat()])


# --- Reading what the customer gives ------------------------------------------------------


def numbered_lines(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of pasted text, each with its line number (from 1)."""
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # never fails: every byte is a character


def _is_email_header(cell: str) -> bool:
    name = cell.strip().lower()
    return "mail" in name or name == "courriel"


def read_upload(upload: UploadedFile) -> list[tuple[int, str]]:
    """The addresses of a CSV or text file, each with its row number (the header is row 1).

    The column is the one whose header names an email (``email``, ``E-mail address``…),
    or else the first. A first row without an address in that column is a header."""
    if upload.size and upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError("The file is larger than 5 MB: split it, or import it in parts.")
    raw = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValidationError("The file is larger than 5 MB: split it, or import it in parts.")
    text = _decode(raw).replace("\x00", "")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:8192], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    rows: list[tuple[int, str]] = []
    column = 0
    number = 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), dialect), 1):
            if number == 1:
                named = next((i for i, cell in enumerate(row) if _is_email_header(cell)), None)
                if named is not None and "@" not in row[named]:
                    column = named
                    continue
                if row and "@" not in row[0]:
                    continue
            if column < len(row) and row[column].strip():
                rows.append((number, row[column]))
    except csv.Error as error:
        raise ValidationError(f"Row {number + 1} could not be read: {error}.") from None
    if not rows:
        raise ValidationError("The file holds no address.")
    return rows


# --- Writes -------------------------------------------------------------------------------


@dataclass
class Refused:
    line: int
    reason: str


@dataclass
class BulkResult:
    added: int = 0
    already: int = 0
    invalid: int = 0
    # The first REPORT_LIMIT refused lines, in order.
    refused: list[Refused] = field(default_factory=list)


def _check(raw: str) -> str:
    value = raw.strip()
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValidationError(
            f"The value is longer than {MAX_EMAIL_LENGTH} characters: not an email address."
        )
    return clean_email(value)


@transaction.atomic(durable=True)
def suppressions_add_many(
    *,
    account: Account,
    emails: Iterable[tuple[int, str]],
    reason: str,
    actor: User | None,
    note: str = "",
    source: str = "form",
) -> BulkResult:
    """Suppress many addresses for ``account`` at once. ``emails`` pairs each address with
    the line or row it came from, so refusals can point at it. Idempotent per address."""
    if reason not in ACCOUNT_REASONS:
        raise ValidationError(f"{reason!r} is not a reason a customer may give.")
    result = BulkResult()
    digests: dict[str, None] = {}  # insertion-ordered set
    for line, raw in emails:
        try:
            digest = email_sha256(_check(raw))
        except ValidationError as error:
            result.invalid += 1
            if len(result.refused) < REPORT_LIMIT:
                result.refused.append(Refused(line, error.messages[0]))
            continue
        if digest in digests:
            result.already += 1  # said twice in the same input
        else:
            digests[digest] = None
    suppressed = suppress(
        account=account,
        digests=list(digests),
        reason=reason,
        actor=actor,
        note=note,
        source=source,
        invalid=result.invalid,
    )
    result.added = len(suppressed.added)
    result.already += suppressed.already
    return result


def platform_suppression_add(
    *, email: str, actor: User | None, reason: str = R.DO_NOT_CONTACT, note: str = ""
) -> Suppression:
    """Put an address on the platform-wide list: no account of this installation can
    mail it. For operators; the admin keeps the record of who did it."""
    return suppression_add(account=None, email=email, reason=reason, actor=actor, note=note)


# --- The public "do not contact" request --------------------------------------------------


def do_not_contact_url(email: str) -> str:
    # An opaque token: the address stays in its row, never readable in the URL.
    token = link_issue(purpose=DO_NOT_CONTACT, email=email, lifetime=DO_NOT_CONTACT_LINK_AGE)
    return settings.MISSIVE_BASE_URL + reverse("do_not_contact_confirm", args=[token])


def do_not_contact_request(*, email: str) -> None:
    """Have ``email`` mailed the link that puts it on the platform-wide list, by a worker.
    A mail server that refuses is recorded for the operator (accounts/mail.py), never
    reported to the person: the answer must not depend on it."""
    email = clean_email(email)
    context = {
        "email": email,
        "url": do_not_contact_url(email),
        "lifetime_days": DO_NOT_CONTACT_LINK_AGE.days,
    }
    send_notice(
        "contacts/email/do_not_contact",
        context,
        to=[email],
        subject="[Missive] Confirm: never receive email sent through Missive",
    )


def do_not_contact_address(token: str) -> str | None:
    """The address a confirmation link was mailed to, or None (bad, altered, expired)."""
    link = link_open(DO_NOT_CONTACT, token)
    if link is None:
        return None
    try:
        return clean_email(link.email)
    except ValidationError:
        return None


def do_not_contact_confirm(*, email: str) -> Suppression:
    """The person proved they read this mailbox: no account may mail it again.
    Idempotent; an entry an operator made earlier stays as it is."""
    return platform_suppression_add(email=email, actor=None, reason=R.DO_NOT_CONTACT)
