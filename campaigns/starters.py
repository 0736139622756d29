"""Starter templates a customer copies into a campaign: made of blocks (campaigns.blocks)
or plain HTML, with merge tags. The footer with the postal address and the unsubscribe
link is added to every message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    subject: str
    html: str = ""
    # A document of blocks; the HTML is made from it when a campaign starts from it.
    blocks: dict[str, Any] | None = field(default=None, hash=False)
    description: str = ""


_BASE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<style>
  body {{ margin: 0; background: #f4f5f7; font-family: Arial, sans-serif; color: #1f2933; }}
  .wrap {{ max-width: 600px; margin: 0 auto; background: #ffffff; padding: 32px; }}
  h1 {{ font-size: 24px; margin: 0 0 16px; }}
  p {{ font-size: 16px; line-height: 1.5; margin: 0 0 16px; }}
  .button {{ display: inline-block; background: #4338ca; color: #ffffff; padding: 12px 20px;
            border-radius: 6px; text-decoration: none; font-weight: bold; }}
  @media (max-width: 620px) {{ .wrap {{ padding: 20px; }} }}
</style></head>
<body><div class="wrap">
{body}
</div></body></html>
"""

STARTERS = [
    Starter(
        "plain",
        "Plain letter",
        "A word from us",
        _BASE.format(
            body="""<p>Hello {{ first_name|default:"there" }},</p>
<p>Write your message here.</p>
<p>Best regards,<br>{{ account_name }}</p>"""
        ),
    ),
    Starter(
        "newsletter",
        "Newsletter",
        "Our news this month",
        _BASE.format(
            body="""<h1>This month at {{ account_name }}</h1>
<p>Hi {{ first_name|default:"there" }}, here is what happened.</p>
<h2>First story</h2>
<p>A few lines about it. <a href="https://example.com/story-1">Read more</a></p>
<h2>Second story</h2>
<p>A few lines about it. <a href="https://example.com/story-2">Read more</a></p>"""
        ),
    ),
    Starter(
        "announcement",
        "Announcement",
        "Something new for you",
        _BASE.format(
            body="""<h1>Something new</h1>
<p>{{ first_name|default:"Hello" }}, we have something to show you.</p>
<p><a class="button" href="https://example.com/launch">See it now</a></p>"""
        ),
    ),
]


def _document(*blocks: dict[str, Any], **settings: str) -> dict[str, Any]:
    return {"settings": settings, "blocks": list(blocks)}


def _heading(text: str, level: int = 1, **more: Any) -> dict[str, Any]:
    return {"type": "heading", "text": text, "level": level, **more}


def _text(html: str, **more: Any) -> dict[str, Any]:
    return {"type": "text", "html": html, **more}


def _button(label: str, href: str, **more: Any) -> dict[str, Any]:
    return {"type": "button", "label": label, "href": href, **more}


_IMAGE = {"type": "image", "src": "", "alt": ""}
_FOOTER = {"type": "footer", "text": "{{ account_name }}"}

BLOCK_STARTERS = [
    Starter(
        "blocks-newsletter",
        "Newsletter",
        "Our news this month",
        description="A heading, a picture, two stories side by side and your links.",
        blocks=_document(
            _heading("This month at {{ account_name }}"),
            _text('<p>Hi {{ first_name|default:"there" }}, here is what happened.</p>'),
            dict(_IMAGE),
            {
                "type": "columns",
                "columns": [
                    [
                        _heading("First story", 2),
                        _text("<p>A few lines about it.</p>"),
                        _button("Read more", "https://example.com/story-1", align="left"),
                    ],
                    [
                        _heading("Second story", 2),
                        _text("<p>A few lines about it.</p>"),
                        _button("Read more", "https://example.com/story-2", align="left"),
                    ],
                ],
            },
            {"type": "divider"},
            {"type": "social", "links": [{"network": "website", "href": "https://example.com"}]},
            _FOOTER,
        ),
    ),
    Starter(
        "blocks-announcement",
        "Announcement",
        "Something new for you",
        description="One big picture, one message, one button.",
        blocks=_document(
            dict(_IMAGE),
            _heading("Something new", align="center"),
            _text(
                '<p>{{ first_name|default:"Hello" }}, we have something to show you.</p>',
                align="center",
            ),
            _button("See it now", "https://example.com/launch"),
            {"type": "spacer", "height": 16},
            _FOOTER,
        ),
    ),
    Starter(
        "blocks-product",
        "Product",
        "Meet our latest product",
        description="A product with its picture, what it does, and where to buy it.",
        blocks=_document(
            _heading("Meet the new one"),
            {
                "type": "columns",
                "columns": [
                    [dict(_IMAGE)],
                    [
                        _heading("What it does", 2),
                        _text("<ul><li>One good reason</li><li>Another one</li></ul>"),
                        _button("Buy it", "https://example.com/shop", align="left"),
                    ],
                ],
            },
            {"type": "quote", "text": "The best thing we bought this year.", "cite": "A customer"},
            _FOOTER,
        ),
    ),
    Starter(
        "blocks-event",
        "Event",
        "You are invited",
        description="What, when and where, and a button to reply.",
        blocks=_document(
            _heading("You are invited", align="center"),
            _text(
                "<p><strong>When:</strong> Thursday 14 May, 6 pm<br>"
                "<strong>Where:</strong> 1 Main Street</p>",
                align="center",
            ),
            _button("Save my seat", "https://example.com/event"),
            {"type": "divider"},
            _text("<p>Can't come? Reply to this email and tell us.</p>", align="center"),
            _FOOTER,
        ),
    ),
    Starter(
        "blocks-empty",
        "Empty message",
        "",
        description="No block yet: add your own.",
        blocks=_document(),
    ),
    Starter(
        "blocks-letter",
        "Plain letter",
        "A word from us",
        description="Just words, as a letter from a person.",
        blocks=_document(
            _text(
                '<p>Hello {{ first_name|default:"there" }},</p><p>Write your message here.</p>'
                "<p>Best regards,<br>{{ account_name }}</p>"
            ),
        ),
    ),
]

BY_KEY = {s.key: s for s in [*STARTERS, *BLOCK_STARTERS]}
