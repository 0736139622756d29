"""The check of one DNS record, and the four states it ends in: shared by the checks of a
sending domain (domains.checks, domains.spf) and of the host Missive sends through
(domains.hosts).

A check starts blank (what is looked up, where, and what is expected) and concludes with
``says``: a state and a message saying what is wrong and what to do. ``looked_up`` turns a
DNS server that cannot answer into "unavailable", never "missing": a record is never
called absent because a resolver was down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from domains.dns import DnsUnavailable


class Status(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    WRONG = "wrong"
    UNAVAILABLE = "unavailable"


@dataclass
class RecordCheck:
    key: str  # dkim:<selector>, spf, dmarc, bounce_mx, address, ptr:<ip>, starttls
    label: str
    name: str
    rtype: str
    status: Status = Status.UNAVAILABLE  # until the check concludes (says)
    expected: str = ""
    found: list[str] = field(default_factory=list)
    message: str = ""

    def says(self, status: Status, message: str, **changes: Any) -> RecordCheck:
        """This check concluded: ``status``, and what to do about it."""
        return replace(self, status=status, message=message, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordCheck:
        return cls(**{**data, "status": Status(data["status"]), "found": list(data["found"])})


def unavailable(blank: RecordCheck, error: DnsUnavailable) -> RecordCheck:
    """``blank`` concluded "unavailable": the DNS could not answer; Missive checks again."""
    message = f"Could not look up {blank.name}: {error}. Missive will check again."
    return blank.says(Status.UNAVAILABLE, message)


def looked_up(blank: RecordCheck, check: Callable[[RecordCheck], RecordCheck]) -> RecordCheck:
    """``check(blank)``, or "unavailable" when the DNS cannot answer: never "missing"."""
    try:
        return check(blank)
    except DnsUnavailable as error:
        return unavailable(blank, error)
