"""Pre-send checks: each is found on a campaign made to trigger it and absent on a clean
one; the spam score is asked of a spamd over its protocol only when one is configured,
and any failure of it reads "unavailable"; the page and the API show them, each with its
fix, and only to the account."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator

import pytest
from django.utils import timezone

from campaigns import ab, services
from campaigns.checks import Check, presend_checks
from campaigns.models import Campaign
from campaigns.states import State
from tests.factories import World
from tests.workers import free_port

CLEAN_HTML = (
    "<p>Hi {{ first_name }}, our autumn roast is in.</p>"
    '<p><a href="https://shop.example.com/autumn?who={{ email }}">See it</a> · '
    '<a href="mailto:hello@alpha.test">Write to us</a></p>'
    '<img src="https://shop.example.com/beans.png" alt="A bag of beans">'
    '<img src="https://shop.example.com/spacer.png" alt="">'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _campaign(world: World, **fields: object) -> Campaign:
    values: dict[str, object] = {
        "subject": "The autumn roast is in",
        "preheader": "Three origins, one week only",
        "from_email": "news@alpha.test",
        "html": CLEAN_HTML,
    }
    values.update(fields)
    return services.campaign_create(
        account=world.account_a, actor=world.alice, name="Autumn", **values
    )


def _codes(checks: list[Check]) -> list[str]:
    return [check.code for check in checks]


def _only(checks: list[Check], code: str) -> Check:
    (found,) = [check for check in checks if check.code == code]
    return found


def test_a_clean_campaign_has_no_check(world):
    assert presend_checks(_campaign(world)) == []


@pytest.mark.parametrize(
    "href",
    ["/autumn", "#", "htp://shop.example.com", "https://", "javascript:alert(1)", "mailto:"],
)
def test_it_finds_a_malformed_link(world, href):
    # given a body, saved through the app, with one link that cannot work
    campaign = _campaign(world, html=CLEAN_HTML + f'<p><a href="{href}">Our shop</a></p>')

    # when the campaign is checked
    checks = presend_checks(campaign)

    # then that link is an error, named (by its text when the sanitizer took its address)
    check = _only(checks, "malformed_link")
    assert check.level == "error"
    assert "1 link will not work" in check.message
    assert f"“{href}”" in check.message or "“Our shop” (no address)" in check.message
    assert "https://" in check.fix
    assert _codes(checks) == ["malformed_link"]


def test_it_finds_links_to_missives_own_tracking_addresses(world, settings):
    # given a link copied from a message Missive sent, and one to a form Missive hosts
    settings.MISSIVE_BASE_URL = "https://mail.missive.test"
    html = (
        CLEAN_HTML + '<a href="https://mail.missive.test/t/c/AbC.dEf">Copied link</a>'
        '<a href="https://mail.missive.test/u/AbC.dEf">Copied unsubscribe</a>'
        '<a href="https://mail.missive.test/subscribe/abc/">Join the list</a>'
    )

    checks = presend_checks(_campaign(world, html=html))

    # then the two copied ones are an error, naming the host; the form link is fine
    check = _only(checks, "tracking_link")
    assert check.level == "error"
    assert "2 links point at Missive's own tracking address (mail.missive.test)" in check.message
    assert "/subscribe/" not in check.message
    assert _codes(checks) == ["tracking_link"]


def test_it_finds_images_without_alt_text(world):
    html = CLEAN_HTML + '<img src="https://shop.example.com/hero.png">'

    checks = presend_checks(_campaign(world, html=html))

    check = _only(checks, "image_alt")
    assert check.level == "warning"
    assert "1 image without alt text: “https://shop.example.com/hero.png”" in check.message
    assert _codes(checks) == ["image_alt"]


def test_it_finds_an_empty_text_part_of_the_customers_own(world):
    campaign = _campaign(world, text_is_custom=True, text="  ")

    checks = presend_checks(campaign)

    assert _only(checks, "text_missing").level == "warning"
    assert _codes(checks) == ["text_missing"]
    # a text part made from the HTML is never empty: no check
    assert presend_checks(_campaign(world, text_is_custom=False, text="")) == []


def test_it_finds_a_missing_or_long_subject(world):
    missing = presend_checks(_campaign(world, subject=""))
    long = presend_checks(_campaign(world, subject="A" * 81))
    at_limit = presend_checks(_campaign(world, subject="A" * 80))

    assert _only(missing, "subject_missing").level == "error"
    assert _only(long, "subject_long").level == "warning"
    assert "81 characters" in _only(long, "subject_long").message
    assert at_limit == []


def test_a_missing_preheader_is_advice(world):
    checks = presend_checks(_campaign(world, preheader=""))

    assert _only(checks, "preheader_missing").level == "info"
    assert _codes(checks) == ["preheader_missing"]


def test_it_lists_errors_first(world):
    checks = presend_checks(
        _campaign(world, subject="", preheader="", html=CLEAN_HTML + '<img src="x.png">')
    )

    assert [check.level for check in checks] == ["error", "warning", "info"]


# -- the spam score -----------------------------------------------------------------------------


class FakeSpamd:
    """spamd on loopback: reads one CHECK request, keeps it, answers with a score."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                data = b""
                while chunk := connection.recv(65536):
                    data += chunk
                self.requests.append(data)
                connection.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def spamd() -> Iterator[FakeSpamd]:
    server = FakeSpamd(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 12.5 / 5.0\r\n\r\n")
    yield server
    server.close()


def test_there_is_no_spam_check_when_none_is_configured(world, settings):
    settings.MISSIVE_SPAMC = ""

    checks = presend_checks(_campaign(world))

    assert not {"spam_score", "spam_unavailable"} & set(_codes(checks))


def test_the_spam_check_is_unavailable_when_spamd_cannot_be_reached(world, settings):
    # given a spamd configured on a port nothing listens on
    settings.MISSIVE_SPAMC = f"127.0.0.1:{free_port()}"

    checks = presend_checks(_campaign(world))

    assert _codes(checks) == ["spam_unavailable"]
    assert "Spam check unavailable" in checks[0].message


def test_the_spam_check_is_unavailable_when_the_setting_is_not_host_and_port(world, settings):
    settings.MISSIVE_SPAMC = "spamd.internal"

    assert _codes(presend_checks(_campaign(world))) == ["spam_unavailable"]


def test_it_asks_spamd_for_the_score_of_the_composed_message(world, settings, spamd):
    # given a spamd that finds the message spam
    settings.MISSIVE_SPAMC = f"127.0.0.1:{spamd.port}"

    checks = presend_checks(_campaign(world))

    # then the score is an error, with what to do
    check = _only(checks, "spam_score")
    assert check.level == "error"
    assert "12.5 (spam from 5)" in check.message
    # and spamd was sent the CHECK command with the message as the sample recipient gets it
    (request,) = spamd.requests
    head, _, message = request.partition(b"\r\n\r\n")
    assert head.startswith(b"CHECK SPAMC/1.5\r\n")
    assert f"Content-length: {len(message)}".encode() in head
    assert b"Subject: The autumn roast is in" in message
    assert b"Hi Jane, our autumn roast is in." in message


def test_an_answer_without_a_score_is_unavailable(world, settings):
    server = FakeSpamd(b"SPAMD/1.1 76 Bad header line\r\n\r\n")
    try:
        settings.MISSIVE_SPAMC = f"127.0.0.1:{server.port}"
        assert _codes(presend_checks(_campaign(world))) == ["spam_unavailable"]
    finally:
        server.close()


# -- the page and the API -----------------------------------------------------------------------


def test_the_campaign_page_shows_each_check_with_its_fix(bob_client, world):
    campaign = _campaign(world, preheader="", html=CLEAN_HTML + '<a href="/shop">Shop</a>')

    page = bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'data-check="malformed_link"' in page
    assert 'data-check="preheader_missing"' in page
    assert "Write a preheader that completes the subject in a sentence." in page


def test_the_send_now_page_shows_what_is_worth_a_look_but_lets_it_go(alice_client, world):
    # given a campaign ready to send, but with an image without alt text and an A/B test
    campaign = _campaign(
        world,
        html=CLEAN_HTML + '<img src="https://cdn.example/a.png">',
        lists=[world.extras["list"]],
    )
    ab.set_up(campaign=campaign, actor=world.alice, variants=[{"subject": "Another"}])

    # when alice asks to send it now
    page = alice_client.get(f"/campaigns/{campaign.pk}/start/").content.decode()

    # then the page names the warning and the test, and still offers to send
    assert 'data-testid="confirm-checks"' in page
    assert "alt" in page
    assert "An A/B test: 2 variants on 20% of them" in page
    assert ">Send now</button>" in page


def test_send_now_with_errors_waits_until_the_sender_says_send_it_anyway(alice_client, world):
    # given a campaign ready to send whose link will not work
    campaign = _campaign(
        world, html=CLEAN_HTML + '<a href="/shop">Shop</a>', lists=[world.extras["list"]]
    )
    page = alice_client.get(f"/campaigns/{campaign.pk}/start/").content.decode()
    assert 'name="despite_errors"' in page

    # when alice confirms without ticking that she sends it with the error
    refused = alice_client.post(f"/campaigns/{campaign.pk}/start/")

    # then it is not sent, and the page says why
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT
    assert refused.status_code == 200
    assert "Not sent: fix the errors below" in refused.content.decode()

    # and once she ticks it, it goes
    alice_client.post(f"/campaigns/{campaign.pk}/start/", {"despite_errors": "1"})
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING


def test_warnings_alone_ask_nothing_more(alice_client, world):
    campaign = _campaign(
        world,
        html=CLEAN_HTML + '<img src="https://cdn.example/a.png">',
        lists=[world.extras["list"]],
    )
    assert (
        'name="despite_errors"'
        not in alice_client.get(f"/campaigns/{campaign.pk}/start/").content.decode()
    )

    alice_client.post(f"/campaigns/{campaign.pk}/start/")

    campaign.refresh_from_db()
    assert campaign.status == State.SENDING


def test_scheduling_with_errors_waits_for_the_same_tick(alice_client, world):
    campaign = _campaign(
        world, html=CLEAN_HTML + '<a href="/shop">Shop</a>', lists=[world.extras["list"]]
    )
    when = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'name="despite_errors"' in page

    refused = alice_client.post(f"/campaigns/{campaign.pk}/schedule/", {"when": when}, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT
    assert "Not scheduled: the checks found errors." in refused.content.decode()

    alice_client.post(f"/campaigns/{campaign.pk}/schedule/", {"when": when, "despite_errors": "1"})
    campaign.refresh_from_db()
    assert campaign.status == State.SCHEDULED


def test_the_api_answers_the_checks(world, alice_client):
    campaign = _campaign(world, preheader="")

    response = alice_client.get(f"/api/v1/campaigns/{campaign.pk}/checks/")

    assert response.status_code == 200
    assert response.json() == {
        "checks": [
            {
                "level": "info",
                "code": "preheader_missing",
                "message": _only(presend_checks(campaign), "preheader_missing").message,
                "fix": "Write a preheader that completes the subject in a sentence.",
            }
        ]
    }


def test_another_account_gets_404_for_the_checks(world, charlie_client):
    campaign = _campaign(world)

    assert charlie_client.get(f"/api/v1/campaigns/{campaign.pk}/checks/").status_code == 404
