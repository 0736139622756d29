"""The campaign report: exact counts and rates from the roll-up's counters, people by
default and machines on request, a chart drawn as SVG, a CSV download, the same figures in
the API, the comparison on the dashboard, and nothing of it for another account."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from contacts.models import Contact
from stats import reports
from stats.rollup import rollup
from tests.stats.campaign_with_events import (
    STARTED,
    STORY_EMAILS,
    SentCampaign,
    record_story,
    sent_campaign,
)

# Three days after the send: the chart has its 48 hours, then two days.
NOW = STARTED + timedelta(days=3, hours=1)


@pytest.fixture
def story(world) -> SentCampaign:
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)
    rollup(wait=0)
    return sc


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=True):
        yield


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_it_reports_exact_counts_and_rates_of_people(world, story):
    report = reports.campaign_report(world.account_a, story.campaign, now=NOW)

    t = report.totals
    assert (t.recipients, t.sent, t.delivered, t.delivered_reported) == (5, 5, 3, True)
    assert (t.opens, t.opens_unique, t.clicks, t.clicks_unique) == (4, 2, 4, 2)
    assert (t.machine_opens, t.machine_clicks) == (2, 2)
    assert (t.bounced, t.bounced_hard, t.bounced_soft) == (2, 1, 1)
    assert (t.complaints, t.unsubscribes) == (1, 1)
    assert t.open_rate == pytest.approx(2 / 3)
    assert t.click_rate == pytest.approx(2 / 3)
    assert t.click_to_open_rate == 1
    assert t.bounce_rate == pytest.approx(2 / 5)
    assert t.hard_bounce_rate == t.soft_bounce_rate == pytest.approx(1 / 5)
    assert t.complaint_rate == t.unsubscribe_rate == pytest.approx(1 / 3)


def test_it_counts_machines_too_on_request(world, story):
    report = reports.campaign_report(
        world.account_a, story.campaign, include_machines=True, now=NOW
    )

    t = report.totals
    assert (t.opens, t.opens_unique, t.clicks, t.clicks_unique) == (6, 3, 6, 3)
    assert t.open_rate == 1
    assert [(link.clicks, link.clicks_unique) for link in report.links] == [(4, 3), (2, 2)]
    assert report.top_domains[0].domain == "gmail.test"
    assert [(d.domain, d.opens_unique) for d in report.top_domains] == [
        ("gmail.test", 2),
        ("yahoo.test", 1),
    ]


def test_it_reports_clicks_per_link_and_top_domains(world, story):
    report = reports.campaign_report(world.account_a, story.campaign, now=NOW)

    assert [(lk.position, lk.url, lk.clicks, lk.clicks_unique) for lk in report.links] == [
        (1, "https://shop.example/sale", 3, 2),
        (2, "https://shop.example/boots", 1, 1),
    ]
    assert report.links[0].click_rate == pytest.approx(2 / 3)
    assert [(d.domain, d.opens_unique, d.open_rate) for d in report.top_domains] == [
        ("gmail.test", 2, 1.0)
    ]
    # most bounced recipients first, then the bigger domain
    assert [(d.domain, d.bounced, d.bounce_rate) for d in report.bounce_domains] == [
        ("yahoo.test", 1, 0.5),
        ("corp.test", 1, 1.0),
    ]


def test_it_charts_the_first_48_hours_by_hour_then_days(world, story):
    report = reports.campaign_report(world.account_a, story.campaign, now=NOW)

    assert len(report.hourly) == 48
    assert (report.hourly[0].opens, report.hourly[0].clicks) == (2, 2)
    assert (report.hourly[2].opens, report.hourly[2].clicks) == (2, 2)
    assert sum(p.opens for p in report.hourly) == 4
    # 4 Nov 09:00 UTC to 5 Nov, days in the account's time zone (UTC here)
    assert [p.start.date().isoformat() for p in report.daily] == ["2026-11-04", "2026-11-05"]
    assert sum(p.opens + p.clicks for p in report.daily) == 0


def test_the_report_page_shows_the_figures_and_an_svg_chart(world, story, alice_client, at_now):
    response = alice_client.get(f"/campaigns/{story.campaign.pk}/report/")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="open-rate">66.7%<' in page
    assert 'data-testid="click-rate">66.7%<' in page
    assert 'data-testid="click-to-open-rate">100.0%<' in page
    assert 'data-testid="bounce-rate">40.0%<' in page
    assert 'data-testid="complaint-rate">33.3%<' in page
    assert 'data-testid="unique-opens">2<' in page
    assert 'data-testid="total-opens">4<' in page
    assert 'data-testid="machines-left-out"' in page
    assert page.count('data-testid="timeline-chart"') == 2  # hourly, then daily
    assert "<svg" in page
    assert "<script" not in page.split("</head>")[1]  # nothing for the CSP to refuse
    assert "https://shop.example/boots" in page
    assert "Updated " in page
    assert "s ago" in page


def test_the_report_page_says_sent_once_and_numbers_links_from_one(
    world, story, alice_client, at_now
):
    # Given a sent campaign with one tracked link
    story.campaign.status = "sent"
    story.campaign.save(update_fields=["status"])

    # When alice opens its report
    page = alice_client.get(f"/campaigns/{story.campaign.pk}/report/").content.decode()

    # Then the heading says "sent" once, and links are numbered as on the campaign page
    heading = page.split("<h1>", 1)[1].split("</p>", 1)[0]
    assert heading.count("sent") == 1
    # (the story's links sit at positions 1 and 2 of 0, 1, 2: shown as 2 and 3)
    rows = re.findall(r'<tr><td>(\d+)</td><td class="url">([^<]+)<', page)
    assert rows == [("2", "https://shop.example/sale"), ("3", "https://shop.example/boots")]


def test_the_report_page_counts_machines_when_asked(world, story, alice_client, at_now):
    response = alice_client.get(f"/campaigns/{story.campaign.pk}/report/", {"machines": "1"})

    page = response.content.decode()
    assert 'data-testid="open-rate">100.0%<' in page
    assert 'data-testid="total-opens">6<' in page


MACHINE_REASONS = [("apple_mpp", 2, 0), ("scanner", 0, 1), ("timing", 0, 1)]


def test_it_says_why_opens_and_clicks_were_left_out_as_machines(world, story):
    report = reports.campaign_report(world.account_a, story.campaign, now=NOW)

    assert [(m.reason, m.opens, m.clicks) for m in report.machines] == MACHINE_REASONS
    assert report.machines[0].label == "Apple Mail Privacy Protection"


def test_the_report_page_shows_the_machines_by_reason(world, story, alice_client, at_now):
    response = alice_client.get(f"/campaigns/{story.campaign.pk}/report/")

    page = response.content.decode()
    assert 'data-testid="machine-reasons"' in page
    assert (
        '<tr data-testid="machine-reason-apple_mpp"><td>Apple Mail Privacy Protection</td>'
        "<td>2</td><td>0</td></tr>"
    ) in page
    assert '<tr data-testid="machine-reason-scanner">' in page
    assert '<tr data-testid="machine-reason-timing">' in page


def test_the_report_shows_the_senders_deferrals_as_sending_problems(world, alice_client, at_now):
    # given Gmail rate-limited the message to ann, and refused the one to ben for policy
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test", "cat@gmail.test"])
    sc.record(
        sc.event("deferred", "ann@gmail.test", kind="policy", status="4.7.28", deferred=True),
        sc.event("rejected", "ben@gmail.test", kind="policy", status="5.7.1"),
    )
    rollup(wait=0)

    response = alice_client.get(f"/campaigns/{sc.campaign.pk}/report/")

    # then the page says so, apart from the recipients' bounces
    t = response.context["report"].totals
    assert (t.deferred, t.bounced_soft, t.bounced_hard, t.bounced_other) == (1, 0, 0, 1)
    page = response.content.decode()
    assert 'data-testid="sending-problems"' in page
    assert 'data-testid="deferred">1<' in page
    assert 'data-testid="soft-bounces">0<' in page


def test_the_report_page_says_what_anonymous_links_counted(world, alice_client):
    # given a recipient who objected to tracking: their links name only the campaign
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test"])
    sc.record(
        sc.event("delivered", "ann@gmail.test"),
        sc.event("delivered", "ben@gmail.test"),
        sc.event("open", "ann@gmail.test"),
        dataclasses.replace(sc.event("open", "ben@gmail.test"), delivery_id=None),
    )
    rollup(wait=0)

    response = alice_client.get(f"/campaigns/{sc.campaign.pk}/report/")

    t = response.context["report"].totals
    assert (t.opens, t.opens_unique, t.anonymous_opens, t.open_rate) == (2, 1, 1, 0.5)
    assert 'data-testid="anonymous"' in response.content.decode()


def test_the_report_page_of_a_draft_has_nothing_to_draw(world, alice_client):
    campaign = world.extras["campaign"]

    response = alice_client.get(f"/campaigns/{campaign.pk}/report/")

    assert response.status_code == 200
    assert "Nothing to draw yet" in response.content.decode()
    assert response.context["report"].totals.open_rate is None


def test_the_report_page_reads_a_few_rows_whatever_the_size(
    world, story, alice_client, django_assert_max_num_queries
):
    url = f"/campaigns/{story.campaign.pk}/report/"
    alice_client.get(url)

    # session, user, membership, MFA rule, campaign, then the report's own 8 reads
    with django_assert_max_num_queries(16):
        alice_client.get(url)


def test_it_downloads_the_report_as_csv(world, story, alice_client, at_now):
    response = alice_client.get(f"/campaigns/{story.campaign.pk}/report.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["unique opens", "2", "66.67"] in rows
    assert ["hard bounces", "1", "20.00"] in rows
    assert ["complaints", "1", "33.33"] in rows
    assert ["1", "https://shop.example/sale", "3", "2", "66.67"] in rows
    assert any(row[:2] == ["gmail.test", "2"] for row in rows)
    assert any(row[:1] == ["hour"] and row[2:] == ["2", "2"] for row in rows)
    assert ["apple_mpp", "Apple Mail Privacy Protection", "2", "0"] in rows
    assert ["scanner", "security scanners and link checkers", "0", "1"] in rows


def test_the_csv_defuses_what_a_spreadsheet_would_run(world, alice_client):
    sc = sent_campaign(world.account_a, ["ann@gmail.test"])
    Contact.objects.filter(email="ann@gmail.test").update(email="ann@=cmd.test")
    sc.record(sc.event("open", "ann@gmail.test"))
    rollup(wait=0)

    response = alice_client.get(f"/campaigns/{sc.campaign.pk}/report.csv")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert any(row[:1] == ["'=cmd.test"] for row in rows)
    assert not any(row and row[0] == "=cmd.test" for row in rows)


def test_a_viewer_reads_the_report_but_cannot_download_it(story, vera_client):
    assert vera_client.get(f"/campaigns/{story.campaign.pk}/report/").status_code == 200
    assert vera_client.get(f"/campaigns/{story.campaign.pk}/report.csv").status_code == 403


def test_another_account_gets_404(world, story, charlie_client):
    for url in (
        f"/campaigns/{story.campaign.pk}/report/",
        f"/campaigns/{story.campaign.pk}/report.csv",
    ):
        assert charlie_client.get(url).status_code == 404
    response = _api(world.charlie_key_secret).get(f"/api/v1/campaigns/{story.campaign.pk}/report/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_api_gives_the_same_report(world, story, at_now):
    api = _api(world.alice_key_secret)

    response = api.get(f"/api/v1/campaigns/{story.campaign.pk}/report/")

    assert response.status_code == 200
    data = response.json()
    assert data["campaign_id"] == story.campaign.pk
    assert data["include_machines"] is False
    assert data["totals"]["opens_unique"] == 2
    assert data["totals"]["delivered"] == 3
    assert data["rates"]["open_rate"] == pytest.approx(2 / 3)
    assert data["rates"]["bounce_rate"] == pytest.approx(0.4)
    assert [link["clicks_unique"] for link in data["links"]] == [2, 1]
    assert [d["domain"] for d in data["bounce_domains"]] == ["yahoo.test", "corp.test"]
    assert len(data["hourly"]) == 48
    assert data["as_of"] is not None
    assert [(m["reason"], m["opens"], m["clicks"]) for m in data["machines"]] == MACHINE_REASONS
    assert data["totals"]["deferred"] == 0
    machines = api.get(
        f"/api/v1/campaigns/{story.campaign.pk}/report/", {"include_machines": "true"}
    ).json()
    assert machines["totals"]["opens_unique"] == 3


def test_the_api_refuses_a_bad_parameter(world, story):
    response = _api(world.alice_key_secret).get(
        f"/api/v1/campaigns/{story.campaign.pk}/report/", {"include_machines": "perhaps"}
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("include_machines:")


def test_the_api_needs_a_key(world, story):
    response = Client().get(f"/api/v1/campaigns/{story.campaign.pk}/report/")

    assert response.status_code == 401


def test_the_dashboard_compares_the_last_campaigns(world, story, alice_client):
    older = sent_campaign(world.account_a, ["zoe@gmail.test"], name="Spring sale")
    older.campaign.started_at = story.campaign.started_at - timedelta(days=30)
    older.campaign.save()
    rollup(wait=0)

    dashboard = alice_client.get("/").content.decode()
    response = alice_client.get("/campaigns/comparison/")

    assert 'hx-get="/campaigns/comparison/"' in dashboard
    rows = response.context["rows"]
    assert [r.name for r in rows] == ["Autumn sale", "Spring sale"]
    assert rows[0].open_rate == pytest.approx(2 / 3)
    assert rows[0].bounce_rate == pytest.approx(2 / 5)
    assert rows[0].complaint_rate == pytest.approx(1 / 3)
    page = response.content.decode()
    assert f"/campaigns/{story.campaign.pk}/report/" in page
    assert "badge danger" in page  # a complaint rate over 0.3%


def test_the_comparison_shows_only_the_own_accounts_campaigns(world, story, charlie_client):
    response = charlie_client.get("/campaigns/comparison/")

    assert response.status_code == 200
    assert response.context["rows"] == []
    assert "Autumn sale" not in response.content.decode()


def test_freshness_reads_as_people_say_it():
    assert reports.ago(None) == "not yet"
    assert reports.ago(12) == "12 s ago"
    assert reports.ago(185) == "3 min ago"
    assert reports.ago(7300) == "2 h ago"
    assert reports.ago(3 * 86400) == "3 days ago"
