"""The first half of the run: the file read once, as a stream, each row checked in Python
and the good ones COPYed to a temporary staging table; the rejects, and the values left
out of good rows (warnings), written to a file beside it. Nothing grows with the number
of rows but the database.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from _csv import Writer
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from psycopg import Cursor

from contacts.importing.attributes import lock_definitions
from contacts.importing.mapping import (
    EMAIL_PATTERN,
    FIXED_TARGETS,
    check_email,
    parse_consent_ip,
    parse_consent_time,
    parse_tag_names,
    tag_name_problem,
)
from contacts.importing.report import StageCounts, report_progress
from contacts.importing.sniff import FIELD_LIMIT, MAX_COLUMNS, ImportFileError, sample_rows
from contacts.models import AttributeDefinition, ImportJob, email_unicode_sha256
from contacts.services import clean_attribute, day_first_of

PROGRESS_EVERY = 5_000
# A row that made the reader consume this many bytes may hold a field over the limit:
# only such rows have their cells measured (a few per 64 KB chunk).
_LONG_ROW_BYTES = 16 * 1024
# A field over the limit spanning this many lines is rows swallowed by a stray quote.
_SWALLOWED_LINES = 100


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
    tags: list[int]  # columns of tag names (there may be several)

    def used(self) -> dict[int, str]:
        """Column index → target, for the columns the importer reads."""
        used = {index: target for target, index in vars(self).items() if isinstance(index, int)}
        used.update({index: "attribute" for index, _definition, _column in self.attributes})
        used.update(dict.fromkeys(self.tags, "tags"))
        return used


def _plan(job: ImportJob) -> _Plan:
    """What to read from which column; the attributes it maps to are locked until the
    import commits (see lock_definitions)."""
    definitions = lock_definitions(
        job.account_id,
        [t.removeprefix("attribute:") for t in job.mapping.values() if t.startswith("attribute:")],
    )
    fixed: dict[str, int] = {}
    attributes = []
    tags = []
    for key, target in job.mapping.items():
        index = int(key)
        if target == "tags":
            tags.append(index)
        elif target.startswith("attribute:"):
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
        tags=sorted(tags),
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
    "consent_ip inet, confirmed_at timestamptz, unicode_sha256 text, tags text[]) "
    "ON COMMIT DROP"
)
NAME_LIMIT = 150  # Contact.first_name and last_name


def _too_long(value: str) -> str:
    return f"field too long ({len(value):,} characters; the limit is {FIELD_LIMIT:,})"


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


def _tag_reader(
    columns: list[int],
) -> Callable[[list[str], int, Callable[[int, str, str], None]], list[str] | None]:
    """The tag names of a row's tag columns (None for none), a name that cannot be a
    tag left out with a warning. Cells are remembered: the same few repeat."""
    memo: dict[str, tuple[list[str], list[str]]] = {}

    def read(row: list[str], width: int, warn: Callable[[int, str, str], None]) -> list[str] | None:
        names: dict[str, str] = {}
        for index in columns:
            raw = row[index] if index < width else ""
            if not raw.strip():
                continue
            if raw not in memo:
                if len(memo) > 10_000:
                    memo.clear()
                memo[raw] = parse_tag_names(raw)
            good, bad = memo[raw]
            for name in bad:
                warn(index, name, f"{tag_name_problem(name)}: left out")
            for name in good:
                names.setdefault(name.lower(), name)
        return list(names.values()) or None

    return read


def _day_first_columns(job: ImportJob, plan: _Plan) -> dict[int, bool]:
    """For each date column, whether its dates put the day first, read from its first
    rows (03/04/2024 is April in Lisbon and March in Chicago; 15/04 settles it)."""
    rows = sample_rows(job, 1000)
    return {
        index: day_first_of([row[index] for row in rows if index < len(row)])
        for index, definition, _column in plan.attributes
        if definition.type == AttributeDefinition.Type.DATE
    }


def stage_rows(job: ImportJob, cursor: Cursor[Any], rejects: Writer) -> StageCounts:
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
    tag_columns = plan.tags
    tag_names = _tag_reader(tag_columns)
    match = EMAIL_PATTERN.match
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
            "consent_at, consent_ip, confirmed_at, unicode_sha256, tags) FROM STDIN"
        ) as copy:
            write_row = copy.write_row
            for row_number, row in enumerate(_reader(job, counter), 2):
                if row_number % PROGRESS_EVERY == 0:
                    report_progress(job, staged + invalid, counter.count, started)
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
                    checked, reason = check_email(raw_email)
                    if checked is None:
                        rejects.writerow(
                            [job.pk, row_number, email_column, raw_email[:500], reason[:255], "f"]
                        )
                        invalid += 1
                        continue
                    email = checked
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
                    when = parse_consent_time(row[consent_at])
                    if when is None:
                        warn(
                            consent_at,
                            row[consent_at],
                            "not a date and time: the import's time is kept",
                        )
                if consent_ip is not None and consent_ip < width and row[consent_ip].strip():
                    ip = parse_consent_ip(row[consent_ip])
                    if ip is None:
                        warn(consent_ip, row[consent_ip], "not an IP address: left out")
                if confirmed_at is not None and confirmed_at < width and row[confirmed_at].strip():
                    confirmed = parse_consent_time(row[confirmed_at])
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
                        tag_names(row, width, warn) if tag_columns else None,
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
    report_progress(job, staged + invalid, counter.count, started)
    return {
        "staged": staged,
        "invalid": invalid,
        "warnings": warnings,
        "seconds": time.monotonic() - started,
    }
