"""The uploaded file, read before anything is imported: its encoding, delimiter, header
and first rows, whether it is another tool's export (Mailchimp, Brevo, listmonk), and the
column mapping its header and rows suggest.

A problem with the file as a whole is an ImportFileError: raised here at upload, and by
the run when the file turns out not to be valid CSV further down.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError

from contacts.models import ATTRIBUTE_NAME, RESERVED_ATTRIBUTE_NAMES, AttributeDefinition, ImportJob
from contacts.services import clean_attribute

SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 5
PREVIEW_CELL = 200  # characters of a cell shown on the mapping screen
MAX_COLUMNS = 200
# The longest value kept (csv's own default limit). The reader itself takes any length,
# so that a longer field is reported by its row and column rather than failing the file.
FIELD_LIMIT = 131_072
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
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
TAG_HEADERS = {"tags", "tag", "labels", "étiquettes", "etiquettes"}
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


_TAGS_NOTE = "Imported as tags: each name becomes a tag, created as needed."
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


class ImportFileError(ValidationError):
    """A problem with the file as a whole: nothing was imported."""


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
    proof, tags, attribute:NAME, new:TYPE:NAME or ignore."""
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
        elif key in TAG_HEADERS:
            mapping[str(index)] = "tags"
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
