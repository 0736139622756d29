"""CSV imports into a list, at a million rows, in memory that stays flat.

Guarantees:
- A file-level problem (empty, binary, unreadable encoding, over the size limit, no email
  column) is refused at upload, before any data changes.
- The file is read once, as a stream: each row is checked in Python (email, declared
  attribute types) and the good ones go to a temporary staging table through COPY; the
  rejects go to a file on disk. Nothing grows with the number of rows but the database.
- Only the email decides whether a row is imported (and a NUL character, which the
  database cannot store): a bad optional value (a name, an attribute, the consent time
  or IP) is left out of the row with a warning, kept beside the rejects.
- The merge is set-based SQL in the same transaction as the staging: duplicates within the
  file are kept once, existing contacts are updated only if the customer asked, addresses
  on the account's or the platform's suppression list are never added, and people who
  unsubscribed from the list are never subscribed again. A crash or a cancel before the
  commit leaves the database as it was.
- Nothing an import creates survives it when it saves no contact: the attributes declared
  for its mapping are removed again if it fails, is cancelled or rejects every row.
- The uploaded file is deleted when the import ends, whatever the outcome, but for an
  import that rejected every row: its file waits (as a new upload, swept after a day) for
  the customer to fix the mapping.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import ipaddress
import json
import logging
import math
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import InsufficientPrivilege, UniqueViolation

from accounts.models import Account, User, normalize_email
from accounts.services import audit_log
from accounts.tasking import enqueue
from contacts.models import (
    ATTRIBUTE_NAME,
    RESERVED_ATTRIBUTE_NAMES,
    AttributeDefinition,
    Contact,
    ContactList,
    ImportJob,
    ImportReject,
    Subscription,
    email_unicode_sha256,
)
from contacts.selectors import forget_list_counts, list_counts
from contacts.services import attribute_define, clean_attribute, day_first_of, parse_when

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 5
CHECK_ROWS = 20  # the sample the mapping screen checks the mapping against
PREVIEW_CELL = 200  # characters of a cell shown on the mapping screen
PROGRESS_EVERY = 5_000
MAX_COLUMNS = 200
# The longest value kept (csv's own default limit). The reader itself takes any length,
# so that a longer field is reported by its row and column rather than failing the file.
FIELD_LIMIT = 131_072
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
# A row that made the reader consume this many bytes may hold a field over the limit:
# only such rows have their cells measured (a few per 64 KB chunk).
_LONG_ROW_BYTES = 16 * 1024
# A field over the limit spanning this many lines is rows swallowed by a stray quote.
_SWALLOWED_LINES = 100
# Files that are not text whatever their name says: zip (xlsx, ods), OLE (xls), PDF, gzip.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x1f\x8b")

EMAIL_HEADERS = {
    "email",
    "e-mail",
    "mail",
    "email address",
    "e-mail address",
    "courriel",
    "adresse email",
}
FIRST_NAME_HEADERS = {"first name", "firstname", "first_name", "given name", "prénom", "prenom"}
LAST_NAME_HEADERS = {"last name", "lastname", "last_name", "surname", "family name", "nom"}
FULL_NAME_HEADERS = {"full name", "fullname", "full_name"}
# Every contact's own fields, by the names merge tags give them ({{ full_name }} is
# Contact.full_name): a column of one is imported into it, never declared as an attribute
# of the same name.
BUILT_IN_FIELDS = frozenset(RESERVED_ATTRIBUTE_NAMES)


@dataclass(frozen=True)
class KnownExport:
    """The subscriber export of another mailing tool, recognized by its header: its own
    bookkeeping columns are ignored, its opt-in time and IP (and the time of the double
    opt-in's confirmation) become the consent proof."""

    name: str
    signature: frozenset[str]  # lower-case headers that all appear in its exports
    consent_at: tuple[str, ...]  # the first of these present is the consent time
    consent_ip: tuple[str, ...]
    confirmed_at: tuple[str, ...] = ()
    full_name: tuple[str, ...] = ()
    ignored: frozenset[str] = frozenset()
    notes: tuple[tuple[str, str], ...] = ()


_TAGS_NOTE = "Tags are not imported: Missive has no tags yet."
KNOWN_EXPORTS = (
    # Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,
    # OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,
    # TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS
    KnownExport(
        name="Mailchimp",
        signature=frozenset({"email address", "optin_time", "leid", "euid"}),
        consent_at=("optin_time",),
        consent_ip=("optin_ip", "confirm_ip"),
        # (the same format as OPTIN_TIME: YYYY-MM-DD HH:MM:SS, in UTC)
        confirmed_at=("confirm_time",),
        ignored=frozenset(
            {
                "member_rating",
                "confirm_ip",
                "latitude",
                "longitude",
                "gmtoff",
                "dstoff",
                "timezone",
                "cc",
                "region",
                "last_changed",
                "leid",
                "euid",
                "tags",
                "unsub_time",
                "unsub_campaign_title",
                "unsub_campaign_id",
                "unsub_reason",
                "unsub_reason_other",
                "clean_time",
                "clean_campaign_title",
                "clean_campaign_id",
            }
        ),
        notes=(("tags", _TAGS_NOTE),),
    ),
    # CONTACT ID;EMAIL;FIRSTNAME;LASTNAME;SMS;DOUBLE_OPT-IN;OPT_IN;ADDED_TIME;
    # MODIFIED_TIME;EMAIL_BLACKLISTED;SMS_BLACKLISTED, dates as DD-MM-YYYY
    KnownExport(
        name="Brevo",
        signature=frozenset({"email", "added_time", "modified_time"}),
        consent_at=("added_time",),
        consent_ip=("ip",),
        ignored=frozenset(
            {
                "contact id",
                "contact_id",
                "modified_time",
                "double_opt-in",
                "opt_in",
                "email_blacklisted",
                "sms_blacklisted",
                "ext_id",
                "list_ids",
                "tags",
            }
        ),
        notes=(("tags", _TAGS_NOTE),),
    ),
    # uuid,email,name,attributes,status,created_at,updated_at
    KnownExport(
        name="listmonk",
        signature=frozenset({"uuid", "email", "name", "attributes", "status", "created_at"}),
        consent_at=("created_at",),
        consent_ip=(),
        full_name=("name",),
        ignored=frozenset({"uuid", "attributes", "status", "updated_at", "tags"}),
        notes=(
            (
                "attributes",
                "listmonk's attributes (JSON) are not imported: declare the ones "
                "you need and import them from columns of their own.",
            ),
            (
                "status",
                "listmonk's status is not imported: blocklisted people are best "
                "added to your suppression list.",
            ),
        ),
    ),
)


def recognize_export(columns: list[str]) -> KnownExport | None:
    keys = {c.strip().lower() for c in columns}
    return next((known for known in KNOWN_EXPORTS if known.signature <= keys), None)


def column_notes(columns: list[str]) -> dict[str, str]:
    """Column index (as text) → why the suggested mapping treats it so, for a known export."""
    known = recognize_export(columns)
    if known is None:
        return {}
    notes = dict(known.notes)
    found: dict[str, str] = {}
    for index, name in enumerate(columns):
        key = name.strip().lower()
        if key in notes:
            found[str(index)] = notes[key]
        elif key in known.ignored:
            found[str(index)] = f"{known.name}'s own bookkeeping: ignored."
        elif key in known.consent_at or key in known.consent_ip:
            found[str(index)] = "Kept with each subscription as proof of consent."
        elif key in known.confirmed_at:
            found[str(index)] = (
                "Kept with each subscription as proof of consent: when they confirmed it."
            )
    return found


_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = re.compile(
    rf"^{_ATEXT}(?:\.{_ATEXT})*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+"
    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


class ImportFileError(ValidationError):
    """A problem with the file as a whole: nothing was imported."""


def check_email(value: str) -> tuple[str | None, str]:
    """(normalized address, "") or (None, reason). Django's rules, in one compiled regex:
    the importer checks a million addresses."""
    try:
        email = normalize_email(value)
    except ValidationError:
        return None, f"{value.strip()!r} has an invalid domain"
    if not email:
        return None, "the email address is empty"
    if len(email) > 254 or "@" not in email:
        return None, f"{value.strip()!r} is not a valid email address"
    local = email.rpartition("@")[0]
    if len(local) > 64 or not _EMAIL.match(email):
        return None, f"{value.strip()!r} is not a valid email address"
    return email, ""


# --- Upload: check the file, sniff its shape, suggest a mapping -------------------------


@dataclass
class Sniffed:
    encoding: str
    delimiter: str
    columns: list[str]
    preview: list[list[str]]


def _decode_sample(sample: bytes) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", sample[3:].decode("utf-8", errors="ignore")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            "The file is in UTF-16. Save it as “CSV UTF-8” (or plain CSV) and upload it again."
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    with contextlib.suppress(UnicodeDecodeError):
        # final=False: a character cut by the end of the sample is not an error.
        return "utf-8", decoder.decode(sample, final=False)
    try:
        return "cp1252", sample.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1", sample.decode("latin-1")


def sniff(path: Path) -> Sniffed:
    """Encoding, delimiter, header and first rows of a CSV file, or ImportFileError saying
    what is wrong with it and how to fix it."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise ImportFileError("The file is empty.")
    # A stray NUL byte is a row's problem (that row is rejected); a file full of them, or
    # one that opens like a spreadsheet or an archive, is not text.
    nuls = sample.count(b"\x00")
    if sample.startswith(_BINARY_SIGNATURES) or (
        nuls > max(8, len(sample) // 1000)
        and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    ):
        raise ImportFileError(
            "This is not a CSV file (it looks like a spreadsheet or another binary file). "
            "In your spreadsheet, use “Save as… CSV UTF-8” and upload that file."
        )
    encoding, text = _decode_sample(sample)
    lines = text.splitlines()
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut
    head = "\n".join(lines[:50])
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        delimiter = max(",;\t|", key=first.count)
    rows = list(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ImportFileError("The file has no rows.")
    columns = [c.strip() for c in rows[0]]
    if len(columns) > MAX_COLUMNS:
        raise ImportFileError(
            f"The file has {len(columns)} columns; Missive reads at most {MAX_COLUMNS}."
        )
    if len(rows) < 2:
        raise ImportFileError("The file has a header row but no contacts under it.")
    preview = rows[1 : PREVIEW_ROWS + 1]
    if not _has_email_column(columns, preview):
        raise ImportFileError(
            "No column holds email addresses: none is named “email” and none of the first "
            "rows contains an address. Add an email column and upload the file again."
        )
    return Sniffed(encoding=encoding, delimiter=delimiter, columns=columns, preview=preview)


def _has_email_column(columns: list[str], preview: list[list[str]]) -> bool:
    if any(c.lower() in EMAIL_HEADERS for c in columns):
        return True
    return any("@" in cell for row in preview for cell in row)


def attribute_slug(column: str) -> str:
    """The attribute name a column's header suggests: lower case, each run of other
    characters an underscore (“Phone Number” → phone_number)."""
    return re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")[:50].strip("_")


def new_attribute_name(column: str) -> str | None:
    """The name a column can be declared as a new attribute under, or None: the header
    makes no valid name, or the name is a contact's built-in field."""
    slug = attribute_slug(column)
    if ATTRIBUTE_NAME.match(slug) and slug not in BUILT_IN_FIELDS:
        return slug
    return None


def suggest_mapping(
    columns: list[str], preview: list[list[str]], attribute_names: list[str]
) -> dict[str, str]:
    """Column index (as text) → target: email, first_name, last_name, full_name, a consent
    proof, attribute:NAME, new:TYPE:NAME or ignore."""
    mapping: dict[str, str] = {}
    email_taken = False
    known = recognize_export(columns)
    keys = [name.strip().lower() for name in columns]
    proof: dict[str, str] = {}  # header → consent_at, consent_ip, confirmed_at
    if known is not None:
        for target in ("consent_at", "consent_ip", "confirmed_at"):
            key = next((k for k in getattr(known, target) if k in keys), None)
            if key is not None:
                proof[key] = target
    split_names = any(key in FIRST_NAME_HEADERS | LAST_NAME_HEADERS for key in keys)
    for index, key in enumerate(keys):
        slug = attribute_slug(key)
        if key in proof:
            mapping[str(index)] = proof[key]
        elif known is not None and key in known.full_name:
            mapping[str(index)] = "full_name"
        elif known is not None and key in known.ignored:
            mapping[str(index)] = "ignore"
        elif key in EMAIL_HEADERS and not email_taken:
            mapping[str(index)] = "email"
            email_taken = True
        elif key in FIRST_NAME_HEADERS:
            mapping[str(index)] = "first_name"
        elif key in LAST_NAME_HEADERS:
            mapping[str(index)] = "last_name"
        elif key in FULL_NAME_HEADERS and not split_names and "full_name" not in mapping.values():
            mapping[str(index)] = "full_name"
        elif slug in attribute_names and slug not in BUILT_IN_FIELDS:
            mapping[str(index)] = f"attribute:{slug}"
        elif (name := new_attribute_name(key)) is not None:
            # Kept rather than dropped: a new attribute of the type its values look like.
            samples = [row[index] for row in preview if index < len(row)]
            mapping[str(index)] = f"new:{guess_type(samples)}:{name}"
        else:
            mapping[str(index)] = "ignore"
    if not email_taken:
        for index in range(len(columns)):
            if any(index < len(row) and "@" in row[index] for row in preview):
                mapping[str(index)] = "email"
                break
    return mapping


def _store_upload(upload: UploadedFile) -> Path:
    directory = Path(settings.MEDIA_ROOT) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.csv"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


@transaction.atomic
def import_upload(
    *, account: Account, actor: User | None, contact_list: ContactList, upload: UploadedFile
) -> ImportJob:
    """Keep the file and read its shape; nothing is imported yet (the customer maps the
    columns first)."""
    limit = settings.MISSIVE_IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise ImportFileError(
            f"The file is {upload.size / 1e6:.0f} MB; the limit is {limit / 1e6:.0f} MB. "
            "Split it into smaller files."
        )
    path = _store_upload(upload)
    try:
        shape = sniff(path)
    except ImportFileError:
        path.unlink(missing_ok=True)
        raise
    attribute_names = list(
        AttributeDefinition.objects.for_account(account).values_list("name", flat=True)
    )
    return ImportJob.objects.create(
        account=account,
        contact_list=contact_list,
        created_by=actor,
        file_path=str(path),
        original_name=Path(upload.name or "contacts.csv").name[:255],
        size_bytes=path.stat().st_size,
        encoding=shape.encoding,
        delimiter=shape.delimiter,
        columns=shape.columns,
        mapping=suggest_mapping(shape.columns, shape.preview, attribute_names),
    )


def sample_rows(job: ImportJob, count: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first ``count`` rows under the header, as the importer will read them; empty
    when the file is gone."""
    path = Path(job.file_path)
    if not job.file_path or not path.is_file():
        return []
    rows = []
    with (
        contextlib.suppress(csv.Error, UnicodeDecodeError),
        path.open(encoding=job.encoding, errors="replace", newline="") as handle,
    ):
        reader = csv.reader(handle, delimiter=job.delimiter)
        next(reader, None)
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
            if len(rows) >= count:
                break
    return rows


def preview_rows(job: ImportJob) -> list[list[str]]:
    """The first rows, each cell cut to what a screen shows."""
    return [
        [cell if len(cell) <= PREVIEW_CELL else cell[:PREVIEW_CELL] + "…" for cell in row]
        for row in sample_rows(job)
    ]


FIXED_TARGETS = {
    "email",
    "first_name",
    "last_name",
    "full_name",  # "Ann Smith": first name Ann, last name Smith
    "consent_at",  # when the person opted in, kept as the subscription's consent proof
    "consent_ip",  # where from
    "confirmed_at",  # when they confirmed it (a double opt-in), kept with the proof
    "ignore",
}
SINGLE_TARGETS = (
    "first_name",
    "last_name",
    "full_name",
    "consent_at",
    "consent_ip",
    "confirmed_at",
)
# The consent proof's times: another tool's timestamps, read by _consent_time.
PROOF_TIMES = ("consent_at", "confirmed_at")


def parse_new_attribute(target: str) -> tuple[str, str]:
    """``new:<name>`` (text) or ``new:<type>:<name>`` → (type, name)."""
    rest = target.removeprefix("new:")
    kind, _, name = rest.partition(":")
    if name and kind in AttributeDefinition.Type.values:
        return kind, name
    return AttributeDefinition.Type.TEXT, rest


def guess_type(samples: list[str]) -> str:
    """The attribute type most of the first rows of a column look like (a stray bad value
    is then reported as a reject, not taken as the column's type)."""
    values = [v.strip() for v in samples if v.strip()]
    if not values:
        return AttributeDefinition.Type.TEXT
    for kind in (
        AttributeDefinition.Type.DATE,
        AttributeDefinition.Type.NUMBER,
        AttributeDefinition.Type.BOOLEAN,
    ):
        probe = AttributeDefinition(name="probe", type=kind)
        fitting = 0
        for value in values:
            try:
                clean_attribute(probe, value)
            except ValidationError:
                continue
            fitting += 1
        if fitting / len(values) >= 0.6:
            return kind
    return AttributeDefinition.Type.TEXT


_BUILT_IN_TARGETS = {
    "email": "the email address",
    "first_name": "the first name",
    "last_name": "the last name",
    "full_name": "the full name",
}


def check_mapping(job: ImportJob, mapping: dict[str, str]) -> None:
    """ValidationError (on ``mapping``) unless every key is a column of the file and every
    target one Missive knows, and no new attribute would take the name of a contact's
    built-in field."""
    width = len(job.columns)
    for key, target in mapping.items():
        if not (key.isascii() and key.isdigit() and str(int(key)) == key and int(key) < width):
            raise ValidationError(
                {
                    "mapping": f"{key!r} is not a column of the file: its columns are numbered "
                    f"0 to {width - 1}."
                }
            )
        if target not in FIXED_TARGETS and not (
            target.startswith(("attribute:", "new:")) and target.partition(":")[2]
        ):
            raise ValidationError(
                {
                    "mapping": f"Column {key}: {target!r} is not a target; use email, first_name, "
                    "last_name, full_name, consent_at, consent_ip, confirmed_at, "
                    "attribute:<name>, new:<name> or ignore."
                }
            )
        name = parse_new_attribute(target)[1] if target.startswith("new:") else ""
        if name in BUILT_IN_FIELDS:
            column = job.columns[int(key)] or str(int(key) + 1)
            instead = _BUILT_IN_TARGETS.get(name, "an attribute of another name")
            raise ValidationError(
                {
                    "mapping": f"Column “{column}”: {name} is a built-in field of every "
                    f"contact, not a new attribute. Import the column as {instead}, or "
                    "ignore it."
                }
            )


_NOT_A = {
    AttributeDefinition.Type.DATE: "not a date",
    AttributeDefinition.Type.NUMBER: "not a number",
    AttributeDefinition.Type.BOOLEAN: "not yes or no",
    AttributeDefinition.Type.TEXT: "too long",
}


def _check_value(
    target: str, definition: AttributeDefinition | None, raw: str, *, day_first: bool
) -> str:
    """ "" if the importer keeps ``raw`` for ``target``, else what is wrong with it."""
    if not raw.strip():
        return ""
    if len(raw) > FIELD_LIMIT:
        return "too long"
    if target in PROOF_TIMES:
        return "" if _consent_time(raw) else "not a date and time"
    if target == "consent_ip":
        return "" if _consent_ip(raw) else "not an IP address"
    if definition is None:
        return ""
    try:
        clean_attribute(definition, raw, day_first=day_first)
    except (ValidationError, ArithmeticError):
        return _NOT_A[definition.type]
    return ""


def mapping_problems(job: ImportJob, mapping: dict[str, str]) -> list[str]:
    """What the mapping will do to the first rows of the file, before the import starts:
    one sentence per column where some sample rows fail, e.g. "12 of 20 sample rows have a
    value that is not a date in column OPTIN_TIME, e.g. 'x'"."""
    rows = sample_rows(job, CHECK_ROWS)
    if not rows:
        return []
    declared = {d.name: d for d in AttributeDefinition.objects.for_account(job.account)}
    problems = []
    for key, target in sorted(mapping.items(), key=lambda item: int(item[0])):
        index = int(key)
        column = job.columns[index] if index < len(job.columns) else f"Column {index + 1}"
        cells = [row[index] if index < len(row) else "" for row in rows]
        if target == "email":
            bad = [cell for cell in cells if check_email(cell)[0] is None]
            if bad:
                outcome = (
                    "every row will be rejected"
                    if len(bad) == len(rows)
                    else "those rows will be rejected"
                )
                problems.append(
                    f"{len(bad)} of {len(rows)} sample rows have no valid email address in "
                    f"column {column}, e.g. {bad[0][:50]!r}: {outcome}."
                )
            continue
        if target.startswith("attribute:"):
            definition = declared.get(target.removeprefix("attribute:"))
        elif target.startswith("new:"):
            kind, name = parse_new_attribute(target)
            definition = AttributeDefinition(name=name, type=kind)
        elif target in (*PROOF_TIMES, "consent_ip"):
            definition = None
        else:
            continue
        day_first = day_first_of(cells)
        failures = [
            (cell, _check_value(target, definition, cell, day_first=day_first)) for cell in cells
        ]
        failures = [(cell, why) for cell, why in failures if why]
        if failures:
            cell, why = failures[0]
            problems.append(
                f"{len(failures)} of {len(rows)} sample rows have a value that is {why} in "
                f"column {column}, e.g. {cell[:50]!r}: those values will be left out (the "
                "rows are imported)."
            )
    return problems


def rejects_csv(account: Account, job: ImportJob, *, warnings: bool = False) -> Iterator[str]:
    """The rows an import refused (or, with ``warnings``, the values it left out of rows
    it imported), as CSV lines (row, column, value, reason); values a spreadsheet would
    run as formulas are defused, as in the contact exports."""
    writer = csv.writer(_Echo())
    rows = (
        ImportReject.objects.for_account(account)
        .filter(job=job, warning=warnings)
        .order_by("row_number")
    )
    yield writer.writerow(["row", "column", "value", "reason"])
    for reject in rows.iterator(chunk_size=5000):
        yield writer.writerow(
            [reject.row_number, _defused(reject.column), _defused(reject.value), reject.reason]
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _defused(value: str) -> str:
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@transaction.atomic
def import_configure(
    *,
    job: ImportJob,
    actor: User | None,
    mapping: dict[str, str],
    legal_basis: str,
    consent_text: str,
    update_existing: bool,
) -> ImportJob:
    """Record the column mapping and the declared legal basis, and queue the import."""
    if job.status != ImportJob.Status.UPLOADED:
        raise ValidationError("This import has already started.")
    check_mapping(job, mapping)
    targets = [t for t in mapping.values() if t != "ignore"]
    if targets.count("email") != 1:
        raise ValidationError(
            {"mapping": "Choose exactly one column for the email address; nothing was imported."}
        )
    for target in SINGLE_TARGETS:
        if targets.count(target) > 1:
            raise ValidationError({"mapping": f"Two columns are mapped to {target}."})
    if "full_name" in targets and ({"first_name", "last_name"} & set(targets)):
        raise ValidationError(
            {"mapping": "A column is the full name: no other can be the first or last name."}
        )
    # Locked until the job is saved as queued: _forget_declared passes them by meanwhile,
    # and from then on sees the job.
    declared = _lock_definitions(
        job.account_id,
        [t.removeprefix("attribute:") for t in targets if t.startswith("attribute:")],
    )
    job.declared_attributes = []
    for target in targets:
        if target.startswith("attribute:"):
            name = target.removeprefix("attribute:")
            if name not in declared:
                raise ValidationError({"mapping": f"{name!r} is not a declared attribute."})
        elif target.startswith("new:"):
            kind, name = parse_new_attribute(target)
            attribute_define(account=job.account, actor=actor, name=name, type=kind)
            # Removed again if the import saves nothing (see _forget_declared).
            job.declared_attributes.append(name)
    if legal_basis not in Subscription.LegalBasis.values:
        raise ValidationError({"legal_basis": "Choose the legal basis of these subscriptions."})
    if not consent_text.strip():
        raise ValidationError(
            {"consent_text": "Say how these people agreed to hear from you (kept as proof)."}
        )
    job.mapping = {
        k: f"attribute:{parse_new_attribute(v)[1]}" if v.startswith("new:") else v
        for k, v in mapping.items()
    }
    job.legal_basis = legal_basis
    job.consent_text = consent_text.strip()
    job.update_existing = update_existing
    job.status = ImportJob.Status.QUEUED
    job.save()
    enqueue("contacts.run_import", job.pk)
    return job


def import_cancel(*, job: ImportJob, actor: User | None) -> ImportJob:
    """Stop an import: a queued one never starts, a running one stops before its merge and
    leaves nothing behind."""
    if job.is_finished:
        return job
    cache.set(_cancel_key(job.pk), True, timeout=24 * 3600)
    updated = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED]
    ).update(status=ImportJob.Status.CANCELLED, finished_at=timezone.now())
    if updated:
        Path(job.file_path).unlink(missing_ok=True)
        _forget_declared(job)
    job.refresh_from_db()
    return job


UNFINISHED = (ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def _lock_definitions(account_id: int, names: list[str]) -> dict[str, AttributeDefinition]:
    """The account's definitions of ``names``, by name, locked FOR SHARE until the end of
    the transaction: a rename, a change of type or a deletion (each of which moves or
    drops the contacts' values) waits for the import, and then applies to the contacts
    it added too; _forget_declared passes them by. One renamed or deleted meanwhile is
    missing from the answer."""
    if not names:
        return {}
    definitions = AttributeDefinition.objects.raw(
        "SELECT * FROM contacts_attributedefinition WHERE account_id = %s AND name = ANY(%s) "
        "ORDER BY id FOR SHARE",
        [account_id, sorted(set(names))],
    )
    return {definition.name: definition for definition in definitions}


def _forget_declared(job: ImportJob) -> None:
    """Remove the attributes this import declared for its mapping, when it saved nothing:
    otherwise the next upload would be mapped to them again. One still in use is kept:
    a contact holds a value of it meanwhile (set by hand, by another import), another
    import not finished maps a column to it, or one is being configured or run with it
    right now (it holds the definition locked, see _lock_definitions)."""
    if not job.declared_attributes:
        return
    with transaction.atomic():
        # (SKIP LOCKED: a definition another transaction holds is in use, and waiting
        # for it could deadlock with an import that waits for this one)
        definitions = list(
            AttributeDefinition.objects.for_account(job.account)
            .filter(name__in=job.declared_attributes)
            .order_by("pk")
            .select_for_update(skip_locked=True)
        )
        if not definitions:
            return
        mapped = _mapped_by_unfinished(job)
        holders = Contact.objects.for_account(job.account)
        for definition in definitions:
            if definition.name in mapped:
                continue
            if not holders.filter(attributes__has_key=definition.name).exists():
                definition.delete()


def _mapped_by_unfinished(job: ImportJob) -> set[str]:
    """The attributes the account's other unfinished imports map a column to."""
    mappings = (
        ImportJob.objects.for_account(job.account)
        .filter(status__in=UNFINISHED)
        .exclude(pk=job.pk)
        .values_list("mapping", flat=True)
    )
    return {
        target.removeprefix("attribute:")
        for mapping in mappings
        for target in mapping.values()
        if target.startswith("attribute:")
    }


# --- Progress, shared through the cache while the database connection is in COPY ------------


def _progress_key(job_id: int) -> str:
    return f"import:{job_id}:progress"


def _cancel_key(job_id: int) -> str:
    return f"import:{job_id}:cancel"


@dataclass
class Progress:
    rows: int
    bytes_read: int
    size: int
    seconds: float

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.bytes_read / self.size)) if self.size else 0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> int | None:
        if not self.bytes_read or self.seconds <= 0:
            return None
        return int(self.seconds * (self.size - self.bytes_read) / self.bytes_read)


def progress_of(job: ImportJob) -> Progress:
    data = cache.get(_progress_key(job.pk))
    if data:
        return Progress(**data)
    done = job.is_finished
    return Progress(
        rows=job.rows_done,
        bytes_read=job.size_bytes if done else 0,
        size=job.size_bytes,
        seconds=0.0,
    )


# --- The run --------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the bytes the CSV reader has consumed, for the progress bar, and notes
    whether a NUL byte went by (only then are the rows searched for one)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw = raw
        self.count = 0
        self.nul = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)
        self.count += n or 0
        if n and not self.nul:
            self.nul = b"\x00" in buffer[:n].tobytes()
        return n


class Cancelled(Exception):
    """Raised inside the run when the customer cancels: the transaction rolls back."""


@dataclass
class _Plan:
    email: int
    first_name: int | None
    last_name: int | None
    full_name: int | None
    consent_at: int | None
    consent_ip: int | None
    confirmed_at: int | None
    attributes: list[tuple[int, AttributeDefinition, str]]

    def used(self) -> dict[int, str]:
        """Column index → target, for the columns the importer reads."""
        used = {index: target for target, index in vars(self).items() if isinstance(index, int)}
        used.update({index: "attribute" for index, _definition, _column in self.attributes})
        return used


def _plan(job: ImportJob) -> _Plan:
    """What to read from which column; the attributes it maps to are locked until the
    import commits (see _lock_definitions)."""
    definitions = _lock_definitions(
        job.account_id,
        [t.removeprefix("attribute:") for t in job.mapping.values() if t.startswith("attribute:")],
    )
    fixed: dict[str, int] = {}
    attributes = []
    for key, target in job.mapping.items():
        index = int(key)
        if target.startswith("attribute:"):
            name = target.removeprefix("attribute:")
            if name not in definitions:
                raise ImportFileError(
                    f"The attribute {name!r} was renamed or deleted before the import ran; "
                    "nothing was imported. Map the column again."
                )
            column = job.columns[index] if index < len(job.columns) else name
            attributes.append((index, definitions[name], column))
        elif target in FIXED_TARGETS and target != "ignore":
            fixed[target] = index
    return _Plan(
        email=fixed["email"],
        first_name=fixed.get("first_name"),
        last_name=fixed.get("last_name"),
        full_name=fixed.get("full_name"),
        consent_at=fixed.get("consent_at"),
        consent_ip=fixed.get("consent_ip"),
        confirmed_at=fixed.get("confirmed_at"),
        attributes=attributes,
    )


def _reader(job: ImportJob, counter: _CountingReader) -> Iterator[list[str]]:
    text = io.TextIOWrapper(
        io.BufferedReader(counter, buffer_size=1 << 16),
        encoding=job.encoding,
        errors="strict",
        newline="",
    )
    reader = csv.reader(text, delimiter=job.delimiter)
    next(reader, None)  # the header
    return reader


# The staged rows: the attributes arrive as the contact's jsonb, parsed by PostgreSQL while
# it waits for the next rows (Python checking the file is the slower side of the COPY).
# unicode_sha256 is the second hash a suppression of the address may be stored under
# (``email_unicode_sha256``), for the few addresses with an A-label domain: PostgreSQL
# cannot decode punycode.
STAGING_SQL = (
    "CREATE TEMPORARY TABLE import_staging (row_number bigint NOT NULL, email text NOT NULL, "
    "first_name text, last_name text, attributes jsonb NOT NULL, consent_at timestamptz, "
    "consent_ip inet, confirmed_at timestamptz, unicode_sha256 text) ON COMMIT DROP"
)
NAME_LIMIT = 150  # Contact.first_name and last_name


def _too_long(value: str) -> str:
    return f"field too long ({len(value):,} characters; the limit is {FIELD_LIMIT:,})"


def _consent_time(raw: str) -> dt.datetime | None:
    """An opt-in (or confirmation) time from another tool's export; one without an offset
    is taken as UTC (Mailchimp, Brevo and listmonk all export UTC)."""
    when = parse_when(raw)
    if when is None:
        return None
    if timezone.is_naive(when):
        when = when.replace(tzinfo=dt.UTC)
    return when if when <= timezone.now() + dt.timedelta(days=1) else None


def _consent_ip(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


def _cleaner(
    definition: AttributeDefinition, day_first: bool
) -> tuple[dict[str, tuple[str | None, str]], Callable[[str], tuple[str | None, str]]]:
    """``clean_attribute`` for the staging table, remembered per distinct value (cities,
    dates and yes/no repeat across a million rows): the values already seen, and the
    function for a new one (which remembers it), each giving (``"name": value`` as JSON,
    or None for no value; error). The loop looks the value up itself: a call per value
    costs more than the lookup."""
    memo: dict[str, tuple[str | None, str]] = {}
    key = json.dumps(definition.name)

    def clean(raw: str) -> tuple[str | None, str]:
        if len(raw) > FIELD_LIMIT:
            return None, _too_long(raw)  # (not remembered: it would hold on to it)
        try:
            value = clean_attribute(definition, raw, day_first=day_first)
        except ValidationError as error:
            result: tuple[str | None, str] = (None, error.messages[0])
        except ArithmeticError:  # a number: int() of an infinite Decimal
            result = (None, f"{raw.strip()!r} is not a number.")
        else:
            if value is None:
                result = (None, "")
            elif isinstance(value, float) and not math.isfinite(value):
                # JSON has no infinity nor NaN: refused here rather than failing the import.
                result = (None, f"{raw.strip()!r} is not a number.")
            else:
                result = (f"{key}: {json.dumps(value, ensure_ascii=False)}", "")
        if len(memo) > 100_000:
            memo.clear()
        memo[raw] = result
        return result

    return memo, clean


def _day_first_columns(job: ImportJob, plan: _Plan) -> dict[int, bool]:
    """For each date column, whether its dates put the day first, read from its first
    rows (03/04/2024 is April in Lisbon and March in Chicago; 15/04 settles it)."""
    rows = sample_rows(job, 1000)
    return {
        index: day_first_of([row[index] for row in rows if index < len(row)])
        for index, definition, _column in plan.attributes
        if definition.type == AttributeDefinition.Type.DATE
    }


def _stage(job: ImportJob, cursor: object, rejects: csv.writer) -> dict[str, int]:
    """Read the file, check each row, COPY the good ones to the staging table and write
    the bad ones to ``rejects`` (as rows of contacts_importreject), and the values left
    out of good ones as warnings. Returns counts.

    The loop runs a million times and is the slower side of the COPY: what it does per row
    is kept to the least (an address that passes the one compiled pattern is taken as it
    is; only the others go through ``check_email`` for the IDNA form or the reason; cells
    are searched for a NUL or measured only when the reader saw a NUL byte or read a long
    stretch for one row)."""
    plan = _plan(job)
    cursor.execute(STAGING_SQL)

    def column_of(index: int) -> str:
        return (job.columns[index] if index < len(job.columns) else f"column {index + 1}")[:255]

    email_column = column_of(plan.email)
    day_first = _day_first_columns(job, plan)
    cleaners = [
        (index, *_cleaner(definition, day_first.get(index, True)))
        for index, definition, _column in plan.attributes
    ]
    used = plan.used()
    # A column not mapped is read as one past the widest row that gets this far.
    at = plan.email
    first = MAX_COLUMNS if plan.first_name is None else plan.first_name
    last = MAX_COLUMNS if plan.last_name is None else plan.last_name
    full = plan.full_name
    consent_at, consent_ip, confirmed_at = plan.consent_at, plan.consent_ip, plan.confirmed_at
    match = _EMAIL.match
    staged = invalid = warnings = 0
    row_number = 1
    started = time.monotonic()
    counter = _CountingReader(open(job.file_path, "rb"))  # noqa: SIM115 - closed below
    read_before = 0

    def warn(index: int, raw: str, reason: str) -> None:
        nonlocal warnings
        rejects.writerow([job.pk, row_number, column_of(index), raw[:500], reason[:255], "t"])
        warnings += 1

    try:
        with cursor.copy(
            "COPY import_staging (row_number, email, first_name, last_name, attributes, "
            "consent_at, consent_ip, confirmed_at, unicode_sha256) FROM STDIN"
        ) as copy:
            write_row = copy.write_row
            for row_number, row in enumerate(_reader(job, counter), 2):
                if row_number % PROGRESS_EVERY == 0:
                    _report(job, staged + invalid, counter.count, started)
                if not any(row):
                    continue
                width = len(row)
                if width > MAX_COLUMNS:
                    rejects.writerow(
                        [
                            job.pk,
                            row_number,
                            "",
                            f"{width} cells",
                            "too many cells in this row",
                            "f",
                        ]
                    )
                    invalid += 1
                    continue
                if counter.nul:
                    # PostgreSQL cannot store a NUL character: the row is refused, by name.
                    nul = next((i for i, cell in enumerate(row) if "\x00" in cell), None)
                    if nul is not None:
                        rejects.writerow(
                            [
                                job.pk,
                                row_number,
                                column_of(nul),
                                row[nul].replace("\x00", "\N{REPLACEMENT CHARACTER}")[:500],
                                "a NUL character in this field (the file may be damaged)",
                                "f",
                            ]
                        )
                        invalid += 1
                        continue
                if counter.count - read_before > _LONG_ROW_BYTES:
                    long = [i for i, cell in enumerate(row) if len(cell) > FIELD_LIMIT]
                    for index in long:
                        if row[index].count("\n") >= _SWALLOWED_LINES:
                            raise ImportFileError(
                                f"The file is not valid CSV from row {row_number}: in column "
                                f'{column_of(index)}, a quote (") opens a cell and is never '
                                f"closed, so the next {row[index].count(chr(10)):,} lines "
                                "read as one cell. Fix it and upload again."
                            )
                    if at in long:
                        rejects.writerow(
                            [
                                job.pk,
                                row_number,
                                email_column,
                                row[at][:500],
                                _too_long(row[at]),
                                "f",
                            ]
                        )
                        invalid += 1
                        read_before = counter.count
                        continue
                    row = list(row)
                    for index in long:
                        if index in used:
                            warn(index, row[index], _too_long(row[index]))
                        row[index] = ""
                read_before = counter.count
                raw_email = row[at] if at < width else ""
                email = raw_email.strip().lower()
                unicode_sha256 = None
                # (the pattern matches ASCII only and implies the "@"; A-labels are
                # checked by check_email, like Unicode domains)
                if len(email) > 254 or not match(email) or email.index("@") > 64 or "xn--" in email:
                    email, reason = check_email(raw_email)
                    if email is None:
                        rejects.writerow(
                            [job.pk, row_number, email_column, raw_email[:500], reason[:255], "f"]
                        )
                        invalid += 1
                        continue
                    # Only an address that comes this way can have an A-label domain.
                    unicode_sha256 = email_unicode_sha256(email)
                pairs = []
                for index, seen, clean in cleaners:
                    raw = row[index] if index < width else ""
                    pair, error = seen.get(raw) or clean(raw)
                    if error:
                        # An optional value: the row is imported without it.
                        warn(index, raw, error)
                    elif pair is not None:
                        pairs.append(pair)
                if full is None:
                    first_name = row[first].strip() if first < width else None
                    last_name = row[last].strip() if last < width else None
                else:
                    first_name, _, last_name = (
                        (row[full] if full < width else "").strip().partition(" ")
                    )
                    last_name = last_name.strip()
                if first_name and len(first_name) > NAME_LIMIT:
                    warn(
                        full if full is not None else first,
                        first_name,
                        f"longer than {NAME_LIMIT} characters",
                    )
                    first_name = ""
                if last_name and len(last_name) > NAME_LIMIT:
                    warn(
                        full if full is not None else last,
                        last_name,
                        f"longer than {NAME_LIMIT} characters",
                    )
                    last_name = ""
                when = ip = confirmed = None
                if consent_at is not None and consent_at < width and row[consent_at].strip():
                    when = _consent_time(row[consent_at])
                    if when is None:
                        warn(
                            consent_at,
                            row[consent_at],
                            "not a date and time: the import's time is kept",
                        )
                if consent_ip is not None and consent_ip < width and row[consent_ip].strip():
                    ip = _consent_ip(row[consent_ip])
                    if ip is None:
                        warn(consent_ip, row[consent_ip], "not an IP address: left out")
                if confirmed_at is not None and confirmed_at < width and row[confirmed_at].strip():
                    confirmed = _consent_time(row[confirmed_at])
                    if confirmed is None:
                        warn(
                            confirmed_at,
                            row[confirmed_at],
                            "not a date and time: the import's time is kept",
                        )
                write_row(
                    (
                        row_number,
                        email,
                        first_name,
                        last_name,
                        "{" + ", ".join(pairs) + "}",
                        when,
                        ip,
                        confirmed,
                        unicode_sha256,
                    )
                )
                staged += 1
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"The file could not be read as {job.encoding} (near byte "
            f"{counter.count + error.start}). Save it as “CSV UTF-8” and upload it again."
        ) from None
    except csv.Error as error:
        raise ImportFileError(
            f"The file is not valid CSV from row {row_number + 1} ({error}): look for a "
            'quote (") that opens a cell and is never closed, fix it and upload again.'
        ) from None
    finally:
        counter.raw.close()
    _report(job, staged + invalid, counter.count, started)
    return {
        "staged": staged,
        "invalid": invalid,
        "warnings": warnings,
        "seconds": time.monotonic() - started,
    }


def _report(job: ImportJob, rows: int, bytes_read: int, started: float) -> None:
    if cache.get(_cancel_key(job.pk)):
        raise Cancelled
    cache.set(
        _progress_key(job.pk),
        {
            "rows": rows,
            "bytes_read": bytes_read,
            "size": job.size_bytes,
            "seconds": time.monotonic() - started,
        },
        # Refreshed every few thousand rows: a key that lapses means a dead worker
        # (imports_sweep).
        timeout=10 * 60,
    )


def _merge(job: ImportJob, cursor: object) -> dict[str, int]:
    """Set-based: a few statements, each over the whole file.

    Where the time goes, for a million new addresses, is the inserts: a heap row and three
    index entries per contact, as many per subscription, and the foreign-key checks that
    PostgreSQL runs row by row. So:
    - one statement keeps one row per address, creates the new contacts and their
      subscriptions, and sets aside the addresses that are contacts already, without
      writing the million rows to a table in between;
    - the contacts go in sorted by address, so that each index is written at its right
      edge (in file order the same inserts take a third longer);
    - without ON CONFLICT, whose speculative insertion makes the contacts' insert half as
      long again: a conflict can only come from someone adding one of these addresses to
      the account during the import, and that rare case is done again with it;
    - without the per-row foreign-key checks where the database role may skip them,
      their guarantees being given for the whole statement (see _skip_row_checks)."""
    params = {
        "account": job.account_id,
        "list": job.contact_list_id,
        "now": timezone.now(),
        "legal_basis": job.legal_basis,
        "consent_text": job.consent_text,
    }
    # The addresses that are contacts already (and not suppressed), for the steps after.
    cursor.execute(
        "CREATE TEMPORARY TABLE import_rows (email text NOT NULL, first_name text, "
        "last_name text, attributes jsonb NOT NULL, consent_at timestamptz, consent_ip inet, "
        "confirmed_at timestamptz, contact_id bigint NOT NULL) ON COMMIT DROP"
    )
    # An account without contacts yet (its first import) has nothing to look up; one
    # added meanwhile makes the insert conflict, and is then looked up.
    lookup = _has_contacts(cursor, params)
    consent = _has_consent_columns(job)
    try:
        counts = _insert_new(cursor, params, lookup=lookup, on_conflict=False, consent=consent)
    except UniqueViolation:
        counts = _insert_new(cursor, params, lookup=True, on_conflict=True, consent=consent)
    unique_rows, suppressed, known, created, subscribed, checks_skipped = counts

    updated = unsubscribed = already = 0
    if known:
        if job.update_existing:
            cursor.execute(
                """
                UPDATE contacts_contact c SET
                    first_name = COALESCE(NULLIF(r.first_name, ''), c.first_name),
                    last_name = COALESCE(NULLIF(r.last_name, ''), c.last_name),
                    attributes = c.attributes || r.attributes,
                    updated_at = %(now)s
                FROM import_rows r
                WHERE r.contact_id = c.id
                  AND (c.first_name <> COALESCE(NULLIF(r.first_name, ''), c.first_name)
                    OR c.last_name <> COALESCE(NULLIF(r.last_name, ''), c.last_name)
                    OR c.attributes <> c.attributes || r.attributes)
                """,
                params,
            )
            updated = cursor.rowcount
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE s.status = 'unsubscribed'),
                   count(*) FILTER (WHERE s.status IN ('subscribed', 'unconfirmed'))
            FROM import_rows r
            JOIN contacts_subscription s
              ON s.contact_id = r.contact_id AND s.contact_list_id = %(list)s
            """,
            params,
        )
        unsubscribed, already = cursor.fetchone()
        subscribed += _subscribe_known(cursor, params)
    return {
        "unique": unique_rows,
        "created": created,
        "updated": updated,
        "subscribed": subscribed,
        "already": already,
        "unsubscribed": unsubscribed,
        "suppressed": suppressed,
        "row_checks_skipped": checks_skipped,
    }


# One row per address (the first in the file), whether it is suppressed (a hashed lookup
# in the account's and the platform's lists, of the address's hash and, for an A-label
# domain, of its U-label form's, which older versions stored), and the contact it
# already is: a probe of the unique index per address, which keeps the addresses in
# order (a hash join need not) and costs what the file's size says, whatever the
# account's. The rows are then kept in memory for the three uses below, not written to
# a table.
_NEW_CONTACTS_SQL = """
    WITH addresses AS (
        SELECT d.email, d.first_name, d.last_name, d.attributes, d.consent_at, d.consent_ip,
               d.confirmed_at,
               (encode(sha256(convert_to(d.email, 'UTF8')), 'hex') IN (
                   SELECT s.email_sha256 FROM contacts_suppression s
                   WHERE s.account_id = %(account)s OR s.account_id IS NULL
               ) OR (d.unicode_sha256 IS NOT NULL AND d.unicode_sha256 IN (
                   SELECT s.email_sha256 FROM contacts_suppression s
                   WHERE s.account_id = %(account)s OR s.account_id IS NULL
               ))) AS suppressed,
               {lookup} AS contact_id
        FROM (
            SELECT DISTINCT ON (email) email, first_name, last_name, attributes, consent_at,
                   consent_ip, confirmed_at, unicode_sha256
            FROM import_staging ORDER BY email, row_number
        ) d
    ), known AS (
        INSERT INTO import_rows
            (email, first_name, last_name, attributes, consent_at, consent_ip, confirmed_at,
             contact_id)
        SELECT email, first_name, last_name, attributes, consent_at, consent_ip, confirmed_at,
               contact_id
        FROM addresses WHERE contact_id IS NOT NULL AND NOT suppressed
        RETURNING 1
    ), created AS (
        INSERT INTO contacts_contact
            (account_id, email, first_name, last_name, attributes, created_at, updated_at)
        SELECT %(account)s, email, COALESCE(first_name, ''), COALESCE(last_name, ''),
               attributes, %(now)s, %(now)s
        FROM addresses WHERE contact_id IS NULL AND NOT suppressed
        {conflict}
        RETURNING id, email
    ), subscribed AS (
        -- the ids come back from the insert: no join over the table is needed, unless
        -- the file gives each person's own consent proof (time, IP, confirmation)
        INSERT INTO contacts_subscription
            (contact_id, contact_list_id, status, source, legal_basis, consent_at,
             consent_ip, consent_user_agent, consent_text, confirmed_at, created_at,
             updated_at)
        SELECT c.id, %(list)s, 'subscribed', 'import', %(legal_basis)s, {consent_at},
               {consent_ip}, '', %(consent_text)s, {confirmed_at}, %(now)s, %(now)s
        FROM created c {consent_join}
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM addresses),
           (SELECT count(*) FROM addresses WHERE suppressed),
           (SELECT count(*) FROM known), (SELECT count(*) FROM created),
           (SELECT count(*) FROM subscribed)
"""
_LOOKUP_SQL = """(
    SELECT c.id FROM contacts_contact c
    WHERE c.account_id = %(account)s AND lower(c.email) = d.email
)"""


def _has_consent_columns(job: ImportJob) -> bool:
    return bool({"consent_at", "consent_ip", "confirmed_at"} & set(job.mapping.values()))


def _insert_new(
    cursor: object,
    params: dict[str, object],
    *,
    lookup: bool,
    on_conflict: bool,
    consent: bool = False,
) -> tuple[int, int, int, int, int, bool]:
    """New contacts and their subscriptions, the known ones set aside in import_rows:
    (addresses, suppressed, known, contacts created, subscriptions, whether the per-row
    foreign-key checks were skipped)."""
    statement = _NEW_CONTACTS_SQL.format(
        lookup=_LOOKUP_SQL if lookup else "NULL::bigint",
        conflict="ON CONFLICT (account_id, lower(email)) DO NOTHING" if on_conflict else "",
        consent_at="COALESCE(a.consent_at, %(now)s)" if consent else "%(now)s",
        consent_ip="a.consent_ip" if consent else "NULL",
        confirmed_at="COALESCE(a.confirmed_at, %(now)s)" if consent else "%(now)s",
        consent_join="JOIN addresses a ON a.email = c.email" if consent else "",
    )
    checked_here = _skip_row_checks(cursor, params)
    try:
        # A savepoint: after a conflict the import goes on, and the switch is reset.
        with transaction.atomic():
            cursor.execute(statement, params)
        return (*cursor.fetchone(), checked_here)
    finally:
        if checked_here:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def _has_contacts(cursor: object, params: dict[str, object]) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM contacts_contact WHERE account_id = %(account)s)", params
    )
    return cursor.fetchone()[0]


def _skip_row_checks(cursor: object, params: dict[str, object]) -> bool:
    """Let the next statement insert without PostgreSQL's per-row foreign-key checks,
    whose guarantees this one gives for the whole statement instead; False (and nothing
    changed) when the database role may not, or when something else would be skipped
    with them (a trigger of the tables' own, a foreign key this function does not know).

    The checks cost as much as the inserts: three per new contact (its account; its
    subscription's contact and list), each a query that locks the referenced row
    against deletion. For the statement of _insert_new they hold by construction or are
    done here once:
    - the subscriptions reference the contacts the same statement has just created, which
      no other transaction can see, let alone delete;
    - the account and the list are locked here as each check would lock them (FOR KEY
      SHARE, until the commit): deleting either waits for the import, then fails on the
      rows it added, exactly as with the checks.
    Subscriptions of contacts already stored are inserted with the checks, by another
    statement. The switch (session_replication_role, the one pg_restore and logical
    replication use) needs a superuser or, from PostgreSQL 15, GRANT SET ON PARAMETER
    session_replication_role; it is set for this transaction only, and reset after the
    statement. Without it the import is correct and slower.
    """
    # Nothing else may be skipped: no other trigger that fires on insert (one of the
    # tables' own, a deferred unique check), no foreign key but the three above.
    cursor.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM pg_trigger
            WHERE tgrelid IN ('contacts_contact'::regclass, 'contacts_subscription'::regclass)
              AND tgtype & 4 <> 0  -- on INSERT
              AND tgfoid <> 'pg_catalog."RI_FKey_check_ins"'::regproc
        ) OR EXISTS (
            SELECT 1 FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f'
              AND c.conrelid IN ('contacts_contact'::regclass, 'contacts_subscription'::regclass)
              AND (c.conrelid, a.attname, c.confrelid) NOT IN (
                  ('contacts_contact'::regclass, 'account_id', 'accounts_account'::regclass),
                  ('contacts_subscription'::regclass, 'contact_id', 'contacts_contact'::regclass),
                  ('contacts_subscription'::regclass, 'contact_list_id',
                   'contacts_contactlist'::regclass)
              )
        )
        """
    )
    if cursor.fetchone()[0]:
        return False
    try:
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    except InsufficientPrivilege:
        return False
    cursor.execute("SELECT 1 FROM accounts_account WHERE id = %(account)s FOR KEY SHARE", params)
    account = cursor.fetchone()
    cursor.execute("SELECT 1 FROM contacts_contactlist WHERE id = %(list)s FOR KEY SHARE", params)
    if account is None or cursor.fetchone() is None:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        raise ImportFileError("The list or its account was deleted during the import.")
    return True


def _subscribe_known(cursor: object, params: dict[str, object]) -> int:
    """Contacts already stored: subscribed unless they are on the list already (an
    unsubscribe is kept). In contact order, the order of the list's index; with the
    foreign-key checks, which lock these contacts against deletion until the commit."""
    statement = """
        INSERT INTO contacts_subscription
            (contact_id, contact_list_id, status, source, legal_basis, consent_at,
             consent_ip, consent_user_agent, consent_text, confirmed_at, created_at,
             updated_at)
        SELECT r.contact_id, %(list)s, 'subscribed', 'import', %(legal_basis)s,
               COALESCE(r.consent_at, %(now)s), r.consent_ip, '', %(consent_text)s,
               COALESCE(r.confirmed_at, %(now)s), %(now)s, %(now)s
        FROM import_rows r
        WHERE NOT EXISTS (
            SELECT 1 FROM contacts_subscription s
            WHERE s.contact_list_id = %(list)s AND s.contact_id = r.contact_id
        )
        ORDER BY r.contact_id
        """
    try:
        with transaction.atomic():  # a savepoint, to retry after a conflict
            cursor.execute(statement, params)
    except UniqueViolation:
        # Subscribed meanwhile by someone else (a form, the API): their row is kept.
        cursor.execute(statement + " ON CONFLICT (contact_list_id, contact_id) DO NOTHING", params)
    return cursor.rowcount


def _load_rejects(cursor: object, path: Path) -> None:
    with (
        path.open("rb") as handle,
        cursor.copy(
            'COPY contacts_importreject (job_id, row_number, "column", value, reason, warning) '
            'FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ("column", value, reason))'
        ) as copy,
    ):
        while chunk := handle.read(1 << 16):
            copy.write(chunk)


def run_import(job_id: int) -> ImportJob | None:
    """Carry out a queued import. Idempotent: a job that is not queued is left alone (a
    broker may deliver the same task twice)."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("account", "contact_list").get(pk=job_id)
    rejects_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - deleted in finally
        mode="w", encoding="utf-8", newline="", suffix=".csv", delete=False
    )
    rejects_path = Path(rejects_file.name)
    outcome: dict[str, object] = {}
    keep_file = False
    try:
        with transaction.atomic():
            with connection.cursor() as wrapper:
                cursor = wrapper.cursor  # psycopg's own cursor, for COPY
                # (ON COMMIT DROP does not fire inside an enclosing transaction)
                cursor.execute("DROP TABLE IF EXISTS import_staging, import_rows")
                # Sorts and hashes of a million rows in memory; the commit need not wait
                # for the disk (a crash loses the whole import and its DONE status alike).
                cursor.execute("SET LOCAL work_mem = '256MB'")
                cursor.execute("SET LOCAL synchronous_commit = off")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                staged = _stage(job, cursor, csv.writer(rejects_file))
                rejects_file.close()
                # (keeps the progress alive through the merge, see imports_sweep)
                _report(
                    job,
                    staged["staged"] + staged["invalid"],
                    job.size_bytes,
                    time.monotonic() - staged["seconds"],
                )
                every_row_rejected = not staged["staged"] and staged["invalid"]
                if every_row_rejected:
                    # The file's mapping is wrong, not its people: nothing is merged.
                    _load_rejects(cursor, rejects_path)
                    keep_file = _all_rejected(job, staged)
                else:
                    merging = time.monotonic()
                    merged = _merge(job, cursor)
                    _load_rejects(cursor, rejects_path)
                    merge_seconds = time.monotonic() - merging
            if not every_row_rejected:
                _done(job, staged, merged)
                outcome = {**staged, **merged, "merge_seconds": merge_seconds}
    except Cancelled:
        _finish(job, ImportJob.Status.CANCELLED, "")
        _forget_declared(job)
    except ImportFileError as error:
        _finish(job, ImportJob.Status.FAILED, " ".join(error.messages))
        _forget_declared(job)
    except Exception as error:
        logger.exception("Import %s failed", job.pk)
        _finish(
            job,
            ImportJob.Status.FAILED,
            f"The import stopped on an unexpected error ({error.__class__.__name__}); "
            "nothing was imported.",
        )
        _forget_declared(job)
        raise
    finally:
        if not rejects_file.closed:
            rejects_file.close()
        rejects_path.unlink(missing_ok=True)
        if not keep_file:
            Path(job.file_path).unlink(missing_ok=True)
        cache.delete_many([_progress_key(job.pk), _cancel_key(job.pk)])
    return _finished(job, outcome)


def _finished(job: ImportJob, outcome: dict[str, object]) -> ImportJob:
    forget_list_counts([job.contact_list_id])
    job.refresh_from_db()
    if job.status == ImportJob.Status.DONE:
        # The worker, not the next visitor of the list, pays for counting it afresh (the
        # first read of a million new rows also sets their hint bits).
        list_counts([job.contact_list_id])
        if job.rows_done >= 100_000:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE contacts_contact, contacts_subscription")
    logger.info("Import %s done: %s", job.pk, outcome)
    return job


def _done(job: ImportJob, staged: dict[str, int], merged: dict[str, int]) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE,
        finished_at=timezone.now(),
        rows_done=staged["staged"] + staged["invalid"],
        created_count=merged["created"],
        updated_count=merged["updated"],
        subscribed_count=merged["subscribed"],
        already_subscribed_count=merged["already"],
        unsubscribed_count=merged["unsubscribed"],
        suppressed_count=merged["suppressed"],
        duplicate_count=staged["staged"] - merged["unique"],
        invalid_count=staged["invalid"],
        warning_count=staged["warnings"],
    )
    audit_log(
        account=job.account,
        actor=job.created_by,
        action="contacts.imported",
        list=job.contact_list.name,
        file=job.original_name,
        created=merged["created"],
        updated=merged["updated"],
        subscribed=merged["subscribed"],
        invalid=staged["invalid"],
        warnings=staged["warnings"],
    )


def _all_rejected(job: ImportJob, staged: dict[str, int]) -> bool:
    """An import that rejected every row saves no contact, and none of the attributes it
    declared; its file becomes a new upload, waiting for a better mapping (the sweep
    deletes it after a day). Runs in the import's transaction. Whether the file is kept.

    The new upload maps the columns as this import did, to what exists once its
    attributes are forgotten: one removed is to be declared again (``new:``), one kept
    (in use elsewhere) is mapped to as it is."""
    declared = dict(
        AttributeDefinition.objects.for_account(job.account)
        .filter(name__in=job.declared_attributes)
        .values_list("name", "type")
    )
    _forget_declared(job)
    kept = set(
        AttributeDefinition.objects.for_account(job.account)
        .filter(name__in=declared)
        .values_list("name", flat=True)
    )
    forgotten = {name: kind for name, kind in declared.items() if name not in kept}
    mapping = {
        key: f"new:{forgotten[name]}:{name}"
        if target.startswith("attribute:")
        and (name := target.removeprefix("attribute:")) in forgotten
        else target
        for key, target in job.mapping.items()
    }
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED,
        finished_at=timezone.now(),
        rows_done=staged["invalid"],
        invalid_count=staged["invalid"],
        warning_count=staged["warnings"],
        error=f"Every row was rejected ({staged['invalid']:,}): nothing was imported. "
        "The rejects say why; most often a column is mapped to the wrong field.",
    )
    path = Path(job.file_path)
    if not job.file_path or not path.is_file():
        return False
    ImportJob.objects.create(
        account=job.account,
        contact_list=job.contact_list,
        created_by=job.created_by,
        file_path=job.file_path,
        original_name=job.original_name,
        size_bytes=job.size_bytes,
        encoding=job.encoding,
        delimiter=job.delimiter,
        columns=job.columns,
        mapping=mapping,
        legal_basis=job.legal_basis,
        consent_text=job.consent_text,
        update_existing=job.update_existing,
        retry_of=job,
    )
    return True


def _finish(job: ImportJob, status: str, error: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=timezone.now()
    )


def imports_sweep(
    *,
    stale_after: timedelta = timedelta(minutes=30),
    upload_ttl: timedelta = timedelta(hours=24),
) -> dict[str, int]:
    """Imports nobody will finish. A worker that died mid-import leaves its job running
    (its transaction rolled back, so nothing was imported) and stops refreshing its
    progress; an upload never mapped keeps its file. The first are marked failed, the
    second cancelled, and their files deleted."""
    now = timezone.now()
    running = ImportJob.objects.filter(
        status=ImportJob.Status.RUNNING, started_at__lt=now - stale_after
    )
    stale = 0
    for job in running:
        if cache.get(_progress_key(job.pk)) is None:
            _finish(
                job,
                ImportJob.Status.FAILED,
                "The import stopped (its worker ended); nothing was imported. "
                "Upload the file again.",
            )
            Path(job.file_path).unlink(missing_ok=True)
            _forget_declared(job)
            stale += 1
    waiting = ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADED, created_at__lt=now - upload_ttl
    )
    abandoned = 0
    for job in waiting:
        Path(job.file_path).unlink(missing_ok=True)
        _finish(job, ImportJob.Status.CANCELLED, "")
        _forget_declared(job)
        abandoned += 1
    return {"stale": stale, "abandoned": abandoned}
