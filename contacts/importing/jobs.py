"""An import's life: the upload, the mapping (which queues it), a cancel, the run (the
``contacts.run_import`` task: stage, merge, report, in one transaction), its end
whatever the outcome, and the sweep of imports nobody will finish.
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account, User
from accounts.tasking import enqueue
from contacts.importing.attributes import forget_declared, lock_definitions
from contacts.importing.mapping import SINGLE_TARGETS, check_mapping, parse_new_attribute
from contacts.importing.merge import merge_rows
from contacts.importing.report import (
    Cancelled,
    StageCounts,
    cancel_key,
    load_rejects,
    progress_key,
    record_done,
    report_progress,
)
from contacts.importing.sniff import ImportFileError, sniff, suggest_mapping
from contacts.importing.stage import stage_rows
from contacts.models import AttributeDefinition, ContactList, ImportJob, Subscription
from contacts.selectors import forget_list_counts, list_counts
from contacts.services import attribute_define

logger = logging.getLogger(__name__)


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
    # Locked until the job is saved as queued: forget_declared passes them by meanwhile,
    # and from then on sees the job.
    declared = lock_definitions(
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
            # Removed again if the import saves nothing (see forget_declared).
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
    cache.set(cancel_key(job.pk), True, timeout=24 * 3600)
    updated = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED]
    ).update(status=ImportJob.Status.CANCELLED, finished_at=timezone.now())
    if updated:
        Path(job.file_path).unlink(missing_ok=True)
        forget_declared(job)
    job.refresh_from_db()
    return job


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
                staged = stage_rows(job, cursor, csv.writer(rejects_file))
                rejects_file.close()
                # (keeps the progress alive through the merge, see imports_sweep)
                report_progress(
                    job,
                    staged["staged"] + staged["invalid"],
                    job.size_bytes,
                    time.monotonic() - staged["seconds"],
                )
                every_row_rejected = not staged["staged"] and staged["invalid"]
                if every_row_rejected:
                    # The file's mapping is wrong, not its people: nothing is merged.
                    load_rejects(cursor, rejects_path)
                    keep_file = _all_rejected(job, staged)
                else:
                    merging = time.monotonic()
                    merged = merge_rows(job, cursor)
                    load_rejects(cursor, rejects_path)
                    merge_seconds = time.monotonic() - merging
            if not every_row_rejected:
                record_done(job, staged, merged)
                outcome = {**staged, **merged, "merge_seconds": merge_seconds}
    except Cancelled:
        _finish(job, ImportJob.Status.CANCELLED, "")
        forget_declared(job)
    except ImportFileError as error:
        _finish(job, ImportJob.Status.FAILED, " ".join(error.messages))
        forget_declared(job)
    except Exception as error:
        logger.exception("Import %s failed", job.pk)
        _finish(
            job,
            ImportJob.Status.FAILED,
            f"The import stopped on an unexpected error ({error.__class__.__name__}); "
            "nothing was imported.",
        )
        forget_declared(job)
        raise
    finally:
        if not rejects_file.closed:
            rejects_file.close()
        rejects_path.unlink(missing_ok=True)
        if not keep_file:
            Path(job.file_path).unlink(missing_ok=True)
        cache.delete_many([progress_key(job.pk), cancel_key(job.pk)])
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


def _all_rejected(job: ImportJob, staged: StageCounts) -> bool:
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
    forget_declared(job)
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
        if cache.get(progress_key(job.pk)) is None:
            _finish(
                job,
                ImportJob.Status.FAILED,
                "The import stopped (its worker ended); nothing was imported. "
                "Upload the file again.",
            )
            Path(job.file_path).unlink(missing_ok=True)
            forget_declared(job)
            stale += 1
    waiting = ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADED, created_at__lt=now - upload_ttl
    )
    abandoned = 0
    for job in waiting:
        Path(job.file_path).unlink(missing_ok=True)
        _finish(job, ImportJob.Status.CANCELLED, "")
        forget_declared(job)
        abandoned += 1
    return {"stale": stale, "abandoned": abandoned}
