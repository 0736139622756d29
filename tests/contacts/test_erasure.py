"""Erasure of a contact: everything about the person goes, the campaigns' counts stay,
and a hashed suppression keeps the address from ever being mailed again. From the
service, the contact page and the API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEntry
from campaigns.models import Campaign, Delivery, DeliveryBody, Link
from contacts import services, subscribing
from contacts.importing.jobs import import_configure, import_upload, run_import
from contacts.models import Contact, ContactList, Subscription, Suppression, email_sha256
from events.models import Event
from privacy import erasure
from tests.factories import World, make_api_key

ERIN = "erin@alpha.test"


def give_history(contact: Contact, campaigns: int = 2, *, status: str = "sent") -> list[Delivery]:
    """``campaigns`` campaigns sent to ``contact``: a delivery, a stored body, and a sent,
    an open and a click event each."""
    account = contact.account
    now = timezone.now()
    made = Campaign.objects.bulk_create(
        Campaign(
            account=account,
            name=f"Issue {n} for {contact.pk}",
            subject="News",
            from_email="news@alpha.test",
            html="<p>Hi</p>",
            text="Hi",
        )
        for n in range(campaigns)
    )
    links = Link.objects.bulk_create(
        Link(campaign=c, position=0, url="https://alpha.test/offer") for c in made
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(campaign=c, contact=contact, status=status, sent_at=now) for c in made
    )
    DeliveryBody.objects.bulk_create(
        DeliveryBody(
            delivery=d, subject="News", html=f"<p>Hi {contact.email}</p>", text=contact.email
        )
        for d in deliveries
    )
    Event.objects.bulk_create(
        Event(
            account_id=account.pk,
            campaign_id=d.campaign_id,
            delivery_id=d.pk,
            link_id=link.pk if kind == "click" else None,
            type=kind,
            occurred_at=now - timedelta(minutes=1),
        )
        for d, link in zip(deliveries, links, strict=True)
        for kind in ("sent", "open", "click")
    )
    return deliveries


def events_of(deliveries: list[Delivery]) -> int:
    return Event.objects.filter(delivery_id__in=[d.pk for d in deliveries]).count()


@pytest.fixture
def erin(world: World) -> Contact:
    return world.extras["contact"]


@pytest.fixture
def stranger(world: World) -> Contact:
    """Another contact of the same account, with a history of its own."""
    contact = services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="finn@alpha.test",
        lists=[world.extras["list"]],
    )
    give_history(contact, 1)
    return contact


# --- The service --------------------------------------------------------------------------


def test_it_erases_the_person_and_keeps_the_campaign_counts(world, erin, stranger):
    # given erin, subscribed, sent two campaigns that she opened and clicked
    deliveries = give_history(erin, 2)
    campaign_ids = [d.campaign_id for d in deliveries]
    others = list(Delivery.objects.filter(contact=stranger))
    assert events_of(deliveries) == 6

    # when she is erased
    erased = erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")

    # then she, her subscription, her message copies and her events are gone
    assert not Contact.objects.filter(email=ERIN).exists()
    assert not Subscription.objects.filter(contact_id=erin.pk).exists()
    assert not DeliveryBody.objects.filter(delivery__in=deliveries).exists()
    assert events_of(deliveries) == 0
    assert (erased.subscriptions, erased.deliveries, erased.bodies, erased.events) == (1, 2, 2, 6)
    # and her deliveries still count in their campaigns, linked to no one
    kept = Delivery.objects.filter(campaign_id__in=campaign_ids)
    assert kept.count() == 2
    assert set(kept.values_list("contact_id", flat=True)) == {None}
    assert set(kept.values_list("status", flat=True)) == {"sent"}
    # and the other contact's history is untouched
    assert events_of(others) == 3
    assert DeliveryBody.objects.filter(delivery__in=others).count() == 1


def test_it_leaves_a_hashed_suppression_and_an_audit_entry_without_the_address(world, erin):
    give_history(erin, 1)

    erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")

    suppression = Suppression.objects.for_account(world.account_a).get(
        email_sha256=email_sha256(ERIN)
    )
    assert suppression.reason == Suppression.Reason.ERASURE
    assert suppression.created_by == world.alice
    entry = AuditEntry.objects.for_account(world.account_a).get(action="contact.erased")
    assert entry.actor == world.alice
    assert entry.detail["email_sha256"] == email_sha256(ERIN)
    assert entry.detail["reason"] == "customer"
    assert entry.label == "erased a contact"
    assert ERIN not in json.dumps(entry.detail)


def test_it_keeps_the_reason_of_an_earlier_suppression(world, erin):
    services.suppression_add(
        account=world.account_a, email=ERIN, reason=Suppression.Reason.COMPLAINT
    )

    erasure.erase_contact(contact=erin, actor=None, reason="customer")

    [entry] = Suppression.objects.for_account(world.account_a).filter(
        email_sha256=email_sha256(ERIN)
    )
    assert entry.reason == Suppression.Reason.COMPLAINT


def test_it_touches_no_other_account(world, erin):
    # given the same address in account B
    theirs = services.contact_create(account=world.account_b, actor=world.charlie, email=ERIN)
    history = give_history(theirs, 1)

    erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")

    assert Contact.objects.filter(pk=theirs.pk).exists()
    assert events_of(history) == 3
    assert not Suppression.objects.for_account(world.account_b).exists()


def test_it_refuses_an_unknown_reason(world, erin):
    with pytest.raises(ValueError, match="reason"):
        erasure.erase_contact(contact=erin, actor=None, reason=ERIN)

    assert Contact.objects.filter(pk=erin.pk).exists()


def test_it_erases_thousands_of_deliveries_in_a_fixed_number_of_statements(world, erin):
    # given erin, sent 3,000 campaigns (9,000 events)
    deliveries = give_history(erin, 3000)

    # when she is erased
    with CaptureQueriesContext(connection) as queries:
        erased = erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")

    # then in a handful of statements whatever the history (its speed is measured in
    # benchmarks/, never asserted here)
    assert (erased.deliveries, erased.events) == (3000, 9000)
    assert len(queries) <= 20, [q["sql"] for q in queries.captured_queries]
    assert events_of(deliveries) == 0
    assert Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).count() == 3000


def test_it_removes_what_a_message_in_flight_wrote_after_the_erasure(
    world, erin, django_capture_on_commit_callbacks, enqueued
):
    # given a message to erin being sent by a worker at this moment
    [delivery] = give_history(erin, 1, status=Delivery.Status.SENDING)

    # when she is erased, and the worker then records its body and its sent event
    with django_capture_on_commit_callbacks(execute=True):
        erasure.erase_contact(contact=erin, actor=None, reason="customer")
    DeliveryBody.objects.create(delivery=delivery, subject="late", html="late", text="late")
    Event.objects.create(
        account_id=world.account_a.pk,
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        type="sent",
    )

    # then a follow-up was queued after every claim of the time has expired
    [(name, args, options)] = enqueued
    assert name == "privacy.erase_in_flight_leftovers"
    assert args == [world.account_a.pk, [delivery.pk]]
    assert options["countdown"] > 300
    # and, run, it removes the late writes (and only touches anonymous deliveries)
    assert erasure.erase_leftovers(account_id=args[0], delivery_ids=args[1]) == 2
    assert not DeliveryBody.objects.filter(pk=delivery.pk).exists()
    assert events_of([delivery]) == 0


# --- Never mailed again -------------------------------------------------------------------


def test_a_later_import_skips_the_erased_address_as_suppressed(world, erin):
    erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")

    job = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile(
            "again.csv", b"email,first_name\nErin@Alpha.test,Erin\nnew@alpha.test,New\n"
        ),
    )
    import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up at the fair",
        update_existing=False,
    )
    job = run_import(job.pk)

    assert job.status == "done"
    assert (job.created_count, job.suppressed_count) == (1, 1)
    assert not Contact.objects.filter(email=ERIN).exists()


def test_the_api_and_the_forms_cannot_subscribe_it_again(world, erin):
    newsletter = world.extras["list"]
    newsletter.double_opt_in = False
    newsletter.save()
    erasure.erase_contact(contact=erin, actor=world.alice, reason="customer")
    _key, secret = make_api_key(world.account_a)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = api.post(
        f"/api/v1/lists/{newsletter.pk}/subscriptions/",
        {"email": ERIN},
        content_type="application/json",
    )
    stored = subscribing.subscription_request(contact_list=newsletter, email=ERIN)

    assert response.status_code == 400
    assert stored is None
    assert not Subscription.objects.filter(contact__email=ERIN).exists()


# --- The contact page ---------------------------------------------------------------------


def test_the_contact_page_offers_erase_and_export(alice_client, erin):
    body = alice_client.get(f"/contacts/{erin.pk}/").content.decode()

    assert f"/contacts/{erin.pk}/erase/" in body
    assert f"/contacts/{erin.pk}/export.json" in body


def test_it_asks_before_erasing_and_says_what_erasure_means(alice_client, erin):
    # when the erase link is opened
    response = alice_client.get(f"/contacts/{erin.pk}/erase/")

    # then a confirmation page explains, and nothing has changed
    body = response.content.decode()
    assert response.status_code == 200
    assert "permanent" in body
    assert "suppression list" in body
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_an_editor_erases_and_the_contact_is_gone_from_lists_and_exports(bob_client, world, erin):
    give_history(erin, 1)

    response = bob_client.post(f"/contacts/{erin.pk}/erase/", follow=True)

    assert response.redirect_chain == [("/contacts/", 302)]
    assert "is erased" in response.content.decode()
    assert not Contact.objects.filter(pk=erin.pk).exists()
    assert ERIN not in bob_client.get("/contacts/").content.decode()
    assert ERIN not in bob_client.get(f"/lists/{world.extras['list'].pk}/").content.decode()
    export = bob_client.get("/contacts/export.csv")
    assert ERIN not in b"".join(export.streaming_content).decode()
    entry = AuditEntry.objects.for_account(world.account_a).get(action="contact.erased")
    assert entry.actor == world.bob


def test_a_viewer_can_neither_erase_nor_export(erin, vera_client):
    assert vera_client.post(f"/contacts/{erin.pk}/erase/").status_code == 403
    assert vera_client.get(f"/contacts/{erin.pk}/export.json").status_code == 403
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_it_exports_one_contacts_data_as_json(alice_client, world, erin):
    # given erin with an attribute, her consent proof and a campaign she opened and clicked
    services.contact_update(contact=erin, actor=world.alice, attributes={"city": "Lyon"})
    [delivery] = give_history(erin, 1)

    # when her data is exported from her page
    response = alice_client.get(f"/contacts/{erin.pk}/export.json")

    # then a JSON file holds her fields, subscriptions, messages and events
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["contact"]["email"] == ERIN
    assert data["contact"]["attributes"] == {"city": "Lyon"}
    [subscription] = data["subscriptions"]
    assert subscription["list"] == "Alpha Sentinel News"
    assert subscription["legal_basis"] == "consent"
    assert subscription["consent_at"]
    [sent] = data["deliveries"]
    assert sent["campaign"] == delivery.campaign.name
    assert sent["sent_at"]
    assert [e["type"] for e in data["events"]] == ["sent", "open", "click"]
    assert data["events"][2]["link"] == "https://alpha.test/offer"
    # and the export is in the activity log, without the address
    entry = AuditEntry.objects.for_account(world.account_a).get(action="contact.exported")
    assert ERIN not in json.dumps(entry.detail)


# --- The API ------------------------------------------------------------------------------


@pytest.fixture
def api(world: World) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")


def test_the_api_erases_a_contact(api, world, erin):
    give_history(erin, 2)

    response = api.post(f"/api/v1/contacts/{erin.pk}/erase/")

    assert response.status_code == 200
    body = response.json()
    assert body["contact"] == erin.pk
    assert body["email_sha256"] == email_sha256(ERIN)
    assert (body["subscriptions"], body["deliveries"], body["events"]) == (1, 2, 6)
    assert not Contact.objects.filter(pk=erin.pk).exists()
    assert Suppression.objects.get(pk=body["suppression"]).reason == "erasure"
    entry = AuditEntry.objects.for_account(world.account_a).get(action="contact.erased")
    assert entry.actor_label.startswith("API key")
    # and a second call finds nothing to erase
    assert api.post(f"/api/v1/contacts/{erin.pk}/erase/").status_code == 404


def test_the_api_exports_one_contacts_data(api, world, erin):
    give_history(erin, 1)

    response = api.get(f"/api/v1/contacts/{erin.pk}/export/")

    assert response.status_code == 200
    data = response.json()
    assert data["contact"]["email"] == ERIN
    assert data["controller"]["name"] == "Alpha Sentinel Corp"
    assert len(data["subscriptions"]) == 1
    assert len(data["deliveries"]) == 1
    assert len(data["events"]) == 3
    assert AuditEntry.objects.for_account(world.account_a).filter(action="contact.exported")


def test_the_api_shows_a_tracking_objection_on_the_contact(api, erin):
    Contact.objects.filter(pk=erin.pk).update(tracking_objected_at=timezone.now())

    response = api.get(f"/api/v1/contacts/{erin.pk}/")

    assert response.json()["tracking_objected_at"]


def test_a_viewer_key_can_neither_erase_nor_export(erin, viewer_api):
    assert viewer_api.post(f"/api/v1/contacts/{erin.pk}/erase/").status_code == 403
    assert viewer_api.get(f"/api/v1/contacts/{erin.pk}/export/").status_code == 403
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_another_accounts_key_gets_404(world, erin):
    outsider = Client(HTTP_AUTHORIZATION=f"Bearer {world.charlie_key_secret}")

    assert outsider.post(f"/api/v1/contacts/{erin.pk}/erase/").status_code == 404
    assert outsider.get(f"/api/v1/contacts/{erin.pk}/export/").status_code == 404
    assert Contact.objects.filter(pk=erin.pk).exists()
    assert ContactList.objects.for_account(world.account_a).exists()


def test_it_removes_the_records_of_missives_own_mail_that_could_not_reach_the_address(world, erin):
    from accounts.models import MailFailure

    def failure(recipients: str) -> MailFailure:
        return MailFailure.objects.create(
            kind="contacts.subscribe_confirm",
            recipients=recipients,
            subject="Confirm",
            error="421 try later",
            attempts=8,
        )

    mine = failure(erin.email)
    shared = failure(f"owner@example.com, {erin.email}")
    lookalike = failure(f"x{erin.email}")

    erasure.erase_contact(contact=erin, actor=None, reason="customer")

    left = set(MailFailure.objects.values_list("pk", flat=True))
    assert mine.pk not in left
    assert shared.pk not in left
    assert lookalike.pk in left
