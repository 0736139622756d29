"""The logged-in pages on a phone (390 px) and a laptop (1366 px): nothing scrolls
sideways, the navigation folds into a menu on the phone and holds on one row on the
laptop, wide tables scroll inside themselves, and tables of rows to act on stack into
cards on the phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from audiences import services as audience_services
from campaigns import ab
from campaigns import services as campaign_services
from campaigns.archive import archive_key
from campaigns.models import ABTest, Delivery
from contacts import services as contact_services
from contacts.importing.jobs import import_upload
from journeys import services as journey_services
from journeys.models import Enrollment
from stats.rollup import rollup
from tests.factories import PASSWORD, World, build_world
from tests.stats.campaign_with_events import STORY_EMAILS, record_story, sent_campaign

pytestmark = pytest.mark.usefixtures("transactional_db")

SHOTS = Path("/tmp/shots")  # noqa: S108 (screenshots to look at, nothing secret)
MAILCHIMP = Path(__file__).parents[1] / "contacts" / "fixtures" / "mailchimp_subscribed.csv"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

# A long consent wording, as a sign-up form may store it.
WORDING = (
    "I agree to receive the Alpha Sentinel newsletter about roasting, brewing and "
    "subscription offers, and understand that I can unsubscribe at any time."
)


@pytest.fixture
def filled_world(settings, tmp_path) -> World:
    """The personas' world, with a sent campaign and its report, a contact with consent
    proof, a Mailchimp export waiting for its mapping, attributes with long labels, and
    names and addresses long enough to strain a narrow screen."""
    settings.MEDIA_ROOT = tmp_path
    world = build_world()
    # a long account name, and alice an operator too: the most the top bar has to hold
    world.account_a.name = "Alpha Sentinel Coffee Roasters"
    world.account_a.save(update_fields=["name"])
    world.alice.is_staff = True
    world.alice.save(update_fields=["is_staff"])
    story = sent_campaign(world.account_a, STORY_EMAILS, name="Autumn sale for every roaster")
    record_story(story)
    rollup(wait=0)
    long_list = contact_services.list_create(
        account=world.account_a,
        actor=world.alice,
        name="Wholesale customers and cafés of the northern region",
    )
    world.extras["story"] = story
    world.extras["consenting"] = contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="maximiliana.featherstonehaugh-worthington@subdomain.example.org",
        first_name="Maximiliana",
        last_name="Featherstonehaugh-Worthington",
        lists=[long_list],
        consent_text=WORDING,
    )
    world.extras["long_list"] = long_list
    # the sent campaign was an A/B test of a long subject, and is in the public archive
    sent = story.campaign
    ABTest.objects.create(
        campaign=sent,
        variants=[{"subject": "Our whole autumn range of single-origin roasts, ground to order"}],
        decide_at=timezone.now(),
        winner=1,
        decided_by="auto",
    )
    rows = list(sent.deliveries.order_by("pk").values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=rows[::3]).update(variant=0)
    Delivery.objects.filter(pk__in=rows[1::3]).update(variant=1)
    Delivery.objects.filter(pk__in=rows[2::3]).update(variant=ab.HELD)
    campaign_services.campaign_publish(campaign=sent, actor=world.alice, public=True)
    world.extras["blocks"] = campaign_services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Spring newsletter for every roaster and café of the northern region",
        starter="blocks-newsletter",
    )
    # an A/B test whose B has its own blocks, and a long subject for C
    blocks_b = {**world.extras["blocks"].blocks}
    ab.set_up(
        campaign=world.extras["blocks"],
        actor=world.alice,
        variants=[{"blocks": blocks_b}, {"subject": "A much longer subject for variant C " * 3}],
    )
    # 23 columns, the widest file a customer is likely to bring
    world.extras["mailchimp"] = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=long_list,
        upload=SimpleUploadedFile(
            "mailchimp_subscribed_audience_export.csv", MAILCHIMP.read_bytes()
        ),
    )
    for name, kind, label in (
        ("loyalty_points_balance_at_year_end", "number", "Loyalty points balance at year end"),
        ("preferred_roast_and_grind", "text", "Preferred roast, grind and brewing method"),
        ("first_purchase", "date", ""),
    ):
        contact_services.attribute_define(
            account=world.account_a, actor=world.alice, name=name, type=kind, label=label
        )
    # a segment with a nested group and the widest conditions: a range, a campaign and its link
    story_campaign = world.extras["story"].campaign
    link = story_campaign.links.order_by("position").first()
    world.extras["wide_segment"] = audience_services.segment_create(
        account=world.account_a,
        actor=world.alice,
        name="Loyal wholesale customers who clicked the autumn sale",
        definition={
            "match": "all",
            "conditions": [
                {
                    "field": "attributes.loyalty_points_balance_at_year_end",
                    "op": "between",
                    "value": [100, 5000],
                },
                {"field": "list", "op": "subscribed", "value": long_list.pk},
                {
                    "match": "any",
                    "conditions": [
                        {
                            "field": "clicked",
                            "op": "in_last_days",
                            "value": 30,
                            "campaign": story_campaign.pk,
                            **({"link": link.pk} if link else {}),
                        },
                        {
                            "field": "attributes.first_purchase",
                            "op": "anniversary_within_days",
                            "value": 7,
                        },
                    ],
                },
            ],
        },
    )
    # a journey whose condition has steps in a branch, and a long address inside another
    winback = journey_services.journey_create(
        account=world.account_a,
        actor=world.alice,
        name="Win back the wholesale customers and cafés of the northern region",
        starter="reengagement",
    )
    condition = winback.draft[2]["id"]
    for kind in ("wait", "email"):
        journey_services.step_add(
            journey=winback, actor=world.alice, type=kind, after=condition, branch="yes"
        )
    world.extras["winback"] = winback
    live = world.extras["journey"]
    Enrollment.objects.create(
        journey=live,
        version=live.version,
        contact=world.extras["consenting"],
        entry_key="once",
        step=live.draft[0]["id"],
        due_at=timezone.now(),
    )
    return world


def _pages(world: World) -> dict[str, str]:
    extras = world.extras
    return {
        "dashboard": reverse("dashboard"),
        "lists": reverse("lists"),
        "list_detail": reverse("list_detail", args=[extras["long_list"].pk]),
        "contacts": reverse("contacts"),
        "contact_detail": reverse("contact_detail", args=[extras["consenting"].pk]),
        "campaigns": reverse("campaigns"),
        "campaign_editor": reverse("campaign_detail", args=[extras["campaign"].pk]),
        "campaign_sent": reverse("campaign_detail", args=[extras["story"].campaign.pk]),
        # previewed as a contact, with the search's results open
        "campaign_preview_as": reverse("campaign_detail", args=[extras["campaign"].pk])
        + f"?contact={extras['consenting'].pk}&q=a",
        "report": reverse("campaign_report", args=[extras["story"].campaign.pk]),
        "imports": reverse("imports"),
        "import_mapping": reverse("import_detail", args=[extras["mailchimp"].pk]),
        "attributes": reverse("attributes"),
        "suppressions": reverse("suppressions"),
        "settings": reverse("account_settings"),
        "members": reverse("members"),
        "api_keys": reverse("api_keys"),
        "security": reverse("security"),
        "domains": reverse("domains"),
        "domain_detail": reverse("domain_detail", args=[extras["domain"].pk]),
        "domain_readiness": reverse("domain_readiness", args=[extras["domain"].pk]),
        "segments": reverse("segments"),
        "segment_builder": reverse("segment_detail", args=[extras["wide_segment"].pk]),
        "campaign_new": reverse("campaign_new"),
        "templates": reverse("campaign_templates"),
        "archive": reverse("archive_index", args=[archive_key(world.account_a)]),
        "archive_campaign": reverse(
            "archive_campaign", args=[archive_key(world.account_a), extras["story"].campaign.pk]
        ),
        "blocks": reverse("campaign_blocks", args=[extras["blocks"].pk]),
        "blocks_button": reverse("campaign_blocks", args=[extras["blocks"].pk])
        + f"?block={extras['blocks'].blocks['blocks'][3]['columns'][0][2]['id']}&width=mobile",
        "blocks_design": reverse("campaign_blocks", args=[extras["blocks"].pk]) + "?block=",
        "blocks_variant": reverse("campaign_blocks", args=[extras["blocks"].pk])
        + f"?variant=1&block={extras['blocks'].blocks['blocks'][0]['id']}",
        "blocks_campaign": reverse("campaign_detail", args=[extras["blocks"].pk]),
        "images": reverse("images"),
        "journeys": reverse("journeys"),
        "journey_new": reverse("journey_new"),
        "journey": reverse("journey_detail", args=[extras["winback"].pk]),
        # the condition's card open on its form
        "journey_step": reverse(
            "journey_step_edit", args=[extras["winback"].pk, extras["winback"].draft[2]["id"]]
        ),
        "journey_report": reverse("journey_report", args=[extras["winback"].pk]),
        "journey_contacts": reverse("journey_contacts", args=[extras["journey"].pk]),
    }


def _log_in(page: Page, base_url: str, world: World) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("[name=login]").fill(world.alice.email)
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("nav.nav")).to_be_attached()


def _overflow(page: Page) -> int:
    """How far the page reaches past the right edge of the window, in pixels."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _wide_elements(page: Page) -> list[str]:
    """The elements that stick out on the right: to say which, when one does."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 8)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))"""
    )


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_it_fits_every_main_page_in_the_window(
    page: Page, live_server, filled_world: World, viewport: dict
) -> None:
    # given alice, logged in, on a screen of this width
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size(viewport)
    _log_in(page, live_server.url, filled_world)

    problems = []
    for name, path in _pages(filled_world).items():
        # when she opens each main page
        response = page.goto(live_server.url + path)
        assert response is not None
        assert response.ok, f"{name}: {response.status}"
        page.screenshot(path=SHOTS / f"{viewport['width']}-{name}.png", full_page=True)

        # then nothing scrolls sideways
        if _overflow(page) > 0:
            problems.append(f"{name}: {_overflow(page)} px too wide, {_wide_elements(page)}")
        if viewport is LAPTOP and page.locator("nav.nav").count():
            # and the navigation (of the pages that have it) holds on one row
            tops = page.evaluate(
                "[...document.querySelectorAll('nav.nav a')].map(a => a.offsetTop)"
            )
            if len(set(tops)) != 1:
                problems.append(f"{name}: the navigation takes {len(set(tops))} rows")
            # with room for every link, none of them under the account menu
            if page.evaluate(
                "(n => n.scrollWidth > n.clientWidth)(document.querySelector('nav.nav'))"
            ):
                problems.append(f"{name}: the navigation links overflow their row")
    assert problems == [], "\n".join(problems)


def test_it_folds_the_navigation_into_a_menu_on_a_phone(
    page: Page, live_server, filled_world: World
) -> None:
    # given alice on a phone
    page.set_viewport_size(PHONE)
    _log_in(page, live_server.url, filled_world)
    page.goto(live_server.url + reverse("dashboard"))
    nav = page.get_by_role("navigation", name="Main")

    # then the links are folded away behind a menu button
    expect(nav.get_by_role("link", name="Contacts")).to_be_hidden()

    # when she opens the menu, they are there, one under the other
    page.get_by_text("Menu", exact=True).click()
    expect(nav.get_by_role("link", name="Contacts")).to_be_visible()
    tops = page.evaluate("[...document.querySelectorAll('nav.nav a')].map(a => a.offsetTop)")
    assert len(set(tops)) == len(tops) > 4
    assert _overflow(page) <= 0

    # and following one goes there
    nav.get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()


def test_it_scrolls_a_wide_table_inside_itself_on_a_phone(
    page: Page, live_server, filled_world: World
) -> None:
    # given alice on a phone, on a list whose contacts have long addresses
    page.set_viewport_size(PHONE)
    _log_in(page, live_server.url, filled_world)
    page.goto(live_server.url + reverse("contacts"))

    # then the table is in a box that scrolls sideways, and the page does not
    box = page.locator("#contacts-table .table-wrap")
    assert box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")
    assert _overflow(page) <= 0


def test_it_breaks_the_consent_wording_between_words(
    page: Page, live_server, filled_world: World
) -> None:
    # given alice on a phone, on the page of a contact who gave consent with a wording
    page.set_viewport_size(PHONE)
    _log_in(page, live_server.url, filled_world)
    page.goto(
        live_server.url + reverse("contact_detail", args=[filled_world.extras["consenting"].pk])
    )
    wording = page.get_by_text(WORDING)
    expect(wording).to_be_visible()

    # then every line of it ends at the end of a word
    lines = wording.evaluate(
        """el => {
            const text = el.firstChild, range = document.createRange(), lines = [];
            let top = null, line = '';
            for (let i = 0; i < text.length; i++) {
                range.setStart(text, i); range.setEnd(text, i + 1);
                const rect = range.getClientRects()[0];
                if (rect && top !== null && rect.top > top + 2) { lines.push(line); line = ''; }
                if (rect) top = rect.top;
                line += text.data[i];
            }
            lines.push(line);
            return lines;
        }"""
    )
    assert len(lines) > 1
    assert all(line.endswith(" ") for line in lines[:-1]), lines


@pytest.mark.parametrize("name", ["import_mapping", "attributes"])
def test_it_stacks_the_rows_of_a_table_to_act_on_into_cards_on_a_phone(
    page: Page, live_server, filled_world: World, name: str
) -> None:
    # given alice on a phone, on the mapping of a wide file or the attributes
    page.set_viewport_size(PHONE)
    _log_in(page, live_server.url, filled_world)
    page.goto(live_server.url + _pages(filled_world)[name])
    table = page.locator("table.stack")

    # then each row is a card, the table's box does not scroll sideways, and every
    # choice and action is within the window
    assert table.locator("tbody tr").first.evaluate("el => getComputedStyle(el).display") == (
        "block"
    )
    box = page.locator(".table-wrap").filter(has=table)
    assert box.evaluate("el => el.scrollWidth <= el.clientWidth")
    controls = table.locator("select, td.actions a")
    assert controls.count() > 3
    rights = controls.evaluate_all("els => els.map(el => el.getBoundingClientRect().right)")
    assert max(rights) <= PHONE["width"]
    assert _overflow(page) <= 0

    # and on a laptop it is a table again
    page.set_viewport_size(LAPTOP)
    assert table.locator("tbody tr").first.evaluate("el => getComputedStyle(el).display") == (
        "table-row"
    )
