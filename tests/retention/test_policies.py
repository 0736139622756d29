"""Each retention policy removes exactly what is due, and nothing else; a dry run counts
the same rows and removes nothing. Time is moved, not waited for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Account, AuditEntry, MailFailure, RetentionRun
from campaigns.models import Campaign, Delivery, DeliveryBody
from contacts import services as contact_services
from contacts.models import Contact, Subscription
from events import partitions
from events.models import Event
from privacy.runner import run_policies

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _counts(names: list[str], now: datetime) -> dict[str, int]:
    return {o.policy.name: o.count for o in run_policies(dry_run=True, names=names, now=now)}


def _event(account: Account, when: datetime, **fields) -> None:
    Event.objects.create(type="open", account=account, occurred_at=when, **fields)


def test_events_go_a_whole_month_at_a_time_after_13_months(world):
    account = world.account_a
    for month in ("2025-08-01", "2025-09-01", "2025-10-01", "2025-11-01"):
        partitions.create_partition(datetime.fromisoformat(month).date())
    _event(account, datetime(2025, 8, 15, tzinfo=UTC))  # due: its month ended > 13 months ago
    _event(account, datetime(2025, 9, 30, 23, 0, tzinfo=UTC))  # due (September ended 2025-10-01)
    _event(account, datetime(2025, 10, 1, 0, 30, tzinfo=UTC))  # kept: October not over 13 months
    _event(account, datetime(2025, 11, 20, tzinfo=UTC))  # kept
    _event(account, datetime(2024, 1, 1, tzinfo=UTC))  # in the default partition: due
    _event(account, NOW)

    assert _counts(["events"], NOW) == {"events": 3}
    assert Event.objects.count() == 6

    (outcome,) = run_policies(names=["events"], now=NOW)

    assert outcome.count == 3
    assert sorted(Event.objects.values_list("occurred_at", flat=True)) == [
        datetime(2025, 10, 1, 0, 30, tzinfo=UTC),
        datetime(2025, 11, 20, tzinfo=UTC),
        NOW,
    ]
    months = partitions.existing_months()
    assert datetime(2025, 8, 1).date() not in months
    assert datetime(2025, 10, 1).date() in months


def _sent_delivery(world, email: str = "erin@alpha.test") -> Delivery:
    campaign = Campaign.objects.create(account=world.account_a, name="Old", subject="S")
    contact = Contact.objects.get(account=world.account_a, email=email)
    return Delivery.objects.create(campaign=campaign, contact=contact, status="sent")


def test_a_contacts_last_open_and_click_go_with_the_events_they_come_from(world):
    # given contacts whose newest open or click is older than the events kept, and one recent
    account = world.account_a
    old, recent = datetime(2025, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    stale = Contact.objects.create(
        account=account, email="stale@alpha.test", last_opened_at=old, last_clicked_at=recent
    )
    fresh = Contact.objects.create(
        account=account, email="fresh@alpha.test", last_opened_at=recent, last_clicked_at=None
    )
    assert _counts(["engagement_stamps"], NOW) == {"engagement_stamps": 1}

    # when the policy runs
    run_policies(names=["engagement_stamps"], now=NOW)

    # then only the stamp older than 13 months is gone: "opened in the last N days" and
    # "ever" no longer see it, as they no longer see its event
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.last_opened_at, stale.last_clicked_at) == (None, recent)
    assert (fresh.last_opened_at, fresh.last_clicked_at) == (recent, None)


def test_message_bodies_go_after_6_days(world, client):
    from campaigns import tokens

    old = _sent_delivery(world)
    DeliveryBody.objects.create(
        delivery=old, subject="s", html="<p>old</p>", text="t", created_at=NOW - timedelta(days=7)
    )
    recent = Delivery.objects.create(campaign=old.campaign, contact=None, status="sent")
    DeliveryBody.objects.create(
        delivery=recent,
        subject="s",
        html="<p>new</p>",
        text="t",
        created_at=NOW - timedelta(days=5),
    )

    assert _counts(["message_bodies"], NOW) == {"message_bodies": 1}
    run_policies(names=["message_bodies"], now=NOW)

    assert list(DeliveryBody.objects.values_list("pk", flat=True)) == [recent.pk]
    page = client.get(f"/v/{tokens.recipient_token(old.pk)}")
    assert page.status_code == 410
    assert b"no longer available" in page.content


def test_unconfirmed_opt_ins_go_after_30_days_with_contacts_nothing_else_holds(world):
    account = world.account_a
    newsletter = world.extras["list"]
    other = contact_services.list_create(account=account, actor=None, name="Other")
    lone = Contact.objects.create(account=account, email="lone@example.net")
    held = Contact.objects.create(account=account, email="held@example.net")
    fresh = Contact.objects.create(account=account, email="fresh@example.net")
    Subscription.objects.create(
        contact=lone,
        contact_list=newsletter,
        status="unconfirmed",
        created_at=NOW - timedelta(days=31),
    )
    Subscription.objects.create(
        contact=held,
        contact_list=newsletter,
        status="unconfirmed",
        created_at=NOW - timedelta(days=31),
    )
    Subscription.objects.create(contact=held, contact_list=other, status="subscribed")
    Subscription.objects.create(
        contact=fresh,
        contact_list=newsletter,
        status="unconfirmed",
        created_at=NOW - timedelta(days=29),
    )

    assert _counts(["unconfirmed_opt_ins"], NOW) == {"unconfirmed_opt_ins": 2}
    run_policies(names=["unconfirmed_opt_ins"], now=NOW)

    assert not Contact.objects.filter(pk=lone.pk).exists()
    assert Contact.objects.filter(pk=held.pk).exists()
    assert list(Subscription.objects.filter(contact=held).values_list("status", flat=True)) == [
        "subscribed"
    ]
    assert Subscription.objects.get(contact=fresh).status == "unconfirmed"


def test_inactive_contacts_go_30_days_after_the_account_is_told(
    world, time_machine, tasks_inline, django_capture_on_commit_callbacks
):
    account = world.account_a
    account.inactivity_horizon_days = 365
    account.save()
    newsletter = world.extras["list"]
    time_machine.move_to(NOW, tick=False)
    Contact.objects.filter(account=account).update(created_at=NOW - timedelta(days=10))
    asleep = contact_services.contact_create(
        account=account, actor=None, email="asleep@example.net", lists=[newsletter]
    )
    waking = contact_services.contact_create(
        account=account, actor=None, email="waking@example.net", lists=[newsletter]
    )
    recent = contact_services.contact_create(
        account=account, actor=None, email="recent@example.net", lists=[newsletter]
    )
    Contact.objects.filter(pk=asleep.pk).update(last_activity_at=NOW - timedelta(days=400))
    Contact.objects.filter(pk=waking.pk).update(last_activity_at=NOW - timedelta(days=390))
    Contact.objects.filter(pk=recent.pk).update(created_at=NOW - timedelta(days=300))

    with django_capture_on_commit_callbacks(execute=True):
        outcome = run_policies(names=["inactive_contacts"], now=NOW)[0]
    assert outcome.count == 0  # told, not removed
    account.refresh_from_db()
    assert account.inactivity_notified_at == NOW
    assert "2 inactive contacts will be removed on 2026-12-23" in mail.outbox[-1].subject
    assert mail.outbox[-1].to == ["alice@alpha.test"]
    assert "2 contacts of" in mail.outbox[-1].alternatives[0][0]
    assert _counts(["inactive_contacts"], NOW + timedelta(days=29)) == {"inactive_contacts": 0}

    Contact.objects.filter(pk=waking.pk).update(last_activity_at=NOW + timedelta(days=5))  # a click
    later = NOW + timedelta(days=31)
    assert _counts(["inactive_contacts"], later) == {"inactive_contacts": 1}
    run_policies(names=["inactive_contacts"], now=later)

    emails = set(Contact.objects.filter(account=account).values_list("email", flat=True))
    assert "asleep@example.net" not in emails
    assert {"waking@example.net", "recent@example.net", "erin@alpha.test"} <= emails


def test_a_closed_accounts_data_go_after_90_days_leaving_a_stub(
    world, django_capture_on_commit_callbacks
):
    account = world.account_a
    delivery = _sent_delivery(world)
    _event(account, timezone.now(), campaign_id=delivery.campaign_id, delivery_id=delivery.pk)
    Account.objects.filter(pk=account.pk).update(
        status="closed", closed_at=NOW - timedelta(days=91)
    )
    Account.objects.filter(pk=world.account_b.pk).update(
        status="closed", closed_at=NOW - timedelta(days=80)
    )

    assert _counts(["closed_accounts"], NOW) == {"closed_accounts": 1}
    run_policies(names=["closed_accounts"], now=NOW)

    account.refresh_from_db()
    assert account.name == f"Closed account #{account.pk}"
    assert account.purged_at is not None
    assert account.postal_address == ""
    assert not Contact.objects.filter(account=account).exists()
    assert not Campaign.objects.filter(account=account).exists()
    assert not Delivery.objects.filter(pk=delivery.pk).exists()
    assert not Event.objects.filter(account=account).exists()
    assert not account.memberships.exists()
    assert not AuditEntry.objects.filter(account=account).exists()
    # The other account, closed 80 days ago, keeps everything.
    assert world.account_b.memberships.exists()


def test_audit_entries_go_after_a_year(world):
    AuditEntry.objects.create(
        account=world.account_a, action="x", created_at=NOW - timedelta(days=366)
    )
    kept = AuditEntry.objects.filter(account=world.account_a).count() - 1

    assert _counts(["audit_log"], NOW)["audit_log"] >= 1
    run_policies(names=["audit_log"], now=NOW)

    assert AuditEntry.objects.filter(account=world.account_a).count() == kept


def test_records_of_unsent_mail_go_after_90_days(db):
    old = MailFailure.objects.create(
        kind="invitation",
        recipients="dana@example.com",
        subject="s",
        error="e",
        attempts=8,
        created_at=NOW - DAY * 91,
    )
    recent = MailFailure.objects.create(
        kind="invitation",
        recipients="eve@example.com",
        subject="s",
        error="e",
        attempts=8,
        created_at=NOW - DAY * 89,
    )

    assert _counts(["mail_failures"], NOW) == {"mail_failures": 1}
    run_policies(names=["mail_failures"], now=NOW)

    assert not MailFailure.objects.filter(pk=old.pk).exists()
    assert MailFailure.objects.filter(pk=recent.pk).exists()


def test_purge_command_dry_run_lists_counts_and_removes_nothing(world):
    old = _sent_delivery(world)
    DeliveryBody.objects.create(
        delivery=old, subject="s", html="h", text="t", created_at=timezone.now() - timedelta(days=9)
    )
    out = StringIO()

    call_command("purge", "--dry-run", stdout=out)

    assert "message_bodies" in out.getvalue()
    assert "would remove          1" in out.getvalue()
    assert DeliveryBody.objects.count() == 1
    assert RetentionRun.objects.filter(policy="message_bodies", dry_run=True, removed=1).exists()

    call_command("purge", "--policy", "message_bodies", stdout=StringIO())
    assert DeliveryBody.objects.count() == 0


def test_an_unknown_policy_name_is_refused(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown retention policy"):
        call_command("purge", "--policy", "nope", stdout=StringIO())


def test_the_data_requests_log_goes_after_a_year(world):
    from contacts.models import DataRequest

    old = DataRequest.objects.create(
        account=world.account_a, kind="access", email_sha256="0" * 64, created_at=NOW - DAY * 366
    )
    recent = DataRequest.objects.create(
        account=world.account_a, kind="access", email_sha256="1" * 64, created_at=NOW - DAY * 300
    )

    assert _counts(["data_requests_log"], NOW) == {"data_requests_log": 1}
    run_policies(names=["data_requests_log"], now=NOW)

    assert list(DataRequest.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not DataRequest.objects.filter(pk=old.pk).exists()


def test_closing_stops_a_sending_campaign_and_the_data_go_after_the_grace_period(
    world, time_machine
):
    from campaigns.states import State
    from privacy import closure
    from tests.factories import PASSWORD

    time_machine.move_to(NOW, tick=False)
    campaign = world.extras["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENDING)
    account = world.account_a

    closure.account_close(
        account=account, actor=world.alice, password=PASSWORD, typed_name=account.name
    )

    campaign.refresh_from_db()
    assert campaign.status == State.CANCELLED
    assert run_policies(names=["closed_accounts"], now=NOW + DAY * 89)[0].count == 0
    assert Contact.objects.filter(account=account).exists()

    time_machine.move_to(NOW + DAY * 91, tick=False)
    assert run_policies(names=["closed_accounts"])[0].count == 1
    assert not Contact.objects.filter(account=account).exists()
    assert not Campaign.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.name == f"Closed account #{account.pk}"
