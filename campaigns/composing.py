"""A campaign made ready to render: footer added, CSS inlined, merge tags compiled —
once per campaign, so each recipient costs only a render.

Every message carries the account's postal address and an unsubscribe link: the footer
adds the link when the body has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from campaigns import rendering, sanitizing
from campaigns.models import Campaign

FOOTER_HTML = """
<div style="max-width:600px;margin:0 auto;padding:16px 32px;font-family:Arial,sans-serif;\
font-size:12px;line-height:1.5;color:#6b7280;text-align:center">
{{ account_name }} · {{ postal_address }}<br>
You receive this because you subscribed to our mailing list.{unsubscribe}{stop_tracking}
</div>
"""
STOP_TRACKING_HTML = (
    '<br><a href="{{ stop_tracking_url }}" style="color:#6b7280">'
    "Don't track my opens and clicks</a>"
)
UNSUBSCRIBE_HTML = ' <a href="{{ unsubscribe_url }}" style="color:#6b7280">Unsubscribe</a>.'
FOOTER_TEXT = "\n\n--\n{{ account_name }} · {{ postal_address }}\n{unsubscribe}"
UNSUBSCRIBE_TEXT = "Unsubscribe: {{ unsubscribe_url }}"


def _with_footer(html: str, *, stop_tracking: bool = False) -> str:
    footer = FOOTER_HTML.replace(
        "{unsubscribe}", "" if "unsubscribe_url" in html else UNSUBSCRIBE_HTML
    ).replace(
        "{stop_tracking}",
        STOP_TRACKING_HTML if stop_tracking and "stop_tracking_url" not in html else "",
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


PIXEL_HTML = (
    '<img src="{{ missive_pixel }}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0">'
)


def _with_tracking(html: str, links: Mapping[str, int], pixel: bool) -> str:
    """Tracked links point at ``{{ missive_links.<position> }}`` and the open pixel goes
    last in the body; the sender fills both per recipient."""
    if links:
        html = sanitizing.rewrite_links(
            html,
            lambda url: f"{{{{ missive_links.{links[url]} }}}}" if url in links else None,
        )
    if pixel:
        at = html.lower().rfind("</body>")
        html = html[:at] + PIXEL_HTML + html[at:] if at != -1 else html + PIXEL_HTML
    return html


def _compile(text: str, *, autoescape: bool) -> rendering.CompiledTemplate:
    """Saving refuses forbidden tags; a template stored by other means renders with each
    of them as nothing. A syntax error still raises ``TemplateRefused``."""
    try:
        return rendering.compile_template(text, autoescape=autoescape)
    except rendering.TemplateRefused:
        return rendering.compile_template(
            rendering.without_forbidden_tags(text), autoescape=autoescape
        )


def compose(
    campaign: Campaign, *, links: Mapping[str, int] | None = None, pixel: bool = False
) -> Composed:
    """``links`` maps the URLs to track to their positions in the campaign's Link table;
    ``pixel`` adds the open pixel. Previews and test sends track nothing."""
    # Tracked per recipient: the footer lets each person opt out of it.
    per_recipient = campaign.account.tracking == "per_recipient" and (links or pixel)
    html = sanitizing.inline_css(
        _with_footer(campaign.html or "<p></p>", stop_tracking=bool(per_recipient))
    )
    if links or pixel:
        html = _with_tracking(html, links or {}, pixel)
    return Composed(
        subject=_compile(campaign.subject, autoescape=False),
        html=_compile(html, autoescape=True),
        text=_compile(_text_with_footer(campaign.text), autoescape=False),
    )
