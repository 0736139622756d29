"""A campaign made ready to render: footer added, CSS inlined, merge tags compiled —
once per campaign, so each recipient costs only a render.

Every message carries the account's postal address and an unsubscribe link: the footer
adds the link when the body has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns import rendering, sanitizing
from campaigns.models import Campaign

FOOTER_HTML = """
<div style="max-width:600px;margin:0 auto;padding:16px 32px;font-family:Arial,sans-serif;\
font-size:12px;line-height:1.5;color:#6b7280;text-align:center">
{{ account_name }} · {{ postal_address }}<br>
You receive this because you subscribed to our mailing list.{unsubscribe}
</div>
"""
UNSUBSCRIBE_HTML = ' <a href="{{ unsubscribe_url }}" style="color:#6b7280">Unsubscribe</a>.'
FOOTER_TEXT = "\n\n--\n{{ account_name }} · {{ postal_address }}\n{unsubscribe}"
UNSUBSCRIBE_TEXT = "Unsubscribe: {{ unsubscribe_url }}"


def _with_footer(html: str) -> str:
    footer = FOOTER_HTML.replace(
        "{unsubscribe}", "" if "unsubscribe_url" in html else UNSUBSCRIBE_HTML
    )
    lower = html.lower()
    at = lower.rfind("</body>")
    return html[:at] + footer + html[at:] if at != -1 else html + footer


def _text_with_footer(text: str) -> str:
    return text + FOOTER_TEXT.replace(
        "{unsubscribe}", "" if "unsubscribe_url" in text else UNSUBSCRIBE_TEXT
    )


@dataclass(frozen=True)
class Composed:
    subject: rendering.CompiledTemplate
    html: rendering.CompiledTemplate
    text: rendering.CompiledTemplate

    def render(self, values: dict[str, object]) -> tuple[str, str, str]:
        return self.subject.render(values), self.html.render(values), self.text.render(values)


def compose(campaign: Campaign) -> Composed:
    html = sanitizing.inline_css(_with_footer(campaign.html or "<p></p>"))
    return Composed(
        subject=rendering.compile_template(campaign.subject, autoescape=False),
        html=rendering.compile_template(html, autoescape=True),
        text=rendering.compile_template(_text_with_footer(campaign.text), autoescape=False),
    )
