"""Writing campaigns: drafts from starters and templates, sanitized HTML, checked merge
tags, previews and test sends."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from accounts.models import AuditEntry
from campaigns import services
from campaigns.composing import compose
from campaigns.models import Campaign, Link, Template
from campaigns.selectors import recipient_values
from campaigns.states import Action, State, TransitionRefused, allowed_actions, next_state


def _form(campaign: Campaign, **changes) -> dict:
    data = {
        "name": campaign.name,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "from_name": campaign.from_name,
        "from_email": campaign.from_email,
        "reply_to": campaign.reply_to,
        "html": campaign.html,
        "text": campaign.text,
        "track_opens": "on",
        "track_clicks": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_it_creates_a_draft_from_a_starter_with_the_accounts_sender(alice_client, world):
    world.account_a.default_from_name = "Alpha News"
    world.account_a.save()

    response = alice_client.post(
        "/campaigns/new/", {"name": "May", "start_from": "starter:newsletter"}
    )

    campaign = Campaign.objects.get(account=world.account_a, name="May")
    assert response.url == f"/campaigns/{campaign.pk}/"
    assert campaign.status == State.DRAFT
    assert campaign.from_name == "Alpha News"
    assert "This month at" in campaign.html
    assert campaign.text.strip()  # derived from the HTML
    assert [link.url for link in campaign.links.all()] == [
        "https://example.com/story-1",
        "https://example.com/story-2",
    ]


def test_it_sanitizes_the_html_when_saving(alice_client, world):
    campaign = world.extras["campaign"]
    html = (
        '<p onclick="steal()">Hi {{ first_name }}</p><script>alert(1)</script>'
        '<a href="javascript:alert(1)">x</a><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        '<form action="https://evil.example"><input name="card"></form><iframe src="https://x"></iframe>'
    )

    response = alice_client.post(f"/campaigns/{campaign.pk}/", _form(campaign, html=html))

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert "<script" not in campaign.html
    assert "onclick" not in campaign.html
    assert "javascript:" not in campaign.html
    assert "<form" not in campaign.html
    assert "<iframe" not in campaign.html
    assert "{{ unsubscribe_url }}" in campaign.html
    assert "{{ first_name }}" in campaign.html


@pytest.mark.parametrize(
    "bad",
    ["{{ settings.SECRET_KEY }}", "{% debug %}", "{% load static %}", "{{ attributes.shoe_size }}"],
)
def test_it_refuses_a_forbidden_or_unknown_merge_tag_with_a_message(alice_client, world, bad):
    campaign = world.extras["campaign"]

    response = alice_client.post(f"/campaigns/{campaign.pk}/", _form(campaign, subject=f"Hi {bad}"))

    assert response.status_code == 400
    campaign.refresh_from_db()
    assert campaign.subject == "Hello"
    assert bad.split()[1].split("|")[0].strip("}%") in response.content.decode()


def test_it_renders_only_the_recipients_own_values(world):
    campaign = services.campaign_update(
        campaign=world.extras["campaign"],
        actor=world.alice,
        subject="Hi {{ first_name|default:'friend' }}",
        html='<p>Hello {{ first_name }} from {{ attributes.city|default:"" }}</p>',
    )
    contact = world.extras["contact"]
    contact.first_name = "<b>Erin</b>"
    contact.attributes = {"city": "Lyon"}

    subject, html, text = compose(campaign).render(recipient_values(campaign, contact))

    assert subject == "Hi <b>Erin</b>"  # the subject is not HTML
    assert "Hello &lt;b&gt;Erin&lt;/b&gt; from Lyon" in html
    assert "Alpha Sentinel Corp" in html  # the footer's account name and address
    assert "1 Main Street" in html
    assert "Unsubscribe" in html  # added: the body had no unsubscribe link
    assert "Unsubscribe:" in text


def test_it_previews_as_a_chosen_contact_in_a_locked_down_document(alice_client, world):
    campaign = world.extras["campaign"]
    contact = world.extras["contact"]

    response = alice_client.get(f"/campaigns/{campaign.pk}/preview/", {"contact": contact.pk})

    assert "Hi Erin" in response.content.decode()
    assert "sandbox" in response["Content-Security-Policy"]
    assert alice_client.get(f"/campaigns/{campaign.pk}/preview/").status_code == 200


def test_it_sends_a_test_marked_as_such_to_at_most_five_addresses(alice_client, world):
    campaign = world.extras["campaign"]

    alice_client.post(
        f"/campaigns/{campaign.pk}/test/", {"recipients": "a@example.com, b@example.com"}
    )

    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    assert all(m.subject == "[Test] Hello" for m in mail.outbox)
    html = mail.outbox[0].alternatives[0][0]
    assert "Hi Jane" in html
    assert "Unsubscribe" in html

    mail.outbox.clear()
    response = alice_client.post(
        f"/campaigns/{campaign.pk}/test/",
        {"recipients": ", ".join(f"p{n}@example.com" for n in range(6))},
        follow=True,
    )
    assert "5 addresses at most" in response.content.decode()
    assert mail.outbox == []


def test_it_keeps_a_campaign_as_a_template_and_starts_another_from_it(alice_client, world):
    campaign = world.extras["campaign"]

    alice_client.post(f"/campaigns/{campaign.pk}/save-template/", {"name": "Welcome"})
    template = Template.objects.get(account=world.account_a, name="Welcome")
    alice_client.post(
        "/campaigns/new/", {"name": "Second", "start_from": f"template:{template.pk}"}
    )

    second = Campaign.objects.get(account=world.account_a, name="Second")
    assert second.html == campaign.html


def test_it_keeps_campaigns_from_viewers_but_shows_them(world, vera_client):
    client = vera_client
    campaign = world.extras["campaign"]

    assert client.get(f"/campaigns/{campaign.pk}/").status_code == 200
    client.post(f"/campaigns/{campaign.pk}/", _form(campaign, name="Hacked"))
    campaign.refresh_from_db()
    assert campaign.name == "Alpha Sentinel launch"
    assert (
        client.post(f"/campaigns/{campaign.pk}/test/", {"recipients": "a@example.com"}).status_code
        == 403
    )
    assert mail.outbox == []
    assert not AuditEntry.objects.filter(action="campaign.test_sent").exists()


def test_it_allows_each_action_only_from_the_right_states():
    assert next_state(State.DRAFT, Action.START) == State.SENDING
    assert next_state(State.SENDING, Action.PAUSE) == State.PAUSED
    assert next_state(State.PAUSED, Action.RESUME) == State.SENDING
    with pytest.raises(TransitionRefused, match="not possible while the campaign is sent"):
        next_state(State.SENT, Action.EDIT)
    assert allowed_actions(State.SENT) == []
    assert Action.CANCEL in allowed_actions(State.SCHEDULED)


def test_it_refuses_to_edit_a_campaign_that_is_no_longer_a_draft(world):
    campaign = world.extras["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENT)

    with pytest.raises(ValidationError, match=r"no longer|not possible"):
        services.campaign_update(campaign=campaign, actor=world.alice, name="Late change")


def test_it_lists_the_links_of_the_body(world):
    campaign = services.campaign_update(
        campaign=world.extras["campaign"],
        actor=world.alice,
        html='<a href="https://a.example/1">1</a><a href="https://b.example/2">2</a><a href="https://a.example/1">again</a>',
    )

    assert list(Link.objects.filter(campaign=campaign).values_list("position", "url")) == [
        (0, "https://a.example/1"),
        (1, "https://b.example/2"),
    ]


def test_it_lists_what_stands_between_a_campaign_and_sending(alice_client, world):
    from campaigns.selectors import audience, start_problems
    from contacts import services as contact_services

    campaign = world.extras["campaign"]
    world.account_a.postal_address = ""
    world.account_a.save()
    campaign.account.refresh_from_db()

    problems = start_problems(campaign)
    assert "Add your postal address in Settings: the law requires it in every campaign." in problems
    assert "Choose at least one list, or a segment." in problems

    newsletter = world.extras["list"]
    campaign.lists.set([newsletter])
    contact_services.suppression_add(account=world.account_a, email="erin@alpha.test")
    reach = audience(campaign)
    assert (reach.subscribed, reach.sendable, reach.excluded) == (1, 0, 1)
    assert any("Nobody in the chosen audience" in p for p in start_problems(campaign))

    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "1 subscribed contact left out because suppressed" in page


def test_it_counts_a_contact_on_two_lists_once(world):
    from campaigns.selectors import audience
    from contacts import services as contact_services

    campaign = world.extras["campaign"]
    other = contact_services.list_create(account=world.account_a, actor=world.alice, name="Other")
    contact_services.subscription_subscribe(contact=world.extras["contact"], contact_list=other)
    campaign.lists.set([world.extras["list"], other])

    assert audience(campaign).sendable == 1
