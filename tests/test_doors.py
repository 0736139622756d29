"""One door per duty: each use case has one service that writes it, and every route goes
through that service. The source is read for the writes themselves (a second writer
would show up here), then each door is driven from its routes: an unsubscribe, a
suppression, an event, a first open, a campaign's move, a delete of contacts; each
audited where a member or an API key acted, or where Missive itself did."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AuditEntry
from campaigns import lifecycle, sending, services
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery
from campaigns.states import Action, State
from contacts import services as contact_services
from contacts.models import Contact, DataRequest, Subscription, Suppression, email_sha256
from events.models import Event
from events.services import record_event
from stats.feedback import Feedback, Outcome, feedback_record, sending_suspend
from tests.stats.feedback_helpers import send

ROOT = Path(__file__).resolve().parents[1]

# What writes each duty, and the one module allowed to.
WRITES = {
    "an unsubscribed status": (
        re.compile(
            r"\.status\s*=\s*(?:S|Subscription\.Status)\.UNSUBSCRIBED|"
            r"update\([^)]*status=(?:S|Subscription\.Status)\.UNSUBSCRIBED|"
            r"SET status = (?:'unsubscribed'|%\(unsubscribed\)s)"
        ),
        "contacts/services.py",
    ),
    "a suppression": (
        re.compile(
            r"INSERT INTO contacts_suppression|"
            r"Suppression\.objects\.(?:create|get_or_create|update_or_create|bulk_create)|"
            r"(?<!class )\bSuppression\("
        ),
        "contacts/services.py",
    ),
    "an event row": (
        re.compile(
            r"INSERT INTO stats_event|"
            r"(?<![\w.])Event\.objects\.(?:create|get_or_create|bulk_create)|"
            r"(?<![\w.])(?<!class )Event\("
        ),
        "events/services.py",
    ),
    "a first-open stamp": (
        re.compile(r"SET first_opened_at|\.first_opened_at\s*=(?!=)|update\([^)]*first_opened_at="),
        "campaigns/engagement.py",
    ),
    "a campaign's state": (
        re.compile(r"\bcampaign\.status\s*=(?!=)|Campaign\.objects.*\.update\(status="),
        "campaigns/lifecycle.py",
    ),
    "an enrollment in a journey": (
        re.compile(
            r"INSERT INTO journeys_enrollment|"
            r"Enrollment\.objects\.(?:create|get_or_create|update_or_create|bulk_create)"
        ),
        "journeys/engine.py",
    ),
    "a journey's state": (
        re.compile(r"\bjourney\.status\s*=(?!=)|Journey\.objects.*\.update\(status="),
        "journeys/services.py",
    ),
}


def _sources() -> dict[str, str]:
    found = {}
    for app in settings.MISSIVE_APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                found[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return found


@pytest.mark.parametrize("duty", WRITES)
def test_one_module_writes_each_duty(duty):
    pattern, door = WRITES[duty]

    writers = sorted(name for name, text in _sources().items() if pattern.search(text))

    assert writers == [door]


PLANTED = {
    "an unsubscribed status": "Subscription.objects.filter(pk=1).update(status=S.UNSUBSCRIBED)",
    "a suppression": "Suppression.objects.get_or_create(account=a, email_sha256=d)",
    "an event row": "Event.objects.create(type='open', account_id=1)",
    "a first-open stamp": "Delivery.objects.filter(pk=1).update(first_opened_at=now)",
    "a campaign's state": "campaign.status = State.SENT",
    "an enrollment in a journey": "Enrollment.objects.create(journey=j, contact=c)",
    "a journey's state": "Journey.objects.filter(pk=1).update(status='live')",
}


@pytest.mark.parametrize("duty", WRITES)
def test_the_scan_sees_a_second_writer(duty):
    # Given a route that writes it itself, beside the service: the scan finds it
    assert WRITES[duty][0].search(PLANTED[duty])


# -- unsubscribe ---------------------------------------------------------------------------------


def _audit(account: Account, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(account=account, action=action).order_by("pk"))


def test_an_unsubscribe_through_the_api_is_audited_under_the_key(world, db):
    from django.test import Client

    newsletter = world.extras["list"]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")

    response = api.post(
        f"/api/v1/lists/{newsletter.pk}/subscriptions/unsubscribe/",
        {"email": "erin@alpha.test"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "unsubscribed"
    (entry,) = _audit(world.account_a, "contacts.unsubscribed")
    assert "Alpha Sentinel key" in entry.actor_label
    assert entry.detail["how"] == "api"
    assert entry.detail["list"] == newsletter.name


def test_a_bulk_unsubscribe_is_audited_under_the_member(world, alice_client):
    erin = world.extras["contact"]

    alice_client.post(
        reverse("contacts_bulk"),
        {"action": "unsubscribe", "ids": [erin.pk], "confirmed": "yes"},
    )

    assert Subscription.objects.get(contact=erin).status == Subscription.Status.UNSUBSCRIBED
    (entry,) = _audit(world.account_a, "contacts.unsubscribed")
    assert entry.actor == world.alice


def test_a_recipients_unsubscribe_is_an_event_not_an_audit_entry(world, client):
    from campaigns import tokens

    delivery = send(world)

    client.post(
        f"/u/{tokens.recipient_token(delivery.pk)}",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert Subscription.objects.get(contact=delivery.contact).status == "unsubscribed"
    (event,) = Event.objects.filter(delivery_id=delivery.pk, type=Event.Type.UNSUBSCRIBE)
    assert event.detail == {"how": "one-click", "lists": [world.extras["list"].pk]}
    assert _audit(world.account_a, "contacts.unsubscribed") == []


def test_the_unsubscribe_service_leaves_other_accounts_alone(world):
    erin = world.extras["contact"]

    changed = contact_services.unsubscribe(
        account=world.account_b, actor=None, contact_ids=[erin.pk], how="bulk"
    )

    assert changed == []
    assert Subscription.objects.get(contact=erin).status == Subscription.Status.SUBSCRIBED


# -- suppress ------------------------------------------------------------------------------------


def test_suppressing_twice_keeps_the_first_entry_and_audits_once(world):
    digest = email_sha256("someone@example.com")

    first = contact_services.suppress(
        account=world.account_a, digests=[digest], reason="manual", actor=world.alice, note="A"
    )
    again = contact_services.suppress(
        account=world.account_a, digests=[digest], reason="complaint", actor=None, note="B"
    )

    assert (first.added, first.already) == ([digest], 0)
    assert (again.added, again.already) == ([], 1)
    entry = Suppression.objects.get(account=world.account_a, email_sha256=digest)
    assert (entry.reason, entry.note, entry.created_by) == ("manual", "A", world.alice)
    assert len(_audit(world.account_a, "suppression.added")) == 2  # blocked@ and this one


def test_stop_everything_on_the_preferences_page_suppresses_through_the_service(world, client):
    from campaigns import tokens

    delivery = send(world)

    client.post(f"/u/{tokens.recipient_token(delivery.pk)}/preferences", {"everything": "on"})

    entry = Suppression.objects.get(
        account=world.account_a, email_sha256=email_sha256("erin@alpha.test")
    )
    assert entry.reason == Suppression.Reason.UNSUBSCRIBE
    assert Subscription.objects.get(contact=delivery.contact).status == "unsubscribed"


# -- events and engagement -------------------------------------------------------------------------


def test_an_event_with_its_sources_id_is_stored_once(world):
    at = timezone.now()

    stored = [
        record_event("delivered", account_id=world.account_a.pk, occurred_at=at, dedup_key="x1")
        for _ in range(2)
    ]

    assert stored == [True, False]
    assert Event.objects.filter(dedup_key="x1").count() == 1


def test_the_first_open_is_the_earliest_whatever_order_reports_arrive_in(world):
    delivery = send(world)
    now = timezone.now()
    common = {
        "account_id": world.account_a.pk,
        "campaign_id": delivery.campaign_id,
        "delivery_id": delivery.pk,
        "personal": True,
        "machine": False,
    }

    record_engagement(Event.Type.OPEN, at=now, **common)
    record_engagement(Event.Type.OPEN, at=now - timedelta(minutes=5), **common)
    record_engagement(Event.Type.OPEN, at=now + timedelta(minutes=5), **common)

    delivery.refresh_from_db()
    assert delivery.first_opened_at == now - timedelta(minutes=5)
    assert Event.objects.filter(delivery_id=delivery.pk, type="open").count() == 3


def test_a_providers_open_of_someone_who_objected_is_counted_not_named(world):
    # Given erin objected to tracking, and a campaign Missive does not track opens of
    delivery = send(world)
    Campaign.objects.filter(pk=delivery.campaign_id).update(track_opens=False)
    Contact.objects.filter(pk=delivery.contact_id).update(tracking_objected_at=timezone.now())
    delivery = Delivery.objects.select_related("campaign__account", "contact").get(pk=delivery.pk)

    # When the provider reports her open
    feedback_record(
        delivery=delivery,
        feedback=Feedback(outcome=Outcome.OPEN, source="Test", user_agent="Mozilla/5.0"),
    )

    # Then it counts for the campaign, never for her
    (event,) = Event.objects.filter(campaign_id=delivery.campaign_id, type="open")
    assert event.delivery_id is None
    delivery.refresh_from_db()
    assert delivery.first_opened_at is None


# -- a campaign's state --------------------------------------------------------------------------


def test_every_action_has_an_audit_label():
    from accounts.models import AUDIT_LABELS

    assert set(lifecycle.AUDIT_ACTIONS) == {a for a in Action if a not in ("edit", "delete")}
    assert set(lifecycle.AUDIT_ACTIONS.values()) <= AUDIT_LABELS.keys()


def test_the_schedule_and_the_sender_are_named_in_the_audit(world, enqueued, time_machine):
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Later",
        subject="Later",
        from_email="news@alpha.test",
        html="<p>Hi</p>",
        lists=[world.extras["list"]],
    )
    services.campaign_schedule(
        campaign=campaign, actor=world.alice, when=timezone.now() + timedelta(hours=1)
    )

    time_machine.move_to(timezone.now() + timedelta(hours=2), tick=True)
    assert services.start_due_campaigns() == [campaign.pk]
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    labels = {
        entry.action: entry.actor_label
        for entry in AuditEntry.objects.filter(
            account=world.account_a, action__startswith="campaign."
        )
    }
    assert labels["campaign.scheduled"] == str(world.alice)
    assert labels["campaign.started"] == "Missive (schedule)"
    assert labels["campaign.finished"] == "Missive (sender)"


def test_a_campaign_nobody_can_receive_fails_audited(world, enqueued):
    contact_services.contacts_unsubscribe(
        account=world.account_a, actor=None, contact_ids=[world.extras["contact"].pk]
    )
    campaign = Campaign.objects.create(
        account=world.account_a, name="Nobody", subject="x", from_email="news@alpha.test"
    )
    campaign.lists.set([world.extras["list"]])
    Campaign.objects.filter(pk=campaign.pk).update(
        status=State.SENDING, started_at=timezone.now()
    )  # as campaign_start leaves it

    sending.take_snapshot(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == State.FAILED
    (entry,) = _audit(world.account_a, "campaign.failed")
    assert entry.actor_label == "Missive (sender)"
    assert "Nobody could receive it" in entry.detail["reason"]


def test_a_suspension_pauses_audited_and_its_lift_names_the_operator(world, enqueued):
    delivery = send(world)
    Campaign.objects.filter(pk=delivery.campaign_id).update(status=State.SENDING)
    operator = world.alice
    operator.is_staff = operator.is_superuser = True
    operator.save()

    sending_suspend(account=world.account_a, reason="Too many complaints.", detail={})
    request = RequestFactory().post("/admin/")
    request.user = operator
    admin = site._registry[Account]
    admin.message_user = lambda *args, **kwargs: None
    admin.lift_sending_suspension(request, Account.objects.filter(pk=world.account_a.pk))

    (paused,) = _audit(world.account_a, "campaign.paused")
    assert paused.actor_label == "Missive (sending suspension)"
    (lifted,) = _audit(world.account_a, "account.sending_resumed")
    assert lifted.actor == operator
    world.account_a.refresh_from_db()
    assert world.account_a.sending_suspended_at is None


# -- deleting contacts -----------------------------------------------------------------------------


def _on_delete(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confdeltype FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = %s::regclass AND confrelid = 'contacts_contact'::regclass",
            [table],
        )
        return cursor.fetchone()[0]


def test_the_database_itself_unlinks_what_points_at_a_deleted_contact(db):
    # c: cascade, n: set null
    assert _on_delete("contacts_subscription") == "c"
    assert _on_delete("campaigns_delivery") == "n"
    assert _on_delete("contacts_datarequest") == "n"


def test_retention_deletes_a_contact_with_deliveries_and_a_data_request(world):
    # Given erin received a campaign and used her data rights, then went quiet
    delivery = send(world)
    erin = delivery.contact
    DataRequest.objects.create(
        account=world.account_a,
        contact=erin,
        kind=DataRequest.Kind.ACCESS,
        email_sha256=email_sha256(erin.email),
        outcome="Shown their data on the page.",
    )

    # When retention deletes her
    removed = contact_services.delete_contact_rows([erin.pk])

    # Then she is gone, her subscription with her; the delivery and the log stay unlinked
    assert removed == 1
    assert not Contact.objects.filter(pk=erin.pk).exists()
    assert not Subscription.objects.filter(contact_id=erin.pk).exists()
    assert Delivery.objects.get(pk=delivery.pk).contact_id is None
    assert DataRequest.objects.get(account=world.account_a).contact_id is None
