"""The block editor: documents checked part by part, written as MJML and rendered to the
responsive HTML a campaign stores; the editor's pages and the API; and what a real
worker delivers from blocks, compared with the preview."""

from __future__ import annotations

import email
import email.policy
import io
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from campaigns import blocks, services
from campaigns.models import Campaign, Editor, Link, Template
from campaigns.starters import BLOCK_STARTERS
from campaigns.states import State
from media import services as media_services
from media.models import Image
from tests.campaigns.test_fidelity import as_previewed, letters, preview  # noqa: F401
from tests.workers import BACKEND_NAME

IMAGE = "https://cdn.example/pictures/shop.png"


def newsletter() -> dict:
    """A document with a bit of everything, merge tags included."""
    return {
        "settings": {"background": "#eeeeee", "font": "georgia"},
        "blocks": [
            {"type": "heading", "text": 'Hello {{ first_name|default:"friend" }}'},
            {"type": "text", "html": "<p>From <strong>{{ attributes.city }}</strong>.</p>"},
            {"type": "image", "src": IMAGE, "alt": "Our shop", "href": "https://shop.example/"},
            {
                "type": "columns",
                "columns": [
                    [{"type": "text", "html": "Left story"}],
                    [{"type": "button", "label": "Buy", "href": "https://shop.example/buy"}],
                ],
            },
            {"type": "social", "links": [{"network": "instagram", "href": "https://ig.example"}]},
            {"type": "footer", "text": "{{ account_name }}"},
        ],
    }


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def _elements(html: str) -> tuple[set[str], list[str]]:
    """The elements of a document, and the event handlers any of them has."""
    parser = _Elements()
    parser.feed(html)
    return parser.tags, parser.handlers


# -- checking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "path", "words"),
    [
        ({"type": "video"}, "blocks.0.type", "Choose a block type"),
        (
            {"type": "button", "label": "Go", "href": "javascript:alert(1)"},
            "blocks.0.href",
            "https://",
        ),
        ({"type": "button", "label": "Go", "href": "https://"}, "blocks.0.href", "full link"),
        ({"type": "heading", "text": "Hi", "color": "red"}, "blocks.0.color", "#rrggbb"),
        ({"type": "heading", "text": "x" * 301}, "blocks.0.text", "300 characters"),
        ({"type": "heading", "text": "  "}, "blocks.0.text", "cannot be empty"),
        ({"type": "heading", "text": "Hi", "onclick": "x"}, "blocks.0.onclick", "has no"),
        ({"type": "spacer", "height": 2.5}, "blocks.0.height", "whole number"),
        ({"type": "spacer", "height": 900}, "blocks.0.height", "from 4 to 200"),
        ({"type": "image", "src": "data:image/png;base64,AAAA"}, "blocks.0.src", "https://"),
        ({"type": "image", "src": "javascript:x"}, "blocks.0.src", "https://"),
        ({"type": "columns", "columns": [[]]}, "blocks.0.columns", "two or three"),
        (
            {"type": "columns", "columns": [[{"type": "columns"}], []]},
            "blocks.0.columns.0.0.type",
            "Choose a block type",
        ),
        (
            {"type": "social", "links": [{"network": "myspace", "href": "https://a.example"}]},
            "blocks.0.links.0.network",
            "Choose one of",
        ),
    ],
)
def test_it_names_the_part_at_fault(block, path, words):
    with pytest.raises(blocks.BlocksInvalid) as refused:
        blocks.clean_document({"blocks": [block]})
    assert path in refused.value.errors, refused.value.errors
    assert words in refused.value.errors[path]


def test_it_refuses_a_document_that_is_not_one():
    for raw in (None, [], "blocks", {"blocks": "x"}, {"settings": [], "blocks": []}):
        with pytest.raises(blocks.BlocksInvalid):
            blocks.clean_document(raw)
    with pytest.raises(blocks.BlocksInvalid) as refused:
        blocks.clean_document({"blocks": [{"type": "spacer"}] * (blocks.MAX_BLOCKS + 1)})
    assert "up to 100 blocks" in refused.value.errors["blocks"]


@pytest.mark.parametrize("font", [{}, ["arial"]])
def test_a_choice_given_as_an_object_or_a_list_is_refused_not_looked_up(font):
    with pytest.raises(blocks.BlocksInvalid) as refused:
        blocks.clean_document({"settings": {"font": font}, "blocks": []})
    assert "Choose one of" in refused.value.errors["settings.font"]


def test_every_starter_is_a_valid_document_that_renders():
    for starter in BLOCK_STARTERS:
        document = blocks.clean_document(starter.blocks)
        html = blocks.to_html(document)
        assert html.startswith("<!doctype html>"), starter.key


# -- writing -------------------------------------------------------------------------------------


def test_nothing_typed_escapes_its_place(db):
    # given text, labels, alt text and rich text written to break out of their places
    hostile = {
        "blocks": [
            {"type": "heading", "text": "</mj-text><mj-raw><script>alert(1)</script></mj-raw>"},
            {
                "type": "image",
                "src": "https://cdn.example/a.png?x=1&y=2",
                "alt": '" onerror="alert(1)',
            },
            {"type": "button", "label": "<img src=x onerror=alert(1)>", "href": "https://a.b/"},
            {"type": "text", "html": '<p onclick="x()">Hi<script>alert(2)</script></p>'},
            {"type": "quote", "text": "<b>bold?</b>", "cite": "<i>me</i>"},
        ]
    }

    # when it is checked and rendered
    html = blocks.to_html(blocks.clean_document(hostile))

    # then every character stayed text, and nothing runs
    tags, handlers = _elements(html)
    assert "script" not in tags
    assert not handlers
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'alt="&quot; onerror=&quot;alert(1)"' in html
    assert 'src="https://cdn.example/a.png?x=1&amp;y=2"' in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html


def test_plain_text_becomes_paragraphs_and_merge_tags_stay_as_typed():
    assert blocks.rich_text("One\ntwo\n\nThree & {{ first_name }}") == (
        "<p>One<br>two</p><p>Three &amp; {{ first_name }}</p>"
    )
    document = blocks.clean_document(newsletter())
    html = blocks.to_html(document)
    assert 'Hello {{ first_name|default:"friend" }}' in html
    assert "<strong>{{ attributes.city }}</strong>" in html
    assert "Georgia" in html  # the font of the settings
    # columns stack below 480 px, side by side above
    assert "mj-column-per-50" in html
    assert "min-width:480px" in html


def test_editing_moves_copies_and_removes_by_id():
    document = blocks.clean_document(newsletter())
    first, second = (b["id"] for b in document["blocks"][:2])

    moved = blocks.move(document, second, -1)
    assert [b["id"] for b in moved["blocks"][:2]] == [second, first]
    assert blocks.move(moved, second, -1) == moved  # the first stays first

    copied, copy = blocks.duplicate(document, first)
    assert copied["blocks"][1] == {**document["blocks"][0], "id": copy["id"]}
    assert copy["id"] != first

    columns = document["blocks"][3]["id"]
    added, block = blocks.add(document, "image", column=(columns, 1))
    assert added["blocks"][3]["columns"][1][-1] == block
    with pytest.raises(KeyError):
        blocks.add(document, "columns", column=(columns, 0))  # no columns in a column

    three = blocks.change(document, columns, {"count": 3, "background": "", "padding": 8})
    assert len(three["blocks"][3]["columns"]) == 3
    two = blocks.change(three, columns, {"count": 2, "background": "", "padding": 8})
    assert len(two["blocks"][3]["columns"]) == 2

    removed = blocks.remove(document, first)
    assert first not in [b["id"] for b in removed["blocks"]]
    assert document["blocks"][0]["id"] == first  # the original is untouched


# -- the campaign ----------------------------------------------------------------------------------


def test_a_campaign_of_blocks_stores_the_html_made_from_them(world):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Blocks", blocks=newsletter()
    )

    assert campaign.editor == Editor.BLOCKS
    assert "mj-column-per-50" in campaign.html
    # with the tables that put the columns side by side in Outlook for Windows
    assert '<!--[if mso | IE]><td style="vertical-align:top;width:300px;"' in campaign.html
    assert 'Hello {{ first_name|default:"friend" }}' in campaign.html
    assert "Left story" in campaign.text  # the text part is made from it
    assert [link.url for link in campaign.links.all()] == [
        "https://shop.example/",
        "https://shop.example/buy",
        "https://ig.example",
    ]

    # and HTML given beside blocks is not what is kept
    updated = services.campaign_update(
        campaign=campaign, actor=world.alice, html="<p>typed over</p>"
    )
    assert "typed over" not in updated.html
    # switching to HTML keeps the code made from the blocks to go on from
    as_html = services.campaign_update(campaign=campaign, actor=world.alice, editor=Editor.HTML)
    assert as_html.editor == Editor.HTML
    assert "Left story" in as_html.html
    edited = services.campaign_update(campaign=as_html, actor=world.alice, html="<p>Mine</p>")
    assert edited.html == "<p>Mine</p>"
    assert edited.blocks == as_html.blocks


def test_a_template_keeps_the_blocks(world, alice_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Blocks", blocks=newsletter()
    )
    template = services.template_save(campaign=campaign, actor=world.alice, name="Mine")
    again = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Again", template=template
    )
    assert again.editor == Editor.BLOCKS
    assert again.blocks == campaign.blocks
    page = alice_client.get("/campaigns/templates/").content.decode()
    assert f'src="/campaigns/templates/{template.pk}/preview/"' in page
    assert "Blocks" in page
    shown = alice_client.get(f"/api/v1/templates/{template.pk}/").json()
    assert shown["editor"] == "blocks"
    assert shown["blocks"] == campaign.blocks


# -- the pages -----------------------------------------------------------------------------------


def _editor(client, campaign: Campaign, **post):
    return client.post(reverse("campaign_blocks_change", args=[campaign.pk]), post)


def test_the_editor_adds_changes_moves_and_removes_blocks(world, alice_client):
    # given a draft from the newsletter starter, made through the new-campaign page
    created = alice_client.post(
        "/campaigns/new/", {"name": "May news", "start_from": "starter:blocks-newsletter"}
    )
    campaign = Campaign.objects.get(account=world.account_a, name="May news")
    assert created.url == reverse("campaign_blocks", args=[campaign.pk])
    page = alice_client.get(created.url)
    assert page.status_code == 200
    assert page.content.decode().count('data-testid="block-row"') == 13

    # when a button is added at the end, given a link and a colour, and moved up
    added = _editor(alice_client, campaign, action="add", kind="button")
    campaign.refresh_from_db()
    button = campaign.blocks["blocks"][-1]
    assert added.status_code == 302
    assert f"block={button['id']}" in added.url
    saved = _editor(
        alice_client,
        campaign,
        action="save",
        block=button["id"],
        **{
            "f-label": "Shop now",
            "f-href": "https://shop.example/now",
            "f-background": "#112233",
            "f-color": "#ffffff",
            "f-radius": "4",
            "f-align": "center",
            "f-padding": "10",
        },
    )
    assert saved.status_code == 302
    _editor(alice_client, campaign, action="up", block=button["id"])

    # then the stored HTML has it, before the footer
    campaign.refresh_from_db()
    assert campaign.blocks["blocks"][-2]["id"] == button["id"]
    assert "Shop now" in campaign.html
    assert "#112233" in campaign.html
    assert campaign.html.index("Shop now") < campaign.html.rindex("{{ account_name }}")
    assert Link.objects.filter(campaign=campaign, url="https://shop.example/now").exists()

    # and a bad link is refused naming it, the block kept as it was
    refused = _editor(
        alice_client,
        campaign,
        action="save",
        block=button["id"],
        **{"f-label": "Shop", "f-href": "javascript:alert(1)", "f-background": "#112233"},
    )
    assert refused.status_code == 400
    assert "full link starting with https://" in refused.content.decode()
    campaign.refresh_from_db()
    assert "javascript" not in campaign.html

    # and a duplicate and a removal
    _editor(alice_client, campaign, action="duplicate", block=button["id"])
    campaign.refresh_from_db()
    assert campaign.html.count("Shop now") == 2
    confirm = alice_client.get(f"{created.url}?confirm=remove&block={button['id']}")
    assert "Remove this button?" in confirm.content.decode()
    _editor(alice_client, campaign, action="remove", block=button["id"])
    campaign.refresh_from_db()
    assert campaign.html.count("Shop now") == 1

    # and a block that is gone says so instead of failing
    gone = _editor(alice_client, campaign, action="save", block="zzzzzzzz")
    assert gone.status_code == 302


# What the image panel posts beside the address and the alternative text.
IMAGE_FIELDS = {
    "f-alt": "A picture",
    "f-href": "",
    "f-width": "0",
    "f-align": "center",
    "f-padding": "16",
}


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


def test_an_image_block_takes_an_upload_or_a_library_image(world, alice_client, client):
    # given a draft from the newsletter starter, whose image block has no picture yet
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Pics", starter="blocks-newsletter"
    )
    block = next(b for b in campaign.blocks["blocks"] if b["type"] == "image")
    upload_url = reverse("campaign_blocks_upload", args=[campaign.pk])

    # when a 1600 px wide PNG is uploaded from the block's panel
    picture = SimpleUploadedFile("shop.png", _png(1600, 400), content_type="image/png")
    answered = alice_client.post(upload_url, {"block": block["id"], "file": picture})

    # then it is in the library, and the block shows its 1200 px copy
    assert answered.status_code == 302
    image = Image.objects.get(account=world.account_a, name="shop.png")
    campaign.refresh_from_db()
    chosen = blocks.find(campaign.blocks, block["id"])
    assert chosen["src"] == image.url("1200")
    assert f'src="{image.url("1200")}"' in campaign.html

    # and an SVG is refused naming why, the block unchanged
    drawing = SimpleUploadedFile(
        "logo.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/png"
    )
    alice_client.post(upload_url, {"block": block["id"], "file": drawing})
    shown = alice_client.get(reverse("campaign_blocks", args=[campaign.pk])).content.decode()
    assert "SVG" in shown
    campaign.refresh_from_db()
    assert blocks.find(campaign.blocks, block["id"])["src"] == image.url("1200")

    # and the panel offers the library; a choice there replaces the address
    small = media_services.image_upload(
        account=world.account_a,
        actor=world.alice,
        file=SimpleUploadedFile("small.png", _png(300, 100)),
    )
    panel = alice_client.get(reverse("campaign_blocks", args=[campaign.pk]), {"block": block["id"]})
    assert "small.png (300 x 100 px)" in panel.content.decode()
    _editor(
        alice_client,
        campaign,
        action="save",
        block=block["id"],
        **{**IMAGE_FIELDS, "f-src": "", "f-image": str(small.pk)},
    )
    campaign.refresh_from_db()
    assert blocks.find(campaign.blocks, block["id"])["src"] == small.url()

    # but another account's image is not offered nor taken
    client.force_login(world.charlie, backend="allauth.account.auth_backends.AuthenticationBackend")
    theirs = media_services.image_upload(
        account=world.account_b,
        actor=world.charlie,
        file=SimpleUploadedFile("theirs.png", _png(50, 50)),
    )
    _editor(
        alice_client,
        campaign,
        action="save",
        block=block["id"],
        **{**IMAGE_FIELDS, "f-src": "https://cdn.example/mine.png", "f-image": str(theirs.pk)},
    )
    campaign.refresh_from_db()
    assert blocks.find(campaign.blocks, block["id"])["src"] == "https://cdn.example/mine.png"


def test_the_editor_swaps_itself_in_place_with_htmx(world, alice_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Blocks", blocks=newsletter()
    )
    swapped = alice_client.post(
        reverse("campaign_blocks_change", args=[campaign.pk]),
        {"action": "add", "kind": "divider"},
        HTTP_HX_REQUEST="true",
    )
    assert swapped.status_code == 200
    body = swapped.content.decode()
    assert "<html" not in body
    assert "blocks-preview" in body
    assert "<h2>Divider</h2>" in body  # the new block is open in the panel


def test_a_viewer_sees_the_blocks_and_cannot_change_them(world, vera_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Blocks", blocks=newsletter()
    )
    page = vera_client.get(reverse("campaign_blocks", args=[campaign.pk]))
    assert page.status_code == 200
    assert "Add block" not in page.content.decode()
    refused = vera_client.post(
        reverse("campaign_blocks_change", args=[campaign.pk]), {"action": "remove"}
    )
    assert refused.status_code == 403


def test_another_account_never_reaches_the_blocks(world, client):
    client.force_login(world.charlie, backend="allauth.account.auth_backends.AuthenticationBackend")
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Blocks", blocks=newsletter()
    )
    assert client.get(reverse("campaign_blocks", args=[campaign.pk])).status_code == 404
    posted = client.post(
        reverse("campaign_blocks_change", args=[campaign.pk]), {"action": "add", "kind": "text"}
    )
    assert posted.status_code == 404
    template = Template.objects.create(account=world.account_a, name="T", html="<p>x</p>")
    assert client.get(reverse("template_preview", args=[template.pk])).status_code == 404


def test_switching_an_html_campaign_to_blocks_asks_first(world, alice_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Code", html="<p>Hand made</p>"
    )
    detail = alice_client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert "Switch to the block editor…" in detail
    asked = alice_client.get(reverse("campaign_editor", args=[campaign.pk]) + "?to=blocks")
    assert "Replace the HTML with blocks?" in asked.content.decode()
    switched = alice_client.post(
        reverse("campaign_editor", args=[campaign.pk]), {"editor": "blocks"}
    )
    assert switched.url == reverse("campaign_blocks", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.editor == Editor.BLOCKS
    assert campaign.blocks["blocks"] == []


def test_the_gallery_shows_each_starter_with_its_preview(world, alice_client):
    page = alice_client.get("/campaigns/new/").content.decode()
    for starter in BLOCK_STARTERS:
        assert f'data-testid="starter-{starter.key}"' in page
        framed = alice_client.get(reverse("starter_preview", args=[starter.key]))
        assert framed.status_code == 200
        assert "sandbox" in framed["Content-Security-Policy"]
        assert "{{" not in framed.content.decode()  # rendered with sample values
    assert alice_client.get("/campaigns/starters/nope/preview/").status_code == 404


# -- the API -------------------------------------------------------------------------------------


def test_the_api_writes_blocks_and_names_the_part_at_fault(world, alice_client):
    created = alice_client.post(
        "/api/v1/campaigns/", {"name": "API blocks", "blocks": newsletter()}, "application/json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["editor"] == "blocks"
    assert "mj-column-per-50" in body["html"]
    assert body["blocks"]["blocks"][0]["type"] == "heading"

    refused = alice_client.patch(
        f"/api/v1/campaigns/{body['id']}/",
        {"blocks": {"blocks": [{"type": "button", "label": "x", "href": "ftp://x"}]}},
        "application/json",
    )
    assert refused.status_code == 400
    assert "blocks.0.href" in str(refused.json())

    from_starter = alice_client.post(
        "/api/v1/campaigns/",
        {"name": "From a starter", "starter": "blocks-event"},
        "application/json",
    )
    assert from_starter.json()["editor"] == "blocks"
    assert "Save my seat" in from_starter.json()["html"]


# -- what recipients get -------------------------------------------------------------------------


def test_a_worker_delivers_the_blocks_as_the_preview_shows_them(letters, workers, smtp_sink):  # noqa: F811
    # given a campaign of blocks with merge tags, an image, columns and a button
    account, contact_list, people, _owner_client = letters
    account.sending_backend = BACKEND_NAME
    account.save()
    workers.start()
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Blocks",
        subject="News",
        from_email="news@letters.example",
        blocks=newsletter(),
        lists=[contact_list],
    )

    # when a worker sends it over SMTP
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status != State.SENDING,
        timeout=60,
        what="the campaign to be sent",
    )

    # then each message is its recipient's preview, well formed, with their values
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert len(smtp_sink.messages) == len(people)
    for received in smtp_sink.messages:
        message = email.message_from_bytes(received.raw, policy=email.policy.default)
        contact = next(p for p in people if p.email == received.rcpt_tos[0])
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert as_previewed(html, campaign) == preview(campaign, contact)[1]
        assert max(len(line) for line in received.raw.split(b"\r\n")) <= 998
        assert message.get_body(("plain",)).get_content().strip()
    ann = next(m for m in smtp_sink.messages if m.rcpt_tos[0] == "ann@example.net")
    ann_html = email.message_from_bytes(ann.raw, policy=email.policy.default)
    content = ann_html.get_body(("html",)).get_content()
    assert "Hello Ann" in content
    assert "<strong>Lisbon</strong>" in content
    assert f'src="{IMAGE}"' in content
    assert "<!--[if mso | IE]><table" in content  # Outlook's columns arrive too
    assert 'alt="Our shop"' in content
    # the button's link goes through a signed redirect (as_previewed maps it back above)
    assert "http://testserver/t/c/" in content
    assert "https://shop.example/buy" not in content
    workers.assert_no_tracebacks()
