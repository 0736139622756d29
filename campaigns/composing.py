"""A campaign made ready to render: preheader and footer added, CSS inlined, merge tags
compiled — once per campaign, so each recipient costs only a render.

Every message carries the account's postal address and an unsubscribe link: the footer
adds the link when the body has none, and a link to the web version likewise. Previews,
test sends and the sender compose the same way; only the tracking (rewritten links, the
open pixel) is the sender's alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from accounts.models import Account
from campaigns import rendering, sanitizing
from campaigns.models import Campaign

FOOTER_HTML = """
<div style="max-width:600px;margin:0 auto;padding:16px 32px;font-family:Arial,sans-serif;\
font-size:12px;line-height:1.5;color:#6b7280;text-align:center">
{view_in_browser}{{ account_name }} · {{ postal_address|linebreaksbr }}<br>
You receive this because you subscribed to our mailing list.{unsubscribe}{stop_tracking}
</div>
"""
VIEW_IN_BROWSER_HTML = (
    '<a href="{{ view_in_browser_url }}" style="color:#6b7280">View in browser</a><br>'
)
STOP_TRACKING_HTML = (
    '<br><a href="{{ stop_tracking_url }}" style="color:#6b7280">'
    "Don't track my opens and clicks</a>"
)
UNSUBSCRIBE_HTML = ' <a href="{{ unsubscribe_url }}" style="color:#6b7280">Unsubscribe</a>.'
FOOTER_TEXT = "\n\n--\n{{ account_name }} · {{ postal_address }}\n{view_in_browser}{unsubscribe}"
VIEW_IN_BROWSER_TEXT = "View in browser: {{ view_in_browser_url }}\n"
UNSUBSCRIBE_TEXT = "Unsubscribe: {{ unsubscribe_url }}"

# Shown by mail clients beside the subject: the first text of the body. Hidden in the
# message itself, the ways the clients that honour one of them need (Outlook reads
# mso-hide), and followed by invisible filler so that the body text after it does not
# run on into the inbox line.
PREHEADER_HTML = (
    '<span style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;mso-hide:all;color:transparent">'
    "{{ missive_preheader }}" + "&zwnj;&nbsp;" * 90 + "</span>"
)
_BODY_OPEN = re.compile(r"""<body\b(?:"[^"]*"|'[^']*'|[^'">])*>""", re.IGNORECASE)


def _with_footer(html: str, *, stop_tracking: bool = False) -> str:
    footer = (
        FOOTER_HTML.replace("{unsubscribe}", "" if "unsubscribe_url" in html else UNSUBSCRIBE_HTML)
        .replace(
            "{stop_tracking}",
            STOP_TRACKING_HTML if stop_tracking and "stop_tracking_url" not in html else "",
        )
        .replace("{view_in_browser}", "" if "view_in_browser_url" in html else VIEW_IN_BROWSER_HTML)
    )
    lower = html.lower()
    at = lower.rfind("</body>")
    return html[:at] + footer + html[at:] if at != -1 else html + footer


def _text_with_footer(text: str) -> str:
    return text + FOOTER_TEXT.replace(
        "{unsubscribe}", "" if "unsubscribe_url" in text else UNSUBSCRIBE_TEXT
    ).replace("{view_in_browser}", "" if "view_in_browser_url" in text else VIEW_IN_BROWSER_TEXT)


def _with_preheader(html: str) -> str:
    """The preheader first in the body: right after ``<body>``, or first of a fragment."""
    body = _BODY_OPEN.search(html)
    at = body.end() if body else 0
    return html[:at] + PREHEADER_HTML + html[at:]


@dataclass(frozen=True)
class Composed:
    subject: rendering.CompiledTemplate
    html: rendering.CompiledTemplate
    text: rendering.CompiledTemplate
    preheader: rendering.CompiledTemplate | None = None

    def render(self, values: dict[str, object]) -> tuple[str, str, str]:
        html_values = values
        if self.preheader is not None:
            # Rendered as plain text, then escaped as a value of the HTML part.
            html_values = {**values, "missive_preheader": self.preheader.render(values)}
        return (
            self.subject.render(values),
            self.html.render(html_values),
            self.text.render(values),
        )


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


def compile_stored(text: str, *, autoescape: bool) -> rendering.CompiledTemplate:
    """Saving refuses forbidden tags; a template stored by other means renders with each
    of them as nothing. A syntax error still raises ``TemplateRefused``."""
    try:
        return rendering.compile_template(text, autoescape=autoescape)
    except rendering.TemplateRefused:
        return rendering.compile_template(
            rendering.without_forbidden_tags(text), autoescape=autoescape
        )


def tracks_per_recipient(campaign: Campaign) -> bool:
    """Whether the campaign's messages track opens or clicks per recipient."""
    return campaign.account.tracking == Account.Tracking.PER_RECIPIENT and (
        campaign.track_opens or campaign.track_clicks
    )


def compose(
    campaign: Campaign, *, links: Mapping[str, int] | None = None, pixel: bool = False
) -> Composed:
    """``links`` maps the URLs to track to their positions in the campaign's Link table;
    ``pixel`` adds the open pixel. Previews and test sends track nothing, but show the
    footer the recipients will get."""
    # Tracked per recipient: the footer lets each person opt out of it.
    html = _with_footer(campaign.html or "<p></p>", stop_tracking=tracks_per_recipient(campaign))
    html = sanitizing.inline_css(html)
    preheader = campaign.preheader.strip()
    if preheader:
        # After inlining: the customer's stylesheet must not restyle the hidden span.
        html = _with_preheader(html)
    if links or pixel:
        html = _with_tracking(html, links or {}, pixel)
    return Composed(
        subject=compile_stored(campaign.subject, autoescape=False),
        html=compile_stored(html, autoescape=True),
        text=compile_stored(_text_with_footer(campaign.text), autoescape=False),
        preheader=compile_stored(preheader, autoescape=False) if preheader else None,
    )
