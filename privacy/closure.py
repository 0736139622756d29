"""Closing an account, and what follows: the full export offered first, sending stopped at
once, the owner able to reopen until the data are deleted (90 days by default), then
everything deleted but an anonymized stub kept for Missive's operators."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count, IntegerField, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.closing import purge_date
from accounts.models import Account, Membership, User
from accounts.roles import Role
from accounts.services import audit_log
from campaigns.models import Campaign, Delivery
from campaigns.services import stop_all_sending
from contacts import exporting
from contacts.models import ContactList, ImportJob, Suppression
from journeys.services import end_all as end_all_journeys
from media.models import Image
from media.services import images_purge


@transaction.atomic
def account_close(*, account: Account, actor: User, password: str, typed_name: str) -> Account:
    """Close the account: the owner re-enters the password and types the account name."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    if not Membership.objects.filter(account=account, user=actor, role=Role.OWNER).exists():
        raise ValidationError("Only an owner can close the account.")
    errors = {}
    if not actor.check_password(password):
        errors["password"] = "This is not your password."  # noqa: S105 - a message
    if typed_name.strip() != account.name:
        errors["confirm_name"] = f"Type the account name exactly: {account.name}"
    if errors:
        raise ValidationError(errors)
    if not account.is_active:
        raise ValidationError("The account is already closed.")
    journeys_ended = end_all_journeys(account=account, actor=actor)
    stopped = stop_all_sending(account=account, actor=actor)
    account.status = Account.Status.CLOSED
    account.closed_at = timezone.now()
    account.save(update_fields=["status", "closed_at"])
    deleted_on = purge_date(account)
    assert deleted_on is not None, "a closed account has its purge date"
    audit_log(
        account=account,
        actor=actor,
        action="account.closed",
        campaigns_stopped=stopped,
        journeys_ended=journeys_ended,
        data_deleted_on=deleted_on.date().isoformat(),
    )
    return account


# -- the data purge ----------------------------------------------------------------------------

# The big tables, emptied set-based first; every other row that belongs to the account
# goes through Django (which also follows its cascades).
_BULK_DELETES = (
    "DELETE FROM stats_event WHERE account_id = %(account)s",
    "DELETE FROM campaigns_deliverybody WHERE delivery_id IN (SELECT d.id FROM "
    "campaigns_delivery d JOIN campaigns_campaign c ON c.id = d.campaign_id "
    "WHERE c.account_id = %(account)s)",
    "DELETE FROM campaigns_delivery WHERE campaign_id IN (SELECT id FROM campaigns_campaign "
    "WHERE account_id = %(account)s)",
    "DELETE FROM contacts_subscription WHERE contact_list_id IN (SELECT id FROM "
    "contacts_contactlist WHERE account_id = %(account)s)",
    "DELETE FROM contacts_contact WHERE account_id = %(account)s",
)


def _account_models() -> list[type[Model]]:
    """Every project model with a direct foreign key to Account, but Account itself."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in ("accounts", "contacts", "campaigns", "journeys"):
            continue
        if any(
            getattr(field, "related_model", None) is Account and field.name == "account"
            for field in model._meta.get_fields()
            if field.concrete
        ):
            found.append(model)
    return found


@transaction.atomic
def purge_account_data(account: Account) -> int:
    """Delete everything the account holds, leaving an anonymized stub. Returns the number
    of rows deleted."""
    removed = 0
    with connection.cursor() as cursor:
        for statement in _BULK_DELETES:
            cursor.execute(statement, {"account": account.pk})
            removed += max(cursor.rowcount, 0)
    for job in ImportJob.objects.filter(account=account).exclude(file_path=""):
        Path(job.file_path).unlink(missing_ok=True)
    # The images' rows now, their files from storage once this transaction commits.
    removed += images_purge(account)
    for model in _account_models():
        deleted, _ = model._base_manager.filter(account=account).delete()
        removed += deleted
    Account.objects.filter(pk=account.pk).update(
        name=f"Closed account #{account.pk}",
        postal_address="",
        default_from_name="",
        default_from_email="",
        purged_at=timezone.now(),
    )
    return removed


def purge_due(now: datetime) -> list[Account]:
    days = settings.MISSIVE_RETENTION["closed_accounts_days"]
    return list(
        Account.objects.filter(
            status=Account.Status.CLOSED,
            purged_at__isnull=True,
            closed_at__lt=now - timedelta(days=days),
        )
    )


# -- the full export ---------------------------------------------------------------------------


def _csv_and_json(archive: zipfile.ZipFile, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" and v else v)
                    for k, v in row.items()
                }
            )
    archive.writestr(f"{name}.csv", text.getvalue())
    archive.writestr(
        f"{name}.json", json.dumps(rows, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1)
    )


def _count(deliveries: QuerySet) -> Coalesce:
    return Coalesce(
        Subquery(
            deliveries.order_by().values("campaign").annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        ),
        0,
    )


def full_export(account: Account) -> IO[bytes]:
    """A ZIP of everything the account holds, as CSV and JSON: contacts with their
    subscriptions and consent proof (streamed from PostgreSQL into the file), lists,
    campaigns with their statistics, suppressions (hashes), images (their addresses).
    Returns an open temporary file positioned at its start."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, for the response
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("contacts.csv", "w", force_zip64=True) as out:
            for chunk in exporting.csv_chunks(account):
                out.write(chunk)
        with archive.open("contacts.ndjson", "w", force_zip64=True) as out:
            for chunk in exporting.ndjson_chunks(account):
                out.write(chunk)
        lists = list(ContactList.objects.for_account(account).values("id", "name", "created_at"))
        _csv_and_json(archive, "lists", lists)
        delivered = Delivery.objects.filter(campaign=OuterRef("pk"))
        statuses = Delivery.Status
        campaigns = [
            {
                "id": campaign.pk,
                "name": campaign.name,
                "subject": campaign.subject,
                "status": campaign.status,
                "started_at": campaign.started_at,
                "finished_at": campaign.finished_at,
                "recipients": campaign.recipients_count,
                "sent": campaign.sent_count,
                "failed": campaign.failed_count,
                "opened": campaign.opened,
                "clicked": campaign.clicked,
                "bounced": campaign.bounced,
                "complained": campaign.complained,
                "html": campaign.html,
                "text": campaign.text,
            }
            # The statistics of every campaign in one statement, not four per campaign.
            for campaign in Campaign.objects.for_account(account)
            .order_by("created_at")
            .annotate(
                opened=_count(delivered.filter(first_opened_at__isnull=False)),
                clicked=_count(delivered.filter(first_clicked_at__isnull=False)),
                bounced=_count(delivered.filter(status=statuses.BOUNCED)),
                complained=_count(delivered.filter(status=statuses.COMPLAINED)),
            )
        ]
        _csv_and_json(archive, "campaigns", campaigns)
        suppressions = list(
            Suppression.objects.for_account(account).values("email_sha256", "reason", "created_at")
        )
        _csv_and_json(archive, "suppressions", suppressions)
        images = [
            {
                "name": image.name,
                "format": image.format,
                "width": image.width,
                "height": image.height,
                "size": image.size,
                "url": image.url(),
                "created_at": image.created_at,
            }
            for image in Image.objects.for_account(account).order_by("created_at", "id")
        ]
        _csv_and_json(archive, "images", images)
        archive.writestr(
            "README.txt",
            f"Everything {account.name} keeps in Missive, exported "
            f"{timezone.now():%Y-%m-%d %H:%M} UTC.\n"
            "contacts.csv / contacts.ndjson: one row per contact and list, with the consent "
            "proof.\nlists, campaigns (with statistics), suppressions (SHA-256 of the "
            "addresses), images (with the address each is served at): CSV and JSON.\n",
        )
    spool.seek(0)
    return spool
