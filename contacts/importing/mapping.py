"""The column mapping: the targets a column can be mapped to, what each keeps of a cell
(an email address, a consent time or IP address, an attribute's value), and the checks
of a customer's mapping, against the file's first rows, before the import is queued.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re

from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import normalize_email
from contacts.importing.sniff import BUILT_IN_FIELDS, FIELD_LIMIT, sample_rows
from contacts.models import TAG_NAME_MAX, AttributeDefinition, ImportJob
from contacts.services import clean_attribute, day_first_of, parse_when
from contacts.tagging import clean_tag_name, split_tag_names

CHECK_ROWS = 20  # the sample the mapping screen checks the mapping against
FIXED_TARGETS = {
    "email",
    "first_name",
    "last_name",
    "full_name",  # "Ann Smith": first name Ann, last name Smith
    "consent_at",  # when the person opted in, kept as the subscription's consent proof
    "consent_ip",  # where from
    "confirmed_at",  # when they confirmed it (a double opt-in), kept with the proof
    "tags",  # tag names, separated by commas or semicolons; tags created as needed
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
# The consent proof's times: another tool's timestamps, read by parse_consent_time.
PROOF_TIMES = ("consent_at", "confirmed_at")


def parse_new_attribute(target: str) -> tuple[str, str]:
    """``new:<name>`` (text) or ``new:<type>:<name>`` → (type, name)."""
    rest = target.removeprefix("new:")
    kind, _, name = rest.partition(":")
    if name and kind in AttributeDefinition.Type.values:
        return kind, name
    return AttributeDefinition.Type.TEXT, rest


_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL_PATTERN = re.compile(
    rf"^{_ATEXT}(?:\.{_ATEXT})*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+"
    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


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
    if len(local) > 64 or not EMAIL_PATTERN.match(email):
        return None, f"{value.strip()!r} is not a valid email address"
    return email, ""


def parse_consent_time(raw: str) -> dt.datetime | None:
    """An opt-in (or confirmation) time from another tool's export; one without an offset
    is taken as UTC (Mailchimp, Brevo and listmonk all export UTC)."""
    when = parse_when(raw)
    if when is None:
        return None
    if timezone.is_naive(when):
        when = when.replace(tzinfo=dt.UTC)
    return when if when <= timezone.now() + dt.timedelta(days=1) else None


def parse_tag_names(raw: str) -> tuple[list[str], list[str]]:
    """The tag names of a cell (``vip; webinar-2026``, or Mailchimp's ``"VIP","Customer"``):
    (names that can be tags, those that cannot)."""
    good, bad = [], []
    for name in split_tag_names(raw):
        try:
            good.append(clean_tag_name(name))
        except ValidationError:
            bad.append(name)
    return good, bad


def tag_name_problem(name: str) -> str:
    """Why ``name`` (from ``parse_tag_names``' second list) cannot be a tag."""
    if len(name) > TAG_NAME_MAX:
        return f"a tag name longer than {TAG_NAME_MAX} characters"
    return "a tag name with a control character"


def tag_names_problem(raw: str) -> str:
    """ "" when every name of the cell can be a tag, else what is wrong with the first."""
    bad = parse_tag_names(raw)[1]
    return tag_name_problem(bad[0]) if bad else ""


def parse_consent_ip(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


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
                    "last_name, full_name, consent_at, consent_ip, confirmed_at, tags, "
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


_NOT_A: dict[str, str] = {
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
        return "" if parse_consent_time(raw) else "not a date and time"
    if target == "tags":
        return tag_names_problem(raw)
    if target == "consent_ip":
        return "" if parse_consent_ip(raw) else "not an IP address"
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
        elif target in (*PROOF_TIMES, "consent_ip", "tags"):
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
