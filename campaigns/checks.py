"""Pre-send checks: what is worth a second look in a campaign before it goes out, each
with what to do about it. They advise; what forbids a send is ``selectors.start_problems``.

The spam score asks SpamAssassin's spamd (``MISSIVE_SPAMC = "host:port"``) over its own
protocol, as ``spamc -c`` does, with the message composed as the sample recipient gets
it. It is there only when configured; any failure of it (refused, slow, an answer it
cannot read) is one "spam check unavailable" line, never an error of the page.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from email.utils import formataddr
from enum import StrEnum
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import Resolver404, resolve

from campaigns.composing import compose
from campaigns.messages import subject_line
from campaigns.models import Campaign
from campaigns.rendering import TemplateRefused
from campaigns.selectors import recipient_values

SUBJECT_MAX = 80
SPAMC_TIMEOUT = 5.0  # seconds for the whole exchange with spamd
_MERGE_TAG = re.compile(r"^\s*\{\{.*\}\}\s*$", re.DOTALL)
_SAFE_SCHEMES = ("http", "https", "mailto", "tel")
_SPAM_HEADER = re.compile(
    r"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.IGNORECASE | re.MULTILINE
)


CHECK_CODES = (
    "subject_missing",
    "subject_long",
    "text_missing",
    "preheader_missing",
    "malformed_link",
    "tracking_link",
    "image_alt",
    "spam_score",
    "spam_unavailable",
)


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Check:
    level: Level
    code: str
    message: str  # what was found
    fix: str  # what to do about it


class _Scan(HTMLParser):
    """The links (target, None when it has none, and text) and the images (source, and
    alt text, None when absent) of a body."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str | None, str]] = []
        self.images: list[tuple[str, str | None]] = []
        self._link: tuple[str | None, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a":
            self._end_link()
            href = found.get("href")
            self._link = (href.strip() if href is not None else None, [])
        elif tag == "img":
            self.images.append((found.get("src") or "", found.get("alt")))

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._end_link()

    def close(self) -> None:
        super().close()
        self._end_link()

    def _end_link(self) -> None:
        if self._link is not None:
            href, text = self._link
            self.links.append((href, " ".join("".join(text).split())))
            self._link = None


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _quoted(value: str) -> str:
    return f"“{_shorten(value)}”"


def _listed(shown: list[str]) -> str:
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def _is_malformed(href: str) -> bool:
    if _MERGE_TAG.match(href):
        return False
    try:
        parts = urlsplit(href)
    except ValueError:
        return True
    scheme = parts.scheme.lower()
    if scheme not in _SAFE_SCHEMES:
        return True
    if scheme in ("http", "https"):
        # A host may itself be a merge tag ({{ attributes.site }}): it is the value's.
        return not parts.netloc or (not parts.hostname and "{{" not in parts.netloc)
    return not parts.path and not parts.query


# Missive's per-message addresses: a link to one of them was copied from a message sent.
_MESSAGE_URLS = frozenset(
    {
        "track_open",
        "track_click",
        "track_open_anonymous",
        "track_click_anonymous",
        "unsubscribe",
        "preferences",
        "stop_tracking",
        "view_in_browser",
    }
)


def _is_tracking_link(href: str, own_host: str) -> bool:
    """A link to Missive's own host, at one of its per-message addresses (a link to a
    subscribe form Missive hosts is fine)."""
    parts = urlsplit(href)
    if (parts.hostname or "").lower() != own_host:
        return False
    try:
        match = resolve(parts.path or "/")
    except Resolver404:
        return False
    return match.url_name in _MESSAGE_URLS


def _link_checks(links: list[tuple[str | None, str]]) -> list[Check]:
    checks = []
    # A link whose address the sanitizer took out (an unknown scheme, no host) has none.
    malformed = [
        _quoted(href) if href is not None else f"{_quoted(text or 'a link')} (no address)"
        for href, text in links
        if href is None or _is_malformed(href)
    ]
    hrefs = [href for href, _text in links if href is not None and not _is_malformed(href)]
    if malformed:
        checks.append(
            Check(
                Level.ERROR,
                "malformed_link",
                f"{len(malformed)} link{'s' if len(malformed) != 1 else ''} will not work: "
                f"{_listed(malformed)}.",
                "Give each link a full address starting with https:// (or mailto: for an "
                "address), or a merge tag such as {{ unsubscribe_url }}.",
            )
        )
    own = (urlsplit(settings.MISSIVE_BASE_URL).hostname or "").lower()
    tracked = [_quoted(href) for href in hrefs if own and _is_tracking_link(href, own)]
    if tracked:
        checks.append(
            Check(
                Level.ERROR,
                "tracking_link",
                f"{len(tracked)} link{'s point' if len(tracked) != 1 else ' points'} at "
                f"Missive's own tracking address ({own}): {_listed(tracked)}. Copied from a "
                "message "
                "that was sent, they count clicks for that message, and an unsubscribe link "
                "unsubscribes whoever received it.",
                "Put the original address of the page in each link; Missive tracks links "
                "itself, and {{ unsubscribe_url }} gives each recipient their own link.",
            )
        )
    return checks


def _image_checks(images: list[tuple[str, str | None]]) -> list[Check]:
    missing = [_quoted(src or "(no source)") for src, alt in images if alt is None]
    if not missing:
        return []
    return [
        Check(
            Level.WARNING,
            "image_alt",
            f"{len(missing)} image{'s' if len(missing) != 1 else ''} without alt text: "
            f"{_listed(missing)}. Many mail apps block images at first, and screen readers "
            "read the alt text.",
            'Describe each image in its alt attribute (alt="" for a purely decorative one).',
        )
    ]


def _content_checks(campaign: Campaign) -> list[Check]:
    checks = []
    subject = campaign.subject.strip()
    if not subject:
        checks.append(
            Check(
                Level.ERROR,
                "subject_missing",
                "The message has no subject.",
                "Write a subject: it is the first thing recipients read.",
            )
        )
    elif len(subject) > SUBJECT_MAX:
        checks.append(
            Check(
                Level.WARNING,
                "subject_long",
                f"The subject is {len(subject)} characters long; mail apps cut it at "
                f"about {SUBJECT_MAX}, phones sooner.",
                f"Shorten the subject to {SUBJECT_MAX} characters or fewer, the words that "
                "matter first.",
            )
        )
    if campaign.text_is_custom and not campaign.text.strip():
        checks.append(
            Check(
                Level.WARNING,
                "text_missing",
                "The text part is your own, and it is empty: mail apps that show text only "
                "(and some spam filters) see a blank message.",
                "Write the text part, or untick “Text is custom” so that it is made from the HTML.",
            )
        )
    if not campaign.preheader.strip():
        checks.append(
            Check(
                Level.INFO,
                "preheader_missing",
                "There is no preheader: mail apps show the first words of the body after "
                "the subject instead.",
                "Write a preheader that completes the subject in a sentence.",
            )
        )
    return checks


# -- the spam score -----------------------------------------------------------------------------


class SpamCheckUnavailable(Exception):
    """spamd could not be asked, or did not say a score."""


def _composed_message(campaign: Campaign) -> bytes:
    """The message as the sample recipient would get it, headers included."""
    subject, html, text = compose(campaign).render(recipient_values(campaign, None))
    message = EmailMultiAlternatives(
        subject=subject_line(subject),
        body=text,
        from_email=formataddr((campaign.from_name, campaign.from_email or "sender@example.com")),
        to=["jane@example.com"],
        reply_to=[campaign.reply_to] if campaign.reply_to else None,
    )
    message.attach_alternative(html, "text/html")
    # CRLF line ends, as on the wire (spamd counts Content-length in those bytes).
    return message.message().as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _spamd_address(setting: str) -> tuple[str, int]:
    host, _, port = setting.rpartition(":")
    if not host or not port.isdigit():
        raise SpamCheckUnavailable(f"MISSIVE_SPAMC is not host:port: {setting!r}")
    return host.strip("[]"), int(port)


def spam_score(
    message: bytes, address: str, *, timeout: float = SPAMC_TIMEOUT
) -> tuple[float, float]:
    """(score, threshold) of ``message`` by the spamd at ``address`` ("host:port"): the
    CHECK command of the SPAMC/SPAMD protocol, as ``spamc -c`` sends it."""
    host, port = _spamd_address(address)
    request = (
        b"CHECK SPAMC/1.5\r\n"
        + f"Content-length: {len(message)}\r\n".encode()
        + b"User: missive\r\n\r\n"
        + message
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
            answer = b""
            while len(answer) < 65536:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError as error:
        raise SpamCheckUnavailable(str(error) or type(error).__name__) from None
    text = answer.decode("latin-1")
    status = text.split("\r\n", 1)[0].split()
    if len(status) < 3 or not status[0].startswith("SPAMD/") or status[1] != "0":
        raise SpamCheckUnavailable(f"spamd answered {text[:80]!r}")
    found = _SPAM_HEADER.search(text)
    if found is None:
        raise SpamCheckUnavailable("spamd's answer has no score")
    return float(found.group(2)), float(found.group(3))


def _spam_check(campaign: Campaign) -> Check | None:
    address = settings.MISSIVE_SPAMC
    if not address:
        return None
    try:
        score, threshold = spam_score(_composed_message(campaign), address)
    except (SpamCheckUnavailable, TemplateRefused, ValueError):
        return Check(
            Level.INFO,
            "spam_unavailable",
            "Spam check unavailable: the spam filter could not be asked just now.",
            "Try again in a moment; if it keeps failing, tell whoever runs Missive.",
        )
    if score >= threshold:
        return Check(
            Level.ERROR,
            "spam_score",
            f"SpamAssassin scores the message {score:g} (spam from {threshold:g}): many "
            "mailboxes would file it as spam.",
            "Use fewer capitals, exclamation marks and sales words, balance images with "
            "text, and link only to sites you trust; then check again.",
        )
    level = Level.WARNING if score >= threshold / 2 else Level.INFO
    return Check(
        level,
        "spam_score",
        f"SpamAssassin scores the message {score:g} (spam from {threshold:g}).",
        "Nothing to do."
        if level == Level.INFO
        else "It is close: a few changes of wording (fewer capitals, exclamation marks and "
        "sales words) keep it clear of the line.",
    )


def presend_checks(campaign: Campaign) -> list[Check]:
    """Every check of the campaign as it stands, errors first."""
    scan = _Scan()
    scan.feed(campaign.html or "")
    scan.close()
    checks = [
        *_content_checks(campaign),
        *_link_checks(scan.links),
        *_image_checks(scan.images),
    ]
    spam = _spam_check(campaign)
    if spam is not None:
        checks.append(spam)
    order = list(Level)
    return sorted(checks, key=lambda check: order.index(check.level))


def errors(campaign: Campaign) -> list[Check]:
    """The checks that say the message is broken (a link that will not work, a tracking
    link copied from a sent message, spam by SpamAssassin's measure): a person sending or
    scheduling it from the pages says they send it anyway (``ACCEPT_ERRORS``)."""
    return [check for check in presend_checks(campaign) if check.level == Level.ERROR]


# The form field with which a person sends despite ``errors``.
ACCEPT_ERRORS = "despite_errors"
