"""Telling machine opens and clicks from people: user agents, Apple's networks, timing;
why each was judged a machine's, and what the pixel records of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from campaigns import tokens
from campaigns.models import Delivery
from events import machines
from events.models import Event
from stats.models import CampaignStats
from stats.rollup import rollup
from tests.stats.feedback_helpers import send

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
IPHONE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"  # noqa: E501
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
OUTLOOK_DESKTOP = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0",  # Apple Mail Privacy Protection's proxy
        " Mozilla/5.0 ",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "Mozilla/5.0 (compatible; OutlookImageProxy)",
        "Barracuda Sentinel (EE)",
        "python-requests/2.32.3",
        "",
    ],
)
def test_it_flags_image_proxies_and_prefetchers(agent):
    assert machines.is_machine_open(agent) is True


@pytest.mark.parametrize("agent", [APPLE_MAIL, IPHONE_MAIL, FIREFOX, OUTLOOK_DESKTOP, GMAIL_PROXY])
def test_it_counts_mail_apps_that_show_the_message_as_people(agent):
    # Outlook for Windows loads images as "ms-office" when its user reads the message;
    # Gmail fetches them through its proxy when its user opens the message.
    assert machines.is_machine_open(agent) is False
    assert machines.open_reason(agent) is None


@pytest.mark.parametrize(
    ("agent", "ip", "reason"),
    [
        ("Mozilla/5.0", None, "apple_mpp"),
        (APPLE_MAIL, "17.58.101.4", "apple_mpp"),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            None,
            "prefetch",
        ),
        ("Barracuda Sentinel (EE)", None, "scanner"),
        ("python-requests/2.32.3", None, "automation"),
        ("", None, "no_agent"),
    ],
)
def test_it_says_why_an_open_was_a_machines(agent, ip, reason):
    assert machines.open_reason(agent, ip) == reason
    assert reason in machines.REASONS


def test_it_says_why_a_click_was_a_machines():
    now = SENT + timedelta(hours=2)
    assert machines.click_reason("Proofpoint URL Defense") == "scanner"
    assert machines.click_reason(OUTLOOK_DESKTOP) == "scanner"
    assert machines.click_reason("Go-http-client/1.1") == "automation"
    assert machines.click_reason(FIREFOX, None, SENT, SENT + timedelta(seconds=4)) == "timing"
    earlier = [now - timedelta(milliseconds=300)]
    assert machines.click_reason(FIREFOX, None, SENT, now, earlier) == "timing"
    assert machines.click_reason(FIREFOX, None, SENT, now) is None


def test_gmails_proxy_within_seconds_of_sending_is_still_a_machine():
    # Timing says a gateway fetched it on arrival, whatever the agent.
    assert machines.open_reason(GMAIL_PROXY, None, SENT, SENT + timedelta(seconds=1)) == "timing"


@pytest.mark.parametrize("ip", ["17.58.101.4", "17.0.0.1", "2620:149:a10::5", "::ffff:17.1.2.3"])
def test_it_flags_opens_from_apples_networks(ip):
    # Apple Mail with Privacy Protection may also send a full user agent.
    assert machines.is_machine_open(APPLE_MAIL, ip) is True


@pytest.mark.parametrize("ip", ["8.8.8.8", "16.255.255.255", "18.0.0.0", "2001:db8::1", "junk", ""])
def test_it_does_not_flag_other_networks(ip):
    assert machines.is_machine_open(APPLE_MAIL, ip) is False


def test_it_does_not_judge_clicks_by_network():
    # People browse through iCloud Private Relay: an Apple address says nothing of a click.
    assert machines.is_machine_click(FIREFOX, "17.58.101.4") is False


def test_it_flags_an_open_within_seconds_of_sending():
    assert machines.is_machine_open(APPLE_MAIL, None, SENT, SENT + timedelta(seconds=1)) is True
    assert machines.is_machine_open(APPLE_MAIL, None, SENT, SENT + timedelta(minutes=2)) is False


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Mimecast URL scanner)",
        "Proofpoint URL Defense",
        "Microsoft Office Existence Discovery",
        OUTLOOK_DESKTOP,  # Office checks a link before the browser opens it
        "Mozilla/5.0 (compatible; SafeLinks)",
        "Go-http-client/1.1",
        "",
    ],
)
def test_it_flags_link_scanners(agent):
    assert machines.is_machine_click(agent) is True


def test_it_flags_a_click_within_ten_seconds_of_sending():
    assert machines.is_machine_click(FIREFOX, None, SENT, SENT + timedelta(seconds=4)) is True
    assert machines.is_machine_click(FIREFOX, None, SENT, SENT + timedelta(minutes=3)) is False


def test_it_flags_a_click_right_after_another_click_of_the_message():
    # given a scanner walking every link of the message in the same second
    now = SENT + timedelta(hours=2)
    earlier = [now - timedelta(milliseconds=300)]

    # then the following clicks are machines, a person's later click is not
    assert machines.is_machine_click(FIREFOX, None, SENT, now, earlier) is True
    later = now + timedelta(seconds=40)
    assert machines.is_machine_click(FIREFOX, None, SENT, later, earlier) is False


def test_the_one_argument_calls_still_judge_by_user_agent():
    assert machines.is_machine_open(FIREFOX) is False
    assert machines.is_machine_click(FIREFOX) is False
    assert machines.is_machine_open("Mozilla/5.0") is True


def test_an_unknown_user_agent_says_nothing():
    # A provider that does not report the agent: only the other signals count.
    assert machines.is_machine_open(None) is False
    assert machines.is_machine_open(None, "17.1.1.1") is True


def test_the_networks_file_also_reads_apples_csv(tmp_path):
    # given Apple's egress list as published: prefix, country, region, city
    csv = tmp_path / "egress-ip-ranges.csv"
    csv.write_text(
        "# comment\n172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
    )

    networks = machines.read_networks(csv)

    assert "172.224.226.7" in networks
    assert "172.224.226.32" not in networks
    assert "2a02:26f7:b3c0:4000::9" in networks
    assert "2a02:26f7:b3c0:4001::9" not in networks


# -- what the pixel records ------------------------------------------------------------------


@pytest.fixture
def delivery(world):
    """erin's message, sent a minute ago: later than any prefetch on arrival."""
    delivery = send(world)
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=delivery.sent_at - timedelta(minutes=1))
    return delivery


def _open(delivery, agent: str, ip: str = "192.0.2.7"):
    response = Client().get(
        f"/t/o/{tokens.recipient_token(delivery.pk)}", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip
    )
    assert response.status_code == 200


def test_a_gmail_proxy_open_is_a_persons_and_counts_in_the_open_rate(world, delivery):
    # when erin opens the message in Gmail, which fetches the pixel through its proxy
    _open(delivery, GMAIL_PROXY, ip="66.249.84.1")

    # then it is her open: her first open, not flagged, in the unique opens
    (event,) = Event.objects.filter(delivery_id=delivery.pk, type=Event.Type.OPEN)
    assert event.machine is False
    assert "machine_reason" not in event.detail
    delivery.refresh_from_db()
    assert delivery.first_opened_at is not None
    rollup(wait=0)
    stats = CampaignStats.objects.get(campaign=delivery.campaign)
    assert (stats.opens, stats.opens_unique, stats.machine_opens) == (1, 1, 0)


def test_an_apple_privacy_protection_open_stays_a_machines_and_says_why(world, delivery):
    # when Apple's proxy prefetches the pixel on delivery
    _open(delivery, "Mozilla/5.0", ip="17.58.101.4")

    # then it is flagged, with its reason, and is nobody's first open
    (event,) = Event.objects.filter(delivery_id=delivery.pk, type=Event.Type.OPEN)
    assert event.machine is True
    assert event.detail == {"machine_reason": "apple_mpp"}
    delivery.refresh_from_db()
    assert delivery.first_opened_at is None
    rollup(wait=0)
    stats = CampaignStats.objects.get(campaign=delivery.campaign)
    assert (stats.opens_unique, stats.machine_opens) == (0, 1)
