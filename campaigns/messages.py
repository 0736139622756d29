"""Campaign messages, built per recipient with little work, and the transports that
deliver them.

A ``MessageFactory`` is made once per campaign and batch: the templates compiled, the
sender, ``List-Id`` and the other fixed headers encoded. Per recipient it renders the
three parts, signs the recipient's links and, for SMTP, writes the MIME bytes directly:
two quoted-printable parts (no line over 76 characters), CRLF line ends, headers folded
by the standard library. The standard library's generator, which Django's SMTP backend
uses, costs about three times a bare ``smtplib`` send, so it is kept for the other
transports only.

The transports that deliver them are in ``campaigns.transports``.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.utils import formataddr, formatdate
from urllib.parse import quote

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils.encoding import punycode

from accounts.models import Account
from campaigns import rendering, tokens
from campaigns.composing import Composed, compose
from campaigns.models import Campaign
from domains.dkim import Signer
from domains.selectors import sender_for, signer_for

CRLF = "\r\n"


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    email: str
    first_name: str
    last_name: str
    attributes: Mapping[str, object]
    # The person objected to tracking: their links and pixel name only the campaign.
    untracked: bool = False
    # Of an A/B test: the variant they get (campaigns.ab); None without a test.
    variant: int | None = None
    # Of a journey's email: the properties of the event that started it.
    event: Mapping[str, object] | None = None


@dataclass
class Outgoing:
    delivery_id: int
    to: str
    subject: str
    html: str
    text: str
    message_id: str
    headers: dict[str, str]
    # The mailbox provider (domains.providers) whose connections it goes on; by the
    # address's name when the sender did not say.
    provider: str = ""
    # Its bytes as they go on the wire, being written and signed on the transport's own
    # thread (SmtpTransport.prepare) while the message before it is sent.
    prepared: Future[bytes] | None = field(default=None, repr=False, compare=False)


def _public_prefix(name: str, *args: object) -> str:
    """The absolute URL of a public view with "TOKEN" where the token goes."""
    return settings.MISSIVE_BASE_URL + reverse(name, args=["TOKEN", *args])


# RFC 2047 allows encoded-words of 75 characters, each holding whole characters; the
# standard library's Header writes them 76 long, and formataddr writes one of any length.
# Missive writes its own: base64 of at most 45 bytes of UTF-8 (72 characters), one a line.
_WORD_BYTES = 45
_LINE = 78


def _single_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _needs_encoding(text: str) -> bool:
    # ASCII that looks like an encoded-word would be decoded by the reader: encode it too.
    return not text.isascii() or "=?" in text


def _encoded_word(text: str) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(text.encode(), newline=False).decode()}?="


def _encoded_words(text: str, name: str) -> list[str]:
    """``text`` as encoded-words for the header ``name``: the first one short enough to
    share the line with the name."""
    # "=?utf-8?b?" and "?=" around 4 characters of base64 for each 3 bytes.
    room = (_LINE - len(name) - 2 - 12) // 4 * 3
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        length = len(char.encode())
        if chunk and size + length > min(room, _WORD_BYTES):
            words.append(_encoded_word("".join(chunk)))
            chunk, size, room = [], 0, _WORD_BYTES
        chunk.append(char)
        size += length
    if chunk:
        words.append(_encoded_word("".join(chunk)))
    return words


def _fold(name: str, tokens: list[str]) -> str:
    """``name: tokens``, never splitting a token, on a new line whenever the next one
    does not fit in 78 characters."""
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > _LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += f" {token}"
    return CRLF.join(lines)


def _phrase(display: str, name: str) -> list[str]:
    """A display name as tokens of the header ``name``: encoded-words, or one quoted
    string."""
    if _needs_encoding(display):
        return _encoded_words(display, name)
    return ['"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"']


def _header(name: str, value: str) -> str:
    value = _single_line(value)
    if _needs_encoding(value):
        return _fold(name, _encoded_words(value, name))
    return f"{name}: {Header(value, 'us-ascii', header_name=name).encode(linesep=CRLF)}"


def ascii_domain(address: str) -> str:
    """The address with its domain in ASCII (IDNA), the form DNS and every server know. A
    local part that is not ASCII stays as it is: only SMTPUTF8 (RFC 6531) can carry it."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    return f"{local}@{punycode(domain)}"


def _address_tokens(name: str, display: str, address: str) -> list[str]:
    display = _single_line(display)
    address = ascii_domain(address)
    if not display:
        return [address]
    if _needs_encoding(display) or not address.isascii():
        # RFC 6532: a header may carry the address in UTF-8. Only a server that takes
        # SMTPUTF8 is given such a message (campaigns.transports).
        return [*_phrase(display, name), f"<{address}>"]
    return [formataddr((display, address))]


def _address_header(name: str, display: str, address: str) -> str:
    return _fold(name, _address_tokens(name, display, address))


def _qp(text: str) -> bytes:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode(), istext=True).replace(b"\n", b"\r\n")


class _CampaignEmail(EmailMultiAlternatives):
    """Django writes non-ASCII headers in encoded-words of 76 characters, one more than
    RFC 2047 allows: the MIME it builds (SMTP, file and console backends) gets Missive's
    encoding of those headers instead. Providers' APIs read the attributes, unencoded."""

    folded: dict[str, list[str]]
    # anymail's: what the provider echoes back in its webhooks
    metadata: dict[str, str]

    # Django 5.2's signature (a SafeMIMEMultipart here); django-stubs describes Django 6's.
    def message(self) -> Message:  # type: ignore[override]
        mime = super().message()
        for name, words in getattr(self, "folded", {}).items():
            # ASCII words, folded by the generator between them, never inside one.
            mime.replace_header(name, Header(" ".join(words), "us-ascii", header_name=name))
        return mime


class _SignedMIME:
    """A message's MIME whose bytes for SMTP (CRLF line ends, as Django's SMTP backend
    asks for them) carry the DKIM signature of its From domain."""

    def __init__(self, mime: Message, signer: Signer) -> None:
        self._mime = mime
        self._signer = signer

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        data: bytes = self._mime.as_bytes(unixfrom, linesep=linesep)  # type: ignore[call-arg]
        return self._signer.sign(data) if linesep == "\r\n" else data

    def __getattr__(self, name: str) -> object:
        return getattr(self._mime, name)


class SignedEmail(EmailMultiAlternatives):
    """Missive's own messages of a campaign sent through Django's mail backend (tests):
    signed like the campaign's, when its From domain has keys."""

    signer: Signer | None = None

    # Django 5.2's signature; django-stubs describes Django 6's.
    def message(self) -> Message:  # type: ignore[override]
        mime = super().message()
        if self.signer is None:
            return mime
        return _SignedMIME(mime, self.signer)  # type: ignore[return-value]


def subject_line(subject: str) -> str:
    """A rendered subject as one header line: a merge value may hold line breaks (a
    postal address does)."""
    return subject.replace("\r", " ").replace("\n", " ").strip()


class MessageFactory:
    """Everything about a campaign's messages that does not depend on the recipient."""

    def __init__(self, campaign: Campaign, *, positions: Mapping[str, int]) -> None:
        account = campaign.account
        self.campaign = campaign
        tracking = account.tracking
        track_clicks = campaign.track_clicks and tracking != Account.Tracking.OFF
        track_opens = campaign.track_opens and tracking != Account.Tracking.OFF
        self.composed: Composed = compose(
            campaign, links=positions if track_clicks else None, pixel=track_opens
        )
        self.positions = sorted(set(positions.values())) if track_clicks else []
        # Anonymous counts: the same links for everyone, naming only the campaign.
        self.anonymous = tracking == Account.Tracking.ANONYMOUS
        self.anonymous_pixel = _public_prefix("track_open_anonymous").replace(
            "TOKEN", tokens.campaign_open_token(campaign.pk)
        )
        self.anonymous_links = {
            str(p): _public_prefix("track_click_anonymous").replace(
                "TOKEN", tokens.campaign_click_token(campaign.pk, p)
            )
            for p in self.positions
        }
        # Who it is from as written: the campaign's sender, or the shared domain's address
        # for an account an operator allowed to send from it (domains.selectors).
        sender = sender_for(
            account,
            from_email=campaign.from_email,
            from_name=campaign.from_name,
            reply_to=campaign.reply_to,
        )
        self.domain = sender.from_email.rpartition("@")[2].lower() or "localhost"
        self.from_email = sender.from_email
        self.from_name = sender.from_name
        self.from_header = _address_header("From", sender.from_name, sender.from_email)
        self.reply_to = sender.reply_to
        # The From domain's DKIM keys (None: no verified domain signs it).
        self.sender_domain = sender.domain
        self.signer = signer_for(sender.domain)
        self.unsubscribe_prefix = _public_prefix("unsubscribe")
        self.preferences_prefix = _public_prefix("preferences")
        self.stop_tracking_prefix = _public_prefix("stop_tracking")
        self.view_prefix = _public_prefix("view_in_browser")
        self.pixel_prefix = _public_prefix("track_open")
        self.click_prefix = _public_prefix("track_click")
        self.static_values = {
            "account_name": account.name,
            "postal_address": account.postal_address,
        }
        first_list = campaign.lists.order_by("pk").first()
        list_name = _single_line(first_list.name if first_list else campaign.name)
        list_key = f"list-{first_list.pk if first_list else 0}.account-{account.pk}"
        # RFC 2919: a phrase, which may be encoded, then a unique name under a domain of
        # the sender's, which may not: it stays plain ASCII, outside any encoded-word.
        self.list_id_tokens = [
            *_phrase(list_name.replace('"', ""), "List-Id"),
            f"<{list_key}.{self.domain}>",
        ]
        self.headers = {
            "List-Id": " ".join(self.list_id_tokens),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Precedence": "bulk",
            "Feedback-ID": f"{campaign.pk}:{account.pk}:missive",
        }
        self.fixed_header_lines = CRLF.join(
            [self.from_header]
            + ([f"Reply-To: {self.reply_to}"] if self.reply_to else [])
            + [_fold("List-Id", self.list_id_tokens)]
            + [_header(name, value) for name, value in self.headers.items() if name != "List-Id"]
            + ["MIME-Version: 1.0"]
        )
        self.boundary = f"=_missive_{secrets.token_hex(8)}"
        self.mailto = settings.MISSIVE_UNSUBSCRIBE_MAILTO
        self.support_prefix = f"{account.pk}-{campaign.pk}-"

    def refresh_signer(self) -> None:
        """Take the domain's current keys (a factory lives as long as its campaign sends,
        keys may be replaced meanwhile)."""
        self.signer = signer_for(self.sender_domain)

    def envelope_sender(self, message: Outgoing) -> str:
        """Where bounces go: the operator's return path with the delivery's signed id in
        it (VERP), or the campaign's sender."""
        return_path = settings.MISSIVE_RETURN_PATH
        if not return_path:
            return self.from_email
        local, _, domain = return_path.rpartition("@")
        return f"{local}+{tokens.bounce_token(message.delivery_id)}@{domain}"

    def _tracking_values(
        self, delivery_id: int, token: str, *, anonymous: bool
    ) -> dict[str, object]:
        if self.anonymous or anonymous:
            return {"missive_pixel": self.anonymous_pixel, "missive_links": self.anonymous_links}
        return {
            "missive_pixel": self.pixel_prefix.replace("TOKEN", token),
            "missive_links": {
                str(p): self.click_prefix.replace("TOKEN", tokens.click_token(delivery_id, p))
                for p in self.positions
            },
        }

    def build(self, recipient: Recipient) -> Outgoing:
        delivery_id = recipient.delivery_id
        token = tokens.recipient_token(delivery_id)
        unsubscribe = self.unsubscribe_prefix.replace("TOKEN", token)
        preferences = self.preferences_prefix.replace("TOKEN", token)
        values: dict[str, object] = {
            **rendering.contact_values(
                email=recipient.email,
                first_name=recipient.first_name,
                last_name=recipient.last_name,
                attributes=recipient.attributes,
                event=recipient.event,
            ),
            "unsubscribe_url": unsubscribe,
            "preferences_url": preferences,
            "stop_tracking_url": self.stop_tracking_prefix.replace("TOKEN", token),
            "view_in_browser_url": self.view_prefix.replace("TOKEN", token),
            **self._tracking_values(delivery_id, token, anonymous=recipient.untracked),
            **self.static_values,
        }
        subject, html, text = self.composed.render(values)
        mailto = f"mailto:{self.mailto}?subject={quote('unsubscribe ' + token)}"
        return Outgoing(
            delivery_id=delivery_id,
            to=recipient.email,
            subject=subject_line(subject),
            html=html,
            text=text,
            message_id=f"<{delivery_id}.{secrets.token_hex(6)}@{self.domain}>",
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>, <{mailto}>",
                "X-Missive-Campaign": f"{self.support_prefix}{delivery_id}",
            },
        )

    def as_bytes(self, message: Outgoing) -> bytes:
        """The message as an SMTP server receives it: CRLF lines of at most 998 bytes."""
        head = CRLF.join(
            [
                self.fixed_header_lines,
                _address_header("To", "", message.to),
                _header("Subject", message.subject),
                f"Date: {formatdate(usegmt=True)}",
                f"Message-ID: {message.message_id}",
                *(_header(name, value) for name, value in message.headers.items()),
                f'Content-Type: multipart/alternative; boundary="{self.boundary}"',
            ]
        )
        boundary = self.boundary.encode()
        return b"".join(
            (
                head.encode(),
                b"\r\n\r\n--",
                boundary,
                b"\r\nContent-Type: text/plain; charset=utf-8"
                b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                _qp(message.text),
                b"\r\n--",
                boundary,
                b"\r\nContent-Type: text/html; charset=utf-8"
                b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                _qp(message.html),
                b"\r\n--",
                boundary,
                b"--\r\n",
            )
        )

    def signed_bytes(self, message: Outgoing) -> bytes:
        """``as_bytes``, DKIM-signed by the From domain's keys when it has any."""
        data = self.as_bytes(message)
        return self.signer.sign(data) if self.signer is not None else data

    def as_email_message(
        self, message: Outgoing, connection: object, *, metadata: bool = True
    ) -> EmailMultiAlternatives:
        from_name = _single_line(self.from_name)
        email = _CampaignEmail(
            subject=message.subject,
            body=message.text,
            # Not encoded: providers' APIs take the name as it is; the MIME Django builds
            # gets Missive's encoding (_CampaignEmail).
            from_email=str(Address(display_name=from_name, addr_spec=self.from_email)),
            to=[message.to],
            reply_to=[self.reply_to] if self.reply_to else None,
            headers={**self.headers, **message.headers, "Message-ID": message.message_id},
            connection=connection,
        )
        email.folded = {"List-Id": self.list_id_tokens}
        if _needs_encoding(message.subject):
            email.folded["Subject"] = _encoded_words(message.subject, "Subject")
        if _needs_encoding(from_name):
            email.folded["From"] = _address_tokens("From", from_name, self.from_email)
        email.attach_alternative(message.html, "text/html")
        # Providers echo metadata back in their webhooks: feedback finds its delivery
        # even when it arrives before the provider's message id is recorded. Not for a
        # provider that has no metadata (anymail would refuse the message).
        if metadata:
            email.metadata = {"missive": message.headers["X-Missive-Campaign"]}
        return email
