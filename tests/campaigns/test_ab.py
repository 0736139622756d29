"""A/B tests: a random, even split of the test group, the rest held in the ledger until
the winner (by people's opens, never machines') is chosen, each contact sent exactly one
variant, and the winner's send finishing after a worker is killed."""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from campaigns import ab, sending, services, tasks
from campaigns.engagement import record_engagement
from campaigns.models import ABTest, Campaign, Delivery
from campaigns.states import State
from events.models import Event
from tests.campaigns.test_fidelity import as_previewed, preview
from tests.campaigns.test_sending_worker import (
    CHAOS_CONCURRENCY,
    CHAOS_FLUSH,
    HTML,
    SENDER,
    add_audience,
    chaos_workers,
    sender,  # noqa: F401 - a fixture
    status_of,
)

D = Delivery.Status
RECIPIENTS = 10_000


def _campaign(account, contact_list, **test) -> Campaign:
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Subjects",
        subject="Subject A",
        from_email=SENDER,
        html=HTML,
        lists=[contact_list],
    )
    ab.set_up(
        campaign=campaign,
        actor=None,
        variants=test.pop("variants", [{"subject": "Subject B"}]),
        **{"share": 20, "metric": "opens", "wait_hours": 4, **test},
    )
    return campaign


def _snapshot(campaign: Campaign, capture) -> None:
    with capture(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)


# -- the split -----------------------------------------------------------------------------------


def test_it_deals_a_random_test_group_evenly_and_holds_the_rest(
    sender,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # given 10,000 subscribers and a test of two subjects on 20% of them
    account, contact_list = sender
    contacts = add_audience(account, contact_list, RECIPIENTS)
    campaign = _campaign(account, contact_list)

    # when the audience is taken
    _snapshot(campaign, django_capture_on_commit_callbacks)

    # then each contact has one row: 1,000 for A, 1,000 for B, 8,000 held for the winner
    rows = Delivery.objects.filter(campaign=campaign)
    assert rows.count() == RECIPIENTS == len({c.pk for c in contacts})
    assert Counter(rows.values_list("variant", flat=True)) == {0: 1000, 1: 1000, ab.HELD: 8000}
    assert set(rows.filter(variant=ab.HELD).values_list("retry_at", flat=True)) == {ab.HOLD}
    assert not rows.filter(variant__gte=0, retry_at__isnull=False).exists()
    # and the group is drawn at random: spread over the whole list, not its first fifth,
    # each half of the list holding about half of it (within five standard deviations)
    order = {c.pk: n for n, c in enumerate(contacts)}
    drawn = [order[pk] for pk in rows.filter(variant__gte=0).values_list("contact_id", flat=True)]
    first_half = sum(1 for n in drawn if n < RECIPIENTS // 2)
    assert abs(first_half - 1000) <= 5 * (2000 * 0.25) ** 0.5
    assert max(drawn) > RECIPIENTS * 0.9
    test = ABTest.objects.get(campaign=campaign)
    assert test.decide_at is not None
    assert test.decide_at > timezone.now() + timedelta(hours=3)


def test_the_held_rest_is_never_claimed_before_the_winner(
    sender,  # noqa: F811
    start_smtp_server,
    settings,
    django_capture_on_commit_callbacks,
):
    from tests.workers import BACKEND_NAME

    account, contact_list = sender
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    add_audience(account, contact_list, 50)
    campaign = _campaign(
        account,
        contact_list,
        share=12,
        variants=[
            {"subject": "Subject B"},
            {"from_name": "Ann at Letters", "html": '<p>Hi {{ first_name|default:"you" }}</p>'},
        ],
    )
    _snapshot(campaign, django_capture_on_commit_callbacks)

    # when the lanes run until nothing is due
    batches = [sending.send_batch(campaign.pk)]
    while batches[-1].more:
        batches.append(sending.send_batch(campaign.pk))

    # then the 6 of the test group (12% of 50, two a variant) went, each with its
    # variant, and the rest waits
    assert len(server) == 6
    by_subject = Counter(
        (m["Subject"], m["From"])
        for m in (
            email.message_from_bytes(r.raw, policy=email.policy.default) for r in server.messages
        )
    )
    assert by_subject[("Subject A", f"Letters Ltd <{SENDER}>")] == 2
    assert by_subject[("Subject B", f"Letters Ltd <{SENDER}>")] == 2
    assert by_subject[("Subject A", f"Ann at Letters <{SENDER}>")] == 2
    # and each message is its variant's preview for its recipient, word for word
    for received in server.messages:
        message = email.message_from_bytes(received.raw, policy=email.policy.default)
        delivery = campaign.deliveries.select_related("contact").get(
            contact__email=received.rcpt_tos[0]
        )
        subject, html, _text = preview(ab.content_of(campaign, delivery.variant), delivery.contact)
        body = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert message["Subject"] == subject
        assert as_previewed(body, campaign) == html
        if delivery.variant == 2:
            assert f"Hi {delivery.contact.first_name}" in body
    assert status_of(campaign) == State.SENDING
    assert campaign.deliveries.filter(variant=ab.HELD, status=D.QUEUED).count() == 44
    assert campaign.pk not in sending.sweep().kicked


# -- the winner ----------------------------------------------------------------------------------


def test_people_decide_the_winner_never_machines():
    def result(variant: int, opened: int, delivered: int) -> ab.VariantResult:
        return ab.VariantResult(
            variant, delivered, delivered, ab.Rate(opened, delivered), ab.Rate(0, delivered)
        )

    # (the rates the results read are people's: machines are never stamped)
    assert ab.leader([result(0, 100, 1000), result(1, 150, 1000)], "opens") == 1
    assert ab.leader([result(0, 100, 1000), result(1, 100, 1000)], "opens") == 0  # a tie: A
    assert ab.meaningful([result(0, 100, 1000), result(1, 150, 1000)], "opens")
    assert not ab.meaningful([result(0, 100, 1000), result(1, 108, 1000)], "opens")
    assert not ab.meaningful([result(0, 0, 0), result(1, 0, 0)], "opens")
    low, high = ab.Rate(50, 100).interval
    assert round(low, 3) == 0.404
    assert round(high, 3) == 0.596
    assert ab.Rate(0, 0).interval == (0.0, 0.0)
    low, high = ab.Rate(0, 20).interval
    assert low == 0.0
    assert 0.15 < high < 0.17  # Wilson's upper end for 0 of 20


def test_a_test_is_checked_and_only_a_draft_changes(world):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="AB", subject="A", html="<p>A</p>"
    )

    def refused(**given) -> dict:
        with pytest.raises(ValidationError) as error:
            ab.set_up(campaign=campaign, actor=world.alice, **given)
        return error.value.message_dict

    assert "variants" in refused(variants=[])
    assert "variants" in refused(variants=[{"subject": str(n)} for n in range(4)])
    assert "variants.1" in refused(variants=[{"subject": ""}])
    assert "variants.1.subject" in refused(variants=[{"subject": "{{ settings.SECRET_KEY }}"}])
    assert "share" in refused(variants=[{"subject": "B"}], share=1)
    assert "metric" in refused(variants=[{"subject": "B"}], metric="luck")
    assert "wait_hours" in refused(variants=[{"subject": "B"}], wait_hours=0)
    test = ab.set_up(
        campaign=campaign,
        actor=world.alice,
        variants=[{"html": '<p>B <a href="https://b.example/">go</a><script>x()</script></p>'}],
    )
    assert "<script" not in test.variants[0]["html"]
    assert campaign.links.filter(url="https://b.example/").exists()  # tracked like A's
    with pytest.raises(ValidationError):
        ab.choose_winner(campaign=campaign, variant=1, actor=world.alice)  # not sent yet


# -- the acceptance: 10,000 recipients, a real worker killed while the winner goes -------------


def test_the_winner_goes_to_the_rest_even_after_a_worker_is_killed(
    sender,  # noqa: F811
    workers,
    smtp_sink,
    settings,
):
    account, contact_list = sender
    sink = smtp_sink
    contacts = add_audience(account, contact_list, RECIPIENTS)
    addresses = {c.email for c in contacts}
    start_chaos_worker = chaos_workers(workers, settings)
    first = start_chaos_worker()

    # given a test of two subjects on 20% of 10,000, sent by a worker
    campaign = _campaign(account, contact_list)
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: len(sink) >= 2000 and not campaign.deliveries.filter(status=D.SENDING).exists(),
        timeout=90,
        what=lambda: f"the test group to be sent ({len(sink)} so far)",
    )
    time.sleep(0.5)
    assert len(sink) == 2000, "the held rest was sent before the winner"

    # when people open B more, while machines (a privacy proxy) open A more
    test_rows = campaign.deliveries.filter(variant__gte=0).values_list("pk", "variant")
    per_variant: dict[int, list[int]] = defaultdict(list)
    for pk, variant in test_rows:
        per_variant[variant].append(pk)
    for variant, count, machine in ((1, 150, False), (0, 600, True)):
        for delivery_id in per_variant[variant][:count]:
            record_engagement(
                Event.Type.OPEN,
                account_id=account.pk,
                campaign_id=campaign.pk,
                delivery_id=delivery_id,
                personal=True,
                machine=machine,
                at=timezone.now(),
            )
    # and the wait is over: the beat's task chooses
    test = ABTest.objects.get(campaign=campaign)
    assert ab.decide_due(now=test.decide_at + timedelta(seconds=1)) == [campaign.pk]
    test.refresh_from_db()
    assert (test.winner, test.decided_by) == (1, "auto")

    # and the worker is killed while it sends B to the rest
    workers.wait_for(
        lambda: len(sink) >= 2000 + 8000 // 3,
        timeout=60,
        every=0.02,
        what=lambda: f"a third of the rest before the kill ({len(sink)} so far)",
        need_alive=first,
    )
    first.kill()
    orphaned = set(
        campaign.deliveries.filter(status=D.SENDING).values_list("contact__email", flat=True)
    )
    second = start_chaos_worker()

    def finished() -> bool:
        if status_of(campaign) != State.SENDING:
            return True
        tasks.sweep_sending()
        return status_of(campaign) != State.SENDING

    workers.wait_for(
        finished, timeout=120, every=0.5, what="the rest to be sent", need_alive=second
    )

    # then everyone got one variant only: the test group theirs, the rest B
    subjects: dict[str, set[str]] = defaultdict(set)
    for received in sink.messages:
        message = email.message_from_bytes(received.raw, policy=email.policy.default)
        subjects[received.rcpt_tos[0]].add(message["Subject"])
    assert set(subjects) == addresses
    assert all(len(s) == 1 for s in subjects.values())
    held = set(campaign.deliveries.filter(variant=ab.HELD).values_list("contact__email", flat=True))
    assert len(held) == 8000
    assert {next(iter(subjects[a])) for a in held} == {"Subject B"}
    # and no more repeats than any killed send makes, all of them claims the dead held
    duplicates = {a for a, n in sink.per_recipient().items() if n > 1}
    assert len(duplicates) <= CHAOS_CONCURRENCY * CHAOS_FLUSH
    assert duplicates <= orphaned
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert campaign.sent_count == RECIPIENTS
    # and the report reads people's opens only: B 150 of 1,000, A none
    found = {r.letter: r for r in ab.results(campaign, test)}
    assert (found["A"].opens.count, found["B"].opens.count) == (0, 150)
    workers.assert_no_tracebacks()


# -- the page and the API --------------------------------------------------------------------------


def test_the_campaign_page_sets_up_a_test_and_chooses_by_hand(
    world, alice_client, django_capture_on_commit_callbacks
):
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="AB page",
        subject="Hello",
        html="<p>A</p>",
        lists=[world.extras["list"]],
    )
    url = f"/campaigns/{campaign.pk}/"
    assert "Save A/B test" in alice_client.get(url).content.decode()

    # when alice tries a second subject on half the audience, chosen by hand
    saved = alice_client.post(
        f"{url}ab-test/",
        {"B-subject": "Hello {{ first_name }}", "share": "50", "metric": "hand", "wait_hours": "2"},
        follow=True,
    )
    assert "A/B test of 2 variants saved" in saved.content.decode()
    refused = alice_client.post(f"{url}ab-test/", {"share": "50", "metric": "hand"}, follow=True)
    assert "Give one to three variants" in refused.content.decode()

    # and the campaign is sent to its test group
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=world.alice)
    sending.take_snapshot(campaign.pk)
    page = alice_client.get(url).content.decode()
    assert page.count('data-testid="ab-row"') == 2
    assert "Hello Jane" in page  # B's subject as the sample reads it
    assert "not meaningful yet" in page
    # and the campaign's report shows the same figures, without the set-up form
    report = alice_client.get(reverse("campaign_report", args=[campaign.pk])).content.decode()
    assert report.count('data-testid="ab-row"') == 2
    assert "Save A/B test" not in report

    # then choosing B by hand releases the rest to B, once
    with django_capture_on_commit_callbacks(execute=True):
        chosen = alice_client.post(f"{url}ab-test/winner/", {"variant": "1"}, follow=True)
    assert "Variant B won" in chosen.content.decode()
    held = campaign.deliveries.filter(variant=ab.HELD)
    assert not held.filter(retry_at=ab.HOLD).exists()
    again = alice_client.post(f"{url}ab-test/winner/", {"variant": "0"}, follow=True)
    assert ABTest.objects.get(campaign=campaign).winner == 1
    assert again.status_code == 200


def test_the_api_sets_reads_and_decides_a_test(world, alice_client, vera_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="AB api", subject="A", html="<p>A</p>"
    )
    url = f"/api/v1/campaigns/{campaign.pk}/ab-test/"
    assert alice_client.get(url).status_code == 404

    put = alice_client.put(
        url,
        {"variants": [{"subject": "B"}, {"preheader": "C's"}], "share": 30, "metric": "clicks"},
        "application/json",
    )
    assert put.status_code == 200, put.json()
    body = put.json()
    assert (body["share"], body["metric"], body["winner"], body["results"]) == (
        30,
        "clicks",
        None,
        [],
    )
    assert alice_client.get(url).json()["variants"][1]["preheader"] == "C's"
    bad = alice_client.put(url, {"variants": [{"subject": "B"}], "share": 1}, "application/json")
    assert bad.status_code == 400
    assert (
        vera_client.put(url, {"variants": [{"subject": "B"}]}, "application/json").status_code
        == 403
    )
    winner = alice_client.post(f"{url}winner/", {"variant": 1}, "application/json")
    assert winner.status_code == 400  # not sent yet
    assert alice_client.delete(url).status_code == 204
    assert not ABTest.objects.filter(campaign=campaign).exists()


def test_a_test_of_everyone_holds_no_one_and_offers_no_winner_to_send(
    world, alice_client, django_capture_on_commit_callbacks
):
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Everyone",
        subject="A",
        html="<p>A</p>",
        lists=[world.extras["list"]],
    )
    ab.set_up(campaign=campaign, actor=world.alice, variants=[{"subject": "B"}], share=100)
    _snapshot(campaign, django_capture_on_commit_callbacks)

    assert not campaign.deliveries.filter(variant=ab.HELD).exists()
    assert ABTest.objects.get(campaign=campaign).decide_at is None
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "there is no rest to send" in page
    assert "to the rest</button>" not in page


# -- a content variant built with blocks ------------------------------------------------------


def test_a_variant_gets_its_own_blocks_and_each_recipient_the_content_they_were_dealt(
    sender,  # noqa: F811
    alice_client,
    start_smtp_server,
    settings,
    django_capture_on_commit_callbacks,
):
    from tests.workers import BACKEND_NAME

    # given a campaign made of blocks, its owner signed in
    account, contact_list = sender
    owner = account.memberships.first().user
    alice_client.force_login(owner)
    add_audience(account, contact_list, 40)
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Blocks A/B",
        subject="Autumn",
        from_email=SENDER,
        editor="blocks",
        blocks={
            "blocks": [
                {"type": "heading", "text": "Heading of A"},
                {"type": "text", "html": "<p>Hi {{ first_name }}</p>"},
            ]
        },
        lists=[contact_list],
    )
    url = f"/campaigns/{campaign.pk}/"
    page = alice_client.get(url).content.decode()
    assert "Give B its own blocks" in page
    assert 'name="B-html"' not in page  # a blocks campaign's variants are blocks too

    # when B is given its own blocks, from A's, and its heading is changed in the editor
    opened = alice_client.post(
        f"{url}ab-test/",
        {"action": "blocks-B", "share": "50", "metric": "clicks", "wait_hours": "2"},
    )
    assert opened["Location"] == f"/campaigns/{campaign.pk}/blocks/?variant=1"
    editor = alice_client.get(opened["Location"]).content.decode()
    assert "Content of variant B" in editor
    assert 'name="variant" value="1"' in editor
    heading = ABTest.objects.get(campaign=campaign).variants[0]["blocks"]["blocks"][0]
    changed = alice_client.post(
        f"/campaigns/{campaign.pk}/blocks/change/",
        {
            "variant": "1",
            "action": "save",
            "block": heading["id"],
            "f-text": "Heading of B",
            "f-level": "1",
            "f-align": "left",
            "f-padding": "10",
        },
    )
    assert (
        changed["Location"] == f"/campaigns/{campaign.pk}/blocks/?variant=1&block={heading['id']}"
    )

    # then B's content is its blocks, A's are untouched, and each preview shows its own
    test = ABTest.objects.get(campaign=campaign)
    assert "Heading of B" in test.variants[0]["html"]
    campaign.refresh_from_db()
    assert campaign.blocks["blocks"][0]["text"] == "Heading of A"
    assert "Heading of B" in alice_client.get(f"{url}preview/?variant=1").content.decode()
    assert "Heading of A" in alice_client.get(f"{url}preview/").content.decode()
    # and saving the test's form again keeps B's blocks
    alice_client.post(
        f"{url}ab-test/",
        {
            "B-blocks": "keep",
            "B-subject": "Autumn, B",
            "share": "50",
            "metric": "clicks",
            "wait_hours": "2",
        },
    )
    test.refresh_from_db()
    assert test.variants[0]["subject"] == "Autumn, B"
    assert test.variants[0]["blocks"]["blocks"][0]["text"] == "Heading of B"

    # when the test group is sent over SMTP
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    _snapshot(campaign, django_capture_on_commit_callbacks)
    while sending.send_batch(campaign.pk).more:
        pass

    # then each recipient got the content of the variant they were dealt, as previewed
    assert len(server) == 20
    dealt = Counter()
    for received in server.messages:
        message = email.message_from_bytes(received.raw, policy=email.policy.default)
        delivery = campaign.deliveries.select_related("contact").get(
            contact__email=received.rcpt_tos[0]
        )
        dealt[delivery.variant] += 1
        subject, html, _text = preview(ab.content_of(campaign, delivery.variant), delivery.contact)
        body = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert message["Subject"] == subject
        assert as_previewed(body, campaign) == html
        mine, other = ("B", "A") if delivery.variant == 1 else ("A", "B")
        assert f"Heading of {mine}" in body
        assert f"Heading of {other}" not in body
        assert f"Hi {delivery.contact.first_name}" in body
    assert dealt == {0: 10, 1: 10}

    # and "Same content as A" gives B A's content again (before a send, on a draft)
    duplicate = services.campaign_duplicate(campaign=campaign, actor=None)
    alice_client.post(
        f"/campaigns/{duplicate.pk}/ab-test/",
        {
            "action": "same-B",
            "B-blocks": "keep",
            "B-subject": "Autumn, B",
            "share": "50",
            "metric": "clicks",
            "wait_hours": "2",
        },
    )
    again = ABTest.objects.get(campaign=duplicate).variants[0]
    assert "blocks" not in again
    assert again["html"] == ""


def test_a_variant_s_blocks_are_checked_and_only_a_blocks_campaign_has_them(world):
    html_campaign = world.extras["campaign"]
    with pytest.raises(ValidationError) as refused:
        ab.set_up(
            campaign=html_campaign,
            actor=None,
            variants=[{"blocks": {"blocks": [{"type": "heading", "text": "B"}]}}],
        )
    assert "written in HTML code" in str(refused.value)

    campaign = services.campaign_create(
        account=world.account_a,
        actor=None,
        name="Blocks",
        subject="Hi",
        editor="blocks",
        blocks={"blocks": [{"type": "heading", "text": "A"}]},
    )
    with pytest.raises(ValidationError) as bad:
        ab.set_up(
            campaign=campaign,
            actor=None,
            variants=[
                {
                    "blocks": {
                        "blocks": [{"type": "button", "label": "Go", "href": "javascript:alert(1)"}]
                    }
                }
            ],
        )
    assert "variants.1.blocks.0.href" in bad.value.message_dict


def test_the_api_gives_a_variant_its_own_blocks(world, alice_client):
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="AB blocks api",
        subject="A",
        editor="blocks",
        blocks={"blocks": [{"type": "heading", "text": "Heading of A"}]},
    )
    url = f"/api/v1/campaigns/{campaign.pk}/ab-test/"

    put = alice_client.put(
        url,
        {
            "variants": [
                {"blocks": {"blocks": [{"type": "heading", "text": "Heading of B"}]}},
                {"subject": "C"},
            ]
        },
        "application/json",
    )

    assert put.status_code == 200, put.json()
    b, c = alice_client.get(url).json()["variants"]
    assert b["blocks"]["blocks"][0]["text"] == "Heading of B"
    assert "Heading of B" in b["html"]
    assert c["blocks"] is None
    bad = alice_client.put(
        url, {"variants": [{"blocks": {"blocks": [{"type": "nope"}]}}]}, "application/json"
    )
    assert bad.status_code == 400
    assert any(key.startswith("variants.1.blocks.0") for key in bad.json()["errors"])
