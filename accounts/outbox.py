"""The development Outbox: mail caught by the local SMTP catcher, stored as files.

Each message is ``<id>.eml`` (the bytes exactly as received) beside ``<id>.json`` (the
envelope). Ids sort by arrival time. Files, not database rows, so the catcher needs
nothing but a directory, and the Outbox shows the raw message a real server would get.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from django.conf import settings
from django.urls import reverse

_ID = re.compile(r"^[0-9]{17}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class CaughtMessage:
    id: str
    mail_from: str
    rcpt_tos: list[str]
    received_at: datetime
    raw: bytes

    @property
    def parsed(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)

    @property
    def subject(self) -> str:
        return str(self.parsed.get("Subject", ""))

    def part(self, content_type: str) -> str | None:
        body = self.parsed.get_body(preferencelist=(content_type.split("/")[1],))
        if body is None or body.get_content_type() != content_type:
            return None
        return body.get_content()

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(k, str(v)) for k, v in self.parsed.items()]


# The public pages that record an open or a click for the message's recipient: the pixel,
# the tracked links, and the web version (its page loads the pixel). Named by route, so
# the Outbox needs nothing of the campaigns app.
_TRACKING_ROUTES = (
    "track_open",
    "track_click",
    "track_open_anonymous",
    "track_click_anonymous",
    "view_in_browser",
)
INERT_URL = "about:blank"


def _tracking_urls() -> re.Pattern[str]:
    prefixes = [reverse(name, args=["TOKEN"]).partition("TOKEN")[0] for name in _TRACKING_ROUTES]
    paths = "|".join(map(re.escape, prefixes))
    return re.compile(rf"""(?:https?:)?//[^/\s"'<>]+(?:{paths})[^\s"'<>()]*""", re.IGNORECASE)


def without_tracking(html: str) -> str:
    """The HTML with every URL that would record an open or a click made inert, whatever
    server it names: viewing a caught message must not count as its recipient reading it."""
    return _tracking_urls().sub(INERT_URL, html)


def outbox_dir() -> Path | None:
    return Path(settings.MAIL_CATCHER_DIR) if settings.MAIL_CATCHER_DIR else None


def store(directory: Path, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    message_id = f"{time.time_ns() // 1000:017d}-{uuid.uuid4().hex[:8]}"
    (directory / f"{message_id}.eml").write_bytes(raw)
    envelope = {
        "mail_from": mail_from,
        "rcpt_tos": rcpt_tos,
        "received_at": datetime.now(UTC).isoformat(),
    }
    # Written last: a message is listed only once it is complete.
    (directory / f"{message_id}.json").write_text(json.dumps(envelope))
    return message_id


def _load(directory: Path, message_id: str) -> CaughtMessage | None:
    if not _ID.match(message_id):
        return None
    try:
        envelope = json.loads((directory / f"{message_id}.json").read_text())
        raw = (directory / f"{message_id}.eml").read_bytes()
    except (OSError, ValueError):
        return None
    return CaughtMessage(
        id=message_id,
        mail_from=envelope.get("mail_from", ""),
        rcpt_tos=list(envelope.get("rcpt_tos", [])),
        received_at=datetime.fromisoformat(envelope["received_at"]),
        raw=raw,
    )


def get(message_id: str) -> CaughtMessage | None:
    directory = outbox_dir()
    return _load(directory, message_id) if directory else None


def newest(limit: int = 50, offset: int = 0) -> tuple[list[CaughtMessage], int]:
    """A page of messages, newest first, and how many there are in all."""
    directory = outbox_dir()
    if directory is None or not directory.is_dir():
        return [], 0
    ids = sorted((p.stem for p in directory.glob("*.json")), reverse=True)
    page = [m for m in (_load(directory, i) for i in ids[offset : offset + limit]) if m]
    return page, len(ids)


def clear() -> int:
    directory = outbox_dir()
    if directory is None or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob("*.json"):
        path.unlink(missing_ok=True)
        path.with_suffix(".eml").unlink(missing_ok=True)
        removed += 1
    return removed
