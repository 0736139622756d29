"""Where an attribute's merge tag ``{{ attributes.<name> }}`` is used.

The campaigns app renders the tag, but contacts may not import it (imports flow one way:
accounts ← contacts ← campaigns). So it registers here, when it loads, how to find the
campaigns that use a tag and how to rename the tag in those it may still change; the
attribute screens and services ask this module only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import Account


@dataclass(frozen=True)
class TagUse:
    """A campaign (or any content) whose text uses an attribute's merge tag."""

    id: int
    name: str
    status: str
    editable: bool  # renaming the tag may change it (a draft)
    url: str


_finders: list[Callable[[Account, str], list[TagUse]]] = []
_renamers: list[Callable[[Account, str, str], int]] = []


def register(
    *, find: Callable[[Account, str], list[TagUse]], rename: Callable[[Account, str, str], int]
) -> None:
    if find not in _finders:
        _finders.append(find)
        _renamers.append(rename)


def tag_pattern(name: str) -> re.Pattern[str]:
    """``{{ attributes.name }}``, with or without spaces or filters, and not
    ``attributes.name_2``."""
    return re.compile(r"(\{\{-?\s*attributes\.)" + re.escape(name) + r"(?![A-Za-z0-9_])")


def uses(account: Account, name: str) -> list[TagUse]:
    return [use for find in _finders for use in find(account, name)]


def rename(account: Account, old: str, new: str) -> int:
    """Rewrite the tag where it may still change; returns how many were changed."""
    return sum(rename(account, old, new) for rename in _renamers)
