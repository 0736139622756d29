"""What an import tells while it runs and once it is done: its progress, shared through
the cache while the database connection is in COPY (and the customer's request to
cancel, by the same way), the outcome's counts and audit row, and the rows it refused.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from django.core.cache import cache
from django.utils import timezone
from psycopg import Cursor

from accounts.models import Account
from accounts.services import audit_log
from contacts.models import ImportJob, ImportReject


def progress_key(job_id: int) -> str:
    return f"import:{job_id}:progress"


def cancel_key(job_id: int) -> str:
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
    data = cache.get(progress_key(job.pk))
    if data:
        return Progress(**data)
    done = job.is_finished
    return Progress(
        rows=job.rows_done,
        bytes_read=job.size_bytes if done else 0,
        size=job.size_bytes,
        seconds=0.0,
    )


class StageCounts(TypedDict):
    """What the staging of a file counted, and how long it took."""

    staged: int
    invalid: int
    warnings: int
    seconds: float


class Cancelled(Exception):
    """Raised inside the run when the customer cancels: the transaction rolls back."""


def report_progress(job: ImportJob, rows: int, bytes_read: int, started: float) -> None:
    """Share how far the run is, or raise Cancelled if the customer asked to cancel."""
    if cache.get(cancel_key(job.pk)):
        raise Cancelled
    cache.set(
        progress_key(job.pk),
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


def record_done(job: ImportJob, staged: StageCounts, merged: dict[str, int]) -> None:
    """The counts of an import that merged its rows, on the job, and its audit row."""
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
        acting="",  # (given, so that no key below can stand for it)
        # with a column of tags, how many were created and put on contacts
        **{key: merged[key] for key in ("tags_created", "tagged") if key in merged},
    )


def load_rejects(cursor: Cursor[Any], path: Path) -> None:
    """The rejects and warnings the staging wrote to ``path`` (as rows of
    contacts_importreject), COPYed into the import's transaction."""
    with (
        path.open("rb") as handle,
        cursor.copy(
            'COPY contacts_importreject (job_id, row_number, "column", value, reason, warning) '
            'FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ("column", value, reason))'
        ) as copy,
    ):
        while chunk := handle.read(1 << 16):
            copy.write(chunk)


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
