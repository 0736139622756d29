"""Blocks in a real browser: the message made from them fits a phone and a desktop mail
window, its columns stacked on the phone; and a newsletter built from a starter through
the editor, as a new customer would."""

from __future__ import annotations

import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from campaigns import services
from campaigns.composing import compose
from campaigns.models import Campaign
from campaigns.selectors import recipient_values
from tests.browser.htmx import settled
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.usefixtures("transactional_db")

WIDE_IMAGE = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='1200' "
    "height='400'><rect width='1200' height='400' fill='%23889'/></svg>"
)


def _document() -> dict:
    long_word = "Supercalifragilisticexpialidocious" * 3
    return {
        "blocks": [
            {"type": "heading", "text": f"Our autumn news {long_word}"},
            {"type": "image", "src": "https://cdn.example/wide.png", "alt": "A wide picture"},
            {
                "type": "columns",
                "columns": [
                    [{"type": "text", "html": f"<p>Left {long_word}</p>"}],
                    [{"type": "text", "html": "<p>Middle</p>"}],
                    [
                        {
                            "type": "button",
                            "label": "A rather long call to action",
                            "href": "https://a.example",
                        }
                    ],
                ],
            },
            {
                "type": "social",
                "links": [
                    {"network": n, "href": "https://a.example"}
                    for n in ("facebook", "instagram", "linkedin", "youtube", "x")
                ],
            },
            {"type": "footer", "text": "1 Main Street, Springfield"},
        ]
    }


@pytest.mark.parametrize("width", [390, 800])
def test_the_message_fits_the_window_and_stacks_its_columns_on_a_phone(page: Page, width):
    # given the HTML a recipient gets from blocks with three columns and long words
    owner = make_user("owner@shop.example")
    account = make_account(owner, "Shop")
    campaign = services.campaign_create(
        account=account, actor=owner, name="Autumn", blocks=_document()
    )
    html = compose(campaign).render(recipient_values(campaign, None))[1]
    # (the picture itself, 1200 px wide, without fetching anything)
    html = html.replace("https://cdn.example/wide.png", WIDE_IMAGE)

    # when a mail window of this width shows it
    page.set_viewport_size({"width": width, "height": 900})
    page.set_content(html)

    # then nothing scrolls sideways
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px too wide at {width} px"
    # and the columns stack on a phone, side by side on a desktop
    left = page.get_by_text("Left Supercalifragilistic", exact=False).bounding_box()
    middle = page.get_by_text("Middle", exact=True).bounding_box()
    assert left is not None
    assert middle is not None
    if width < 480:
        assert middle["y"] >= left["y"] + left["height"]
    else:
        assert abs(middle["y"] - left["y"]) < 2
        assert middle["x"] > left["x"] + left["width"]


def test_a_newsletter_is_built_from_a_starter_in_the_editor(
    page: Page, live_server, tmp_path, settings
):
    # given a new customer, logged in, on a server whose images are at its own address
    settings.MISSIVE_BASE_URL = live_server.url
    owner = make_user("owner@shop.example")
    make_account(owner, "Shop", postal_address="1 Main Street")
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@shop.example")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # when they start a campaign from the Newsletter starter of the gallery
    page.goto(live_server.url + "/campaigns/new/")
    page.get_by_label("Name").fill("October news")
    page.get_by_test_id("starter-blocks-newsletter").click()
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_role("heading", name="Content")).to_be_visible()

    # and upload a picture from disk into the image block, then describe it
    page.get_by_role("link", name="Image No image chosen").click()
    settled(page)
    picture = tmp_path / "shop-front.png"
    PILImage.new("RGB", (900, 300), (30, 90, 160)).save(picture)
    page.get_by_label("Upload an image from your computer").set_input_files(picture)
    page.get_by_role("button", name="Upload and use it").click()
    expect(page.get_by_text("“shop-front.png” uploaded and put in the block.")).to_be_visible()
    page.get_by_label("Alternative text").fill("Our shop front")
    page.get_by_role("button", name="Save block").click()
    settled(page)

    # and add a button after it
    page.get_by_label("Add a block after the selected one").select_option("button")
    page.get_by_role("button", name="Add block").click()
    settled(page)
    page.get_by_label("Label", exact=True).fill("Visit us")
    page.get_by_label("Link", exact=True).fill("https://shop.example/visit")
    page.get_by_role("button", name="Save block").click()
    settled(page)

    # then the preview shows both, and the campaign keeps them in that order
    frame = page.frame_locator("#preview-frame")
    shown = frame.get_by_role("img", name="Our shop front")
    expect(shown).to_be_visible()
    # (the picture itself, served from the library's public address)
    expect(shown).to_have_js_property("naturalWidth", 900)
    expect(frame.get_by_role("link", name="Visit us")).to_be_visible()
    campaign = Campaign.objects.get(name="October news")
    kinds = [b["type"] for b in campaign.blocks["blocks"]]
    assert kinds[2:4] == ["image", "button"], kinds
    assert campaign.html.index("Our shop front") < campaign.html.index("Visit us")

    # and the mobile preview is a phone's width
    page.get_by_role("link", name="Mobile").click()
    box = page.locator("#preview-frame").bounding_box()
    assert box is not None
    assert box["width"] <= 375


def test_the_text_toolbar_makes_bold_and_links(page: Page, live_server):
    # given a campaign with one text block, its panel open
    owner = make_user("owner@shop.example")
    account = make_account(owner, "Shop", postal_address="1 Main Street")
    campaign = services.campaign_create(
        account=account,
        actor=owner,
        name="Words",
        blocks={"blocks": [{"type": "text", "html": "<p>Big news today</p>"}]},
    )
    block = campaign.blocks["blocks"][0]["id"]
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@shop.example")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/blocks/?block={block}")

    # when "news" is chosen in the text as it looks and made bold, and "today" a link
    box = page.get_by_role("textbox", name="Text", exact=True)
    expect(box).to_have_text("Big news today")
    expect(page.locator("#f-html")).to_be_hidden()
    select = """(el, word) => {
        const node = el.querySelector("p").firstChild;
        const range = document.createRange();
        const at = node.textContent.indexOf(word);
        range.setStart(node, at);
        range.setEnd(node, at + word.length);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
    }"""
    box.evaluate(select, "news")
    page.get_by_role("button", name="Bold").click()
    box.evaluate(
        """(el) => {
            const node = el.querySelector("p").lastChild;
            const range = document.createRange();
            range.setStart(node, node.textContent.indexOf("today"));
            range.setEnd(node, node.textContent.length);
            window.getSelection().removeAllRanges();
            window.getSelection().addRange(range);
        }"""
    )
    page.once("dialog", lambda dialog: dialog.accept("https://shop.example/today"))
    page.get_by_role("button", name="Link", exact=True).click()
    # and a line is typed at the end, then a bulleted list
    box.press("End")
    box.press("Control+End")
    box.press("Enter")
    box.type("First point")
    page.get_by_role("button", name="Bulleted list").click()
    expect(box.locator("b, strong")).to_have_text("news")

    # and the HTML shows the tags it makes
    page.get_by_role("button", name="HTML", exact=True).click()
    code = page.locator("#f-html").input_value()
    assert "<strong>news</strong>" in code
    assert '<a href="https://shop.example/today">today</a>' in code
    assert "<ul><li>First point" in code
    page.get_by_role("button", name="HTML", exact=True).click()
    page.get_by_role("button", name="Save block").click()
    settled(page)

    # then the message has them
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("strong", has_text="news")).to_be_visible()
    expect(frame.get_by_role("link", name="today")).to_have_attribute(
        "href", "https://shop.example/today"
    )
    expect(frame.locator("li", has_text="First point")).to_be_visible()
