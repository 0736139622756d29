"""A campaign sent to a segment, end to end: real workers, a real SMTP server on loopback.
Only the contacts who match, are subscribed and are not suppressed receive it, with their
own merge values; a segment alone goes to its subscribed contacts on any list, and its
unsubscribe link works; a segment that names something deleted stops the send with the
reason. And the follow-ups drafted from a sent campaign's report."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

import config.celery  # noqa: F401 - the app whose broker .delay() publishes to
from audiences import services as audience_services
from audiences.conditions import Invalid
from campaigns import sending, services
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery, Link
from campaigns.selectors import audience, start_problems
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import AttributeDefinition, Subscription
from events.models import Event
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME

SENDER = "news@segments.example"


@pytest.fixture
def shop(transactional_db):
    owner = make_user("owner@segments.example")
    account = make_account(
        owner,
        "Segments Ltd",
        postal_address="1 Rue de la République, Lyon",
        sending_backend=BACKEND_NAME,
        default_from_email=SENDER,
    )
    verified_domain(account, "segments.example")
    contact_services.attribute_define(account=account, actor=owner, name="city", type="text")
    news = contact_services.list_create(account=account, actor=owner, name="News")
    offers = contact_services.list_create(account=account, actor=owner, name="Offers")
    people = {}
    for name, city, lists in [
        ("ana", "Lyon", [news]),  # matches
        ("bea", "lyon", [news, offers]),  # matches, on both lists: one message
        ("cid", "Lyon", [news]),  # Lyon, never opened
        ("dan", "Paris", [news]),  # opened, not in Lyon
        ("eve", "Lyon", [news]),  # matches, then unsubscribes
        ("fay", "Lyon", [news]),  # matches, then is suppressed
        ("gus", "Lyon", [offers]),  # matches, on the other list only
        ("hal", "Lyon", [news]),  # a machine opened for him: not a person's open
    ]:
        people[name] = contact_services.contact_create(
            account=account,
            actor=owner,
            email=f"{name}@people.example",
            first_name=name.title(),
            attributes={"city": city},
            lists=lists,
        )
    # An earlier campaign that they received ten days ago, opened by some.
    earlier = services.campaign_create(
        account=account, actor=owner, name="Earlier", subject="Hi", from_email=SENDER, html="x"
    )
    sent = timezone.now() - timedelta(days=10)
    Campaign.objects.filter(pk=earlier.pk).update(status=State.SENT, started_at=sent)
    for name, contact in people.items():
        delivery = Delivery.objects.create(
            campaign=earlier, contact=contact, status=Delivery.Status.SENT, sent_at=sent
        )
        if name in ("ana", "bea", "dan", "eve", "fay", "gus", "hal"):
            record_engagement(
                Event.Type.OPEN,
                account_id=account.pk,
                campaign_id=earlier.pk,
                delivery_id=delivery.pk,
                personal=True,
                machine=name == "hal",
                at=sent + timedelta(hours=1),
            )
    Subscription.objects.filter(contact=people["eve"]).update(
        status=Subscription.Status.UNSUBSCRIBED
    )
    contact_services.suppression_add(account=account, email=people["fay"].email)
    segment = audience_services.segment_create(
        account=account,
        actor=owner,
        name="Lyon, opened lately",
        definition={
            "match": "all",
            "conditions": [
                {"field": "attributes.city", "op": "is", "value": "Lyon"},
                {"field": "opened", "op": "in_last_days", "value": 30},
            ],
        },
    )
    return account, owner, news, offers, segment


def _send(account, lists, segment, workers, name="To Lyon"):
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name=name,
        subject="For {{ first_name }}",
        from_email=SENDER,
        html="<p>Hello {{ first_name }} of {{ attributes.city }}</p>",
        lists=lists,
        segment=segment,
    )
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: (
            Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)
            not in (State.SENDING, State.DRAFT)
        ),
        timeout=60,
        what="the campaign to finish",
    )
    campaign.refresh_from_db()
    return campaign


def test_only_the_segments_subscribed_unsuppressed_people_receive_it(shop, workers, smtp_sink):
    account, _owner, news, _offers, segment = shop
    workers.start("--pool=solo")

    # when a campaign to the News list, narrowed by the segment, is sent
    campaign = _send(account, [news], segment, workers)

    # then exactly Ana and Bea get it, each once, with their own values: not Cid (never
    # opened), Dan (Paris), Eve (unsubscribed), Fay (suppressed), Gus (not on News) or Hal
    # (only a machine opened)
    assert campaign.status == State.SENT, campaign.failure_reason
    assert smtp_sink.per_recipient() == {"ana@people.example": 1, "bea@people.example": 1}
    assert (campaign.recipients_count, campaign.excluded_count) == (2, 1)  # Fay left out
    for received in smtp_sink.messages:
        parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
        first = received.rcpt_tos[0].split("@")[0].title()
        assert parsed["Subject"] == f"For {first}"
        city = "lyon" if first == "Bea" else "Lyon"
        assert f"Hello {first} of {city}" in parsed.get_body(("html",)).get_content()
    workers.assert_no_tracebacks()


def test_a_segment_alone_goes_to_its_subscribed_people_on_any_list(shop, workers, smtp_sink):
    account, _owner, news, offers, segment = shop
    workers.start("--pool=solo")

    campaign = _send(account, [], segment, workers, name="Segment alone")

    # Gus, on Offers only, receives it too; the campaign's lists are all the account's
    assert smtp_sink.per_recipient() == {
        "ana@people.example": 1,
        "bea@people.example": 1,
        "gus@people.example": 1,
    }
    assert set(campaign.lists.values_list("pk", flat=True)) == {news.pk, offers.pk}

    # and its one-click unsubscribe takes Gus off his list
    gus = next(m for m in smtp_sink.messages if "gus@people.example" in m.rcpt_tos)
    parsed = email.message_from_bytes(gus.raw, policy=email.policy.default)
    (web,) = [u for u in re.findall(r"<([^>]*)>", parsed["List-Unsubscribe"]) if "://" in u]
    path = web.split("://", 1)[1].split("/", 1)[1]
    response = Client().post(f"/{path}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not Subscription.objects.filter(
        contact__email="gus@people.example", status=Subscription.Status.SUBSCRIBED
    ).exists()


def test_a_segment_naming_a_deleted_attribute_stops_the_send_with_the_reason(shop):
    account, owner, news, _offers, segment = shop
    campaign = services.campaign_create(
        account=account,
        actor=owner,
        name="Stale",
        subject="Hi",
        from_email=SENDER,
        html="<p>Hi</p>",
        lists=[news],
        segment=segment,
    )
    contact_services.attribute_delete(
        definition=AttributeDefinition.objects.get(account=account, name="city"), actor=owner
    )

    # the start is refused, naming the segment and what it lost
    problems = start_problems(campaign)
    assert any("Lyon, opened lately" in p and "city" in p for p in problems), problems
    assert audience(campaign).problem

    # and a send that reaches its snapshot anyway fails with that reason, not an error
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENDING, started_at=timezone.now())
    assert sending.take_snapshot(campaign.pk) == 0
    campaign.refresh_from_db()
    assert campaign.status == State.FAILED
    assert "city" in campaign.failure_reason
    assert not Delivery.objects.filter(campaign=campaign).exists()


# -- follow-ups ------------------------------------------------------------------------------


def test_a_follow_up_goes_to_those_who_did_not_open_people_only(shop):
    account, owner, _news, _offers, _segment = shop
    earlier = Campaign.objects.get(account=account, name="Earlier")

    follow_up = services.campaign_follow_up(campaign=earlier, actor=owner, audience="unopened")

    # a draft with the content, for a segment named after it; Cid never opened and Hal's
    # open was a machine's: they are who did not open (Eve unsubscribed, Fay is suppressed)
    assert follow_up.status == State.DRAFT
    assert follow_up.segment is not None
    assert follow_up.segment.name == "Did not open “Earlier”"
    assert audience(follow_up).sendable == 2
    members = set(
        Subscription.objects.filter(pk__in=_audience_ids(follow_up)).values_list(
            "contact__email", flat=True
        )
    )
    assert members == {"cid@people.example", "hal@people.example"}


def _audience_ids(campaign):
    from campaigns.selectors import audience_subscriptions

    return audience_subscriptions(campaign).values_list("pk", flat=True)


def test_a_follow_up_goes_to_those_who_clicked_a_link(shop):
    account, owner, news, _offers, _segment = shop
    earlier = Campaign.objects.get(account=account, name="Earlier")
    earlier.lists.set([news])
    link = Link.objects.create(campaign=earlier, position=1, url="https://segments.example/b")
    for name, machine in (("ana", False), ("dan", False), ("cid", True)):
        delivery = Delivery.objects.get(campaign=earlier, contact__email=f"{name}@people.example")
        record_engagement(
            Event.Type.CLICK,
            account_id=account.pk,
            campaign_id=earlier.pk,
            delivery_id=delivery.pk,
            personal=True,
            machine=machine,
            at=timezone.now() - timedelta(days=9),
            link_id=link.pk,
        )

    follow_up = services.campaign_follow_up(
        campaign=earlier, actor=owner, audience="clicked", link=link
    )

    assert follow_up.segment.name == "Clicked link 2 of “Earlier”"
    members = set(
        Subscription.objects.filter(pk__in=_audience_ids(follow_up)).values_list(
            "contact__email", flat=True
        )
    )
    assert members == {"ana@people.example", "dan@people.example"}  # not Cid's scanner


def test_a_follow_up_is_refused_when_opens_were_not_tracked_or_it_was_never_sent(shop):
    account, owner, _news, _offers, _segment = shop
    earlier = Campaign.objects.get(account=account, name="Earlier")
    Campaign.objects.filter(pk=earlier.pk).update(track_opens=False)
    earlier.refresh_from_db()
    with pytest.raises(Exception, match="not tracked"):
        services.campaign_follow_up(campaign=earlier, actor=owner, audience="unopened")
    draft = services.campaign_create(account=account, actor=owner, name="Draft", html="x")
    with pytest.raises(Exception, match="was sent"):
        services.campaign_follow_up(campaign=draft, actor=owner, audience="unopened")


def test_a_segment_an_unsent_campaign_needs_cannot_be_deleted(shop):
    account, owner, news, _offers, segment = shop
    services.campaign_create(
        account=account, actor=owner, name="Waiting", html="x", lists=[news], segment=segment
    )
    with pytest.raises(audience_services.SegmentInUse, match="Waiting"):
        audience_services.segment_delete(segment=segment, actor=owner)
    with pytest.raises(Invalid):
        audience_services.segment_update(
            segment=segment,
            actor=owner,
            definition={"conditions": [{"field": "attributes.nope", "op": "is", "value": "x"}]},
        )
