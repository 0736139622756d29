"""What reaches recipients is what the editor's preview shows: merge values (attributes
included), the preheader, the footer, and headers that every mail client reads the same
way (RFC 2047 encoded-words, RFC 2919 List-Id)."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.test import Client

from campaigns import selectors, sending, services, tokens
from campaigns.composing import compose
from campaigns.messages import MessageFactory, Recipient
from campaigns.models import Campaign, Link
from campaigns.states import State
from contacts import services as contact_services
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME

SENDER = "news@letters.example"
BASE = "http://testserver"
SUBJECT = '{{ first_name|default:"Friend" }}, the news from {{ attributes.city|default:"home" }}'
PREHEADER = 'Hi {{ first_name|default:"there" }}: {{ attributes.points|default:"no" }} points'
HTML = (
    "<html><head><style>h1 { color: #123456; }</style></head><body>"
    '<h1>Bonjour {{ first_name|default:"ami" }}</h1>'
    "<p>City: {{ attributes.city }}. Points: {{ attributes.points }}. "
    'Member since {{ attributes.joined|default:"today" }}.</p>'
    "{% if attributes.city %}<p>See you in {{ attributes.city|upper }}!</p>{% endif %}"
    '<p><a href="https://example.com/offer">The offer</a> and '
    '<a href="https://example.com/shop/{{ attributes.city }}">your shop</a>.</p>'
    "</body></html>"
)
# Encoded-words (RFC 2047) as they appear in a raw header.
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def raw_headers(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def unfolded(raw: bytes) -> list[str]:
    """The header lines of a raw message, each on one line."""
    return raw_headers(raw).decode("ascii").replace("\r\n ", " ").split("\r\n")


class _FirstText(HTMLParser):
    """The first text inside <body>, and the style of the element holding it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_body = False
        self.styles: list[str] = []
        self.text: str | None = None
        self.style: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.in_body = True
        elif self.in_body and self.text is None:
            self.styles.append(dict(attrs).get("style") or "")

    def handle_data(self, data: str) -> None:
        # Without the invisible filler that may follow a preheader.
        data = data.replace("\u200c", "").strip()
        if self.in_body and self.text is None and data:
            self.text = data
            self.style = self.styles[-1] if self.styles else ""


def first_text(html: str) -> tuple[str | None, str]:
    parser = _FirstText()
    parser.feed(html)
    return parser.text, parser.style


def preview(campaign: Campaign, contact: object) -> tuple[str, str, str]:
    """Subject, HTML and text as the editor's preview renders them for ``contact``."""
    return compose(campaign).render(selectors.recipient_values(campaign, contact))


def as_previewed(html: str, campaign: Campaign) -> str:
    """The HTML of a sent message with its per-recipient URLs as the preview has them:
    no pixel, tracked links back to their targets, the personal pages as "#"."""
    html = re.sub(rf'<img src="{BASE}/t/o/[^"]+"[^>]*>', "", html)

    def target(match: re.Match[str]) -> str:
        delivery_id, position = tokens.read_click_token(match.group(1))
        assert campaign.deliveries.filter(pk=delivery_id).exists()
        url = Link.objects.get(campaign=campaign, position=position).url
        # as the preview writes it inside href="…"
        return url.replace("&", "&amp;").replace('"', "&quot;")

    html = re.sub(rf"{BASE}/t/c/([^\"\s]+)", target, html)
    return re.sub(rf"{BASE}/(?:u|v)/[^\"\s]+", "#", html)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def letters(transactional_db):
    """An account with three typed attributes, a list and three subscribers: one with
    every attribute, one with none, one with a non-ASCII name and city."""
    owner = make_user("owner@letters.example")
    account = make_account(
        owner,
        "Letters Ltd",
        postal_address="1 Rue des Lettres\n69001 Lyon",
        default_from_email=SENDER,
    )
    verified_domain(account, SENDER.rpartition("@")[2])
    for name, kind in (("city", "text"), ("points", "number"), ("joined", "date")):
        contact_services.attribute_define(account=account, actor=owner, name=name, type=kind)
    contact_list = contact_services.list_create(account=account, actor=owner, name="Letters News")
    people = [
        contact_services.contact_create(
            account=account,
            actor=owner,
            email="ann@example.net",
            first_name="Ann",
            last_name="Archer",
            attributes={"city": "Lisbon", "points": "12.5", "joined": "2021-03-04"},
            lists=[contact_list],
        ),
        contact_services.contact_create(
            account=account, actor=owner, email="nobody@example.net", lists=[contact_list]
        ),
        contact_services.contact_create(
            account=account,
            actor=owner,
            email="zoe@example.net",
            first_name="Zoë",
            last_name="Ørsted",
            attributes={"city": "São Paulo", "points": "7"},
            lists=[contact_list],
        ),
    ]
    client = Client()
    client.force_login(owner, backend="allauth.account.auth_backends.AuthenticationBackend")
    return account, contact_list, people, client


def make_campaign(account, contact_list, **fields) -> Campaign:
    values = {
        "subject": SUBJECT,
        "preheader": PREHEADER,
        "from_email": SENDER,
        "html": HTML,
        "lists": [contact_list],
        **fields,
    }
    return services.campaign_create(account=account, actor=None, name="Fidelity", **values)


def send_in_process(campaign: Campaign) -> None:
    services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason


# -- the acceptance: a real worker, a real SMTP server, compared with the preview -------------


PREHEADERS = {
    "ann@example.net": "Hi Ann: 12.5 points",
    "nobody@example.net": "Hi there: no points",
    "zoe@example.net": "Hi Zoë: 7 points",
}


def test_it_delivers_what_the_preview_shows(letters, workers, smtp_sink):
    # given a campaign with attribute merge tags, defaults and a preheader, for three people
    account, contact_list, people, owner_client = letters
    account.sending_backend = BACKEND_NAME  # the test's SMTP server
    account.save()
    sink = smtp_sink
    workers.start()

    # when a worker sends it over SMTP
    campaign = make_campaign(account, contact_list)
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status != State.SENDING,
        timeout=60,
        what="the campaign to be sent",
    )

    # then each arrived message is the preview for its recipient, word for word
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == sorted(p.email for p in people)
    list_id = f"<list-{contact_list.pk}.account-{account.pk}.letters.example>"
    for received in sink.messages:
        message = parse(received.raw)
        contact = next(p for p in people if p.email == received.rcpt_tos[0])
        subject, _html, text = preview(campaign, contact)
        previewed = owner_client.get(f"/campaigns/{campaign.pk}/preview/?contact={contact.pk}")
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")

        assert message["Subject"] == subject
        # (lines end in CRLF on the wire)
        plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert re.sub(rf"{BASE}/(?:u|v)/\S+", "#", plain) == text
        assert as_previewed(html, campaign) == previewed.content.decode()
        # the preheader is the first text of the body, hidden
        preheader, style = first_text(html)
        assert preheader == PREHEADERS[contact.email]
        assert "display:none" in style.replace(" ", "")
        # List-Id: a quoted phrase, the id in clear
        assert message["List-Id"] == f'"Letters News" {list_id}'
        assert f'List-Id: "Letters News" {list_id}'.encode() in raw_headers(received.raw)

    by_email = {m.rcpt_tos[0]: parse(m.raw) for m in sink.messages}
    ann = by_email["ann@example.net"].get_body(("html",)).get_content()
    assert "City: Lisbon. Points: 12.5. Member since 2021-03-04." in ann
    assert "See you in LISBON!" in ann
    assert by_email["ann@example.net"]["Subject"] == "Ann, the news from Lisbon"
    nobody = by_email["nobody@example.net"]
    assert nobody["Subject"] == "Friend, the news from home"
    assert "Member since today." in nobody.get_body(("plain",)).get_content()
    zoe = by_email["zoe@example.net"]
    assert zoe["Subject"] == "Zoë, the news from São Paulo"
    assert "See you in SÃO PAULO!" in zoe.get_body(("html",)).get_content()
    workers.assert_no_tracebacks()


# -- 1. attribute merge tags ---------------------------------------------------------------------


def test_it_fills_attribute_merge_tags_in_sent_messages(letters):
    # given a campaign naming attributes, to a contact who has them
    account, contact_list, _people, _client = letters
    campaign = make_campaign(account, contact_list)

    # when it is sent (claimed by the raw statement of the pipeline)
    send_in_process(campaign)

    # then the attributes are in the subject, the HTML and the text
    ann = next(m for m in mail.outbox if m.to == ["ann@example.net"])
    assert ann.subject == "Ann, the news from Lisbon"
    assert "City: Lisbon. Points: 12.5. Member since 2021-03-04." in ann.alternatives[0][0]
    assert "City: Lisbon. Points: 12.5. Member since 2021-03-04." in ann.body
    assert "your shop (https://example.com/shop/Lisbon)" in ann.body


# -- 2. the preheader ----------------------------------------------------------------------------


def test_it_puts_the_preheader_first_in_the_body(letters):
    # given a campaign with a preheader naming merge tags
    account, contact_list, _people, _client = letters
    campaign = make_campaign(account, contact_list)

    # when it is sent
    send_in_process(campaign)

    # then the preheader, rendered, is the first text of each body, in a hidden span
    # followed by filler so that the body text does not show beside the subject
    ann = next(m for m in mail.outbox if m.to == ["ann@example.net"]).alternatives[0][0]
    text, style = first_text(ann)
    assert text == "Hi Ann: 12.5 points"
    for rule in ("display:none", "max-height:0", "opacity:0", "mso-hide:all"):
        assert rule in style.replace(" ", "")
    body_at = re.search(r"<body[^>]*>", ann).end()
    assert ann[body_at:].lstrip().startswith("<span")
    assert "&zwnj;&nbsp;" * 40 in ann
    nobody = next(m for m in mail.outbox if m.to == ["nobody@example.net"]).alternatives[0][0]
    assert first_text(nobody)[0] == "Hi there: no points"


def test_it_adds_no_preheader_span_without_a_preheader(letters):
    account, contact_list, _people, _client = letters
    campaign = make_campaign(account, contact_list, preheader="")

    _subject, html, _text = preview(campaign, None)

    assert first_text(html)[0] == "Bonjour Jane"
    assert "mso-hide" not in html


# -- 3. headers ----------------------------------------------------------------------------------

LONG_SUBJECT = ("Élégant café crème — n°1 ✓ Zoë " * 8)[:200]
FROM_NAME = "Équipe des Lettres Françaises — édition spéciale du printemps"
LIST_NAME = "Lettres d'été à São Paulo, édition longue des abonnés"


@pytest.fixture
def international(world):
    account = world.account_a
    newsletter = world.extras["list"]
    newsletter.name = LIST_NAME
    newsletter.save()
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="International",
        subject=LONG_SUBJECT,
        from_name=FROM_NAME,
        from_email="news@alpha.test",
        html="<p>Hi</p>",
        lists=[newsletter],
    )
    factory = MessageFactory(campaign, positions={})
    message = factory.build(
        Recipient(
            delivery_id=42, email="erin@alpha.test", first_name="", last_name="", attributes={}
        )
    )
    return factory, message, newsletter


def assert_well_encoded(head: bytes) -> None:
    for word in ENCODED_WORD.findall(head):
        assert len(word) <= 75, f"an encoded-word of {len(word)} characters: {word!r}"
    for line in head.split(b"\r\n"):
        assert len(line) <= 78, f"a header line of {len(line)} characters: {line!r}"


def test_it_writes_encoded_words_of_at_most_75_characters(international):
    # given a 200-character non-ASCII subject, a non-ASCII sender name and list name
    factory, message, _newsletter = international

    # when the message is written for SMTP, and for Django's backends
    smtp = factory.as_bytes(message)
    django = factory.as_email_message(message, connection=None).message().as_bytes(linesep="\r\n")

    # then every encoded-word of every header is at most 75 characters, and every header
    # reads back as it was meant
    for raw in (smtp, django):
        assert_well_encoded(raw_headers(raw))
        parsed = parse(raw)
        assert parsed["Subject"] == LONG_SUBJECT
        assert parsed["From"].addresses[0].addr_spec == "news@alpha.test"
        assert not parsed.defects
        # the sender's name decoded as RFC 2047 says (the policy's address parser keeps a
        # space between two encoded-words, where the RFC drops it)
        (sender,) = [h for h in unfolded(raw) if h.startswith("From: ")]
        display = sender.removeprefix("From: ").rpartition(" <")[0]
        assert str(make_header(decode_header(display))) == FROM_NAME


def test_it_keeps_the_list_id_in_clear_beside_an_encoded_list_name(international):
    # given a list whose name is not ASCII
    factory, message, newsletter = international
    list_id = f"<list-{newsletter.pk}.account-{newsletter.account_id}.alpha.test>"

    # when the message is written, for SMTP and for Django's backends
    smtp = factory.as_bytes(message)
    django = factory.as_email_message(message, connection=None).message().as_bytes(linesep="\r\n")

    # then only the phrase is encoded: the id stays plain ASCII, outside any encoded-word
    for raw in (smtp, django):
        (line,) = [h for h in unfolded(raw) if h.startswith("List-Id:")]
        assert line.endswith(f" {list_id}"), line
        assert all(b"list-" not in w for w in ENCODED_WORD.findall(line.encode()))
        assert parse(raw)["List-Id"] == f"{LIST_NAME} {list_id}"
    assert factory.headers["List-Id"].endswith(f" {list_id}")


# -- 15. the footer ------------------------------------------------------------------------------


def test_it_puts_a_view_in_browser_link_and_the_address_lines_in_the_footer(letters):
    # given an account whose postal address has two lines and markup-like text
    account, contact_list, _people, _client = letters
    account.postal_address = "1 Rue <des> Lettres\r\n69001 Lyon"
    account.save()
    campaign = make_campaign(account, contact_list, html="<p>Hello</p>")

    # when it is sent
    send_in_process(campaign)

    # then the HTML footer links to the web version and breaks the address lines,
    # escaped; the text footer keeps the lines too
    ann = next(m for m in mail.outbox if m.to == ["ann@example.net"])
    html = ann.alternatives[0][0]
    assert re.search(rf'<a href="{BASE}/v/[^"]+"[^>]*>View in browser</a>', html)
    assert "1 Rue &lt;des&gt; Lettres<br>69001 Lyon" in html
    assert "1 Rue <des> Lettres\n69001 Lyon" in ann.body.replace("\r\n", "\n")
    assert re.search(rf"View in browser: {BASE}/v/\S+", ann.body)


def test_it_omits_the_footers_view_link_when_the_body_has_one(letters):
    account, contact_list, _people, _client = letters
    campaign = make_campaign(
        account, contact_list, html='<p><a href="{{ view_in_browser_url }}">Web version</a></p>'
    )

    _subject, html, _text = preview(campaign, None)

    assert "View in browser" not in html
    assert "Web version" in html


# -- merge-tag comments --------------------------------------------------------------------------


class _Markup(HTMLParser):
    """Every element and attribute a browser would see."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def assert_inert(html: str) -> None:
    markup = _Markup()
    markup.feed(html)
    assert "script" not in markup.tags, html
    for name, value in markup.attributes:
        assert not name.startswith("on"), html
        assert not value.strip().lower().startswith("javascript:"), html


@pytest.mark.parametrize(
    "html",
    [
        "<p>Hi {# <script>alert(1)</script> #} there</p>",
        '<p><a href="{#">x</a><script>alert(1)</script><a href="#}">y</a> there</p>',
        '<p>{# <a href="javascript:alert(1)">c</a> #} there</p>',
        '<p><img src="{#" onerror="alert(1)#}"> there</p>',
    ],
)
def test_it_keeps_no_markup_of_merge_tag_comments(world, html):
    # given a body whose merge-tag comments hold markup
    campaign = services.campaign_create(
        account=world.account_a,
        actor=None,
        name="Comments",
        subject="Hi",
        from_email="news@alpha.test",
        html=html,
    )

    # when it is stored and rendered
    _subject, rendered, _text = preview(campaign, None)

    # then no markup of the comment is stored or rendered
    assert_inert(campaign.html)
    assert_inert(rendered)
    assert "alert(1)" not in rendered
    assert "there" in rendered


def test_the_preview_escapes_a_template_it_cannot_render(world, alice_client):
    # given a campaign stored by other means than the editor, with a broken merge tag
    campaign = world.extras["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(html="<p>{{ <img src=x onerror=alert(1)> }}</p>")

    # when its preview is shown
    response = alice_client.get(f"/campaigns/{campaign.pk}/preview/")

    # then the error is shown as text
    assert response.status_code == 200
    assert "cannot be shown" in response.content.decode()
    assert "<img" not in response.content.decode()
