"""Starter templates a customer copies into a campaign. Plain HTML with merge tags; the
footer with the postal address and the unsubscribe link is added to every message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    subject: str
    html: str


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

BY_KEY = {s.key: s for s in STARTERS}
