"""Query-string parameters, read so that nothing a visitor can type into an address
causes a server error.

Pages ignore a malformed value and say so (``QueryParams``); the API refuses it with a
400 that names the parameter (its serializers use the same limits, ``BIGINT_MAX``). The
traps this module exists for: ``str.isdigit()`` accepts "²", which ``int()`` refuses;
PostgreSQL refuses a NUL character in any text and an id beyond its bigint range.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, QueryDict

BIGINT_MAX = 2**63 - 1
TEXT_MAX = 200


def clean_text(value: str, *, max_length: int = TEXT_MAX) -> str:
    """``value`` without control characters (NUL among them), cut to ``max_length``."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc")[:max_length]


def parse_id(value: str) -> int | None:
    """A database id written in ASCII digits, within PostgreSQL's bigint; else None."""
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number <= BIGINT_MAX else None


def parse_cursor(value: str) -> tuple[str, int] | None:
    """A keyset cursor as Missive writes them, ``<sort value>|<id>``; else None."""
    head, separator, tail = value.rpartition("|")
    pk = parse_id(tail)
    if not separator or not head or pk is None or clean_text(head, max_length=len(head)) != head:
        return None
    return head, pk


class QueryParams:
    """A page's query string. Each reader returns a usable value; a malformed one is
    dropped and its parameter listed in ``ignored``, for ``note_ignored`` to mention."""

    def __init__(self, query: QueryDict) -> None:
        self._query = query
        self.ignored: list[str] = []

    def ignore(self, name: str) -> None:
        """Mark a parameter as dropped after a check made elsewhere (a cursor the
        selector refused)."""
        if name not in self.ignored:
            self.ignored.append(name)

    def text(self, name: str, default: str = "", *, max_length: int = TEXT_MAX) -> str:
        raw = self._query.get(name)
        if raw is None:
            return default
        value = clean_text(raw, max_length=max_length)
        if value != raw:
            self.ignore(name)
        return value

    def id(self, name: str) -> int | None:
        raw = self._query.get(name, "")
        if not raw:
            return None
        value = parse_id(raw)
        if value is None:
            self.ignore(name)
        return value

    def choice(self, name: str, choices: Iterable[str], default: str = "") -> str:
        raw = self._query.get(name)
        if not raw:
            return default
        if raw in choices:
            return raw
        self.ignore(name)
        return default

    def cursor(self, name: str) -> str:
        """The raw cursor when it has the shape of one of ours, else ""."""
        raw = self._query.get(name, "")
        if raw and parse_cursor(raw) is None:
            self.ignore(name)
            return ""
        return raw

    def note_ignored(self, request: HttpRequest) -> None:
        """Say on the page which parameters were not understood. Not on htmx swaps: the
        message would wait for the next full page and confuse it."""
        if self.ignored and not getattr(request, "htmx", False):
            names = ", ".join(f"“{name}”" for name in self.ignored)
            messages.warning(
                request, f"Part of the address was not understood and is ignored: {names}."
            )
