"""Where an attribute's merge tag ``{{ attributes.<name> }}`` is used.

A use is any ``attributes.<name>`` inside a template token: a variable
(``{{ attributes.city|upper }}``), a filter argument (``{{ x|default:attributes.city }}``)
or a tag (``{% if attributes.city == "Paris" %}``). All of them stop working when the
attribute is renamed or deleted, so all of them are listed and rewritten.

The campaigns app renders the tag, but contacts may not import it (imports flow one way:
accounts ← contacts ← campaigns). So it registers here, when it loads, how to find the
campaigns that use a tag and how to rename the tag in those it may still change; the
attribute screens and services ask this module only.

A campaign being sent, or paused mid-send, renders the tag again with each batch: while
one uses an attribute, that attribute may not be renamed, retyped or deleted
(``TagUse.sending``). The services ask with ``lock=True`` inside their transaction, so a
campaign cannot start sending between the question and the change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.template.base import BLOCK_TAG_START, VARIABLE_TAG_START, tag_re

from accounts.models import Account


@dataclass(frozen=True)
class TagUse:
    """A campaign (or any content) whose text uses an attribute's merge tag."""

    id: int
    name: str
    status: str
    editable: bool  # renaming the tag may change it (a draft)
    url: str
    # Being sent, or paused mid-send: each batch renders the tag again, so the attribute
    # must not change under it.
    sending: bool = False


class Finder(Protocol):
    def __call__(self, account: Account, name: str, *, lock: bool = False) -> list[TagUse]: ...


_finders: list[Finder] = []
_renamers: list[Callable[[Account, str, str], int]] = []


def register(*, find: Finder, rename: Callable[[Account, str, str], int]) -> None:
    if find not in _finders:
        _finders.append(find)
        _renamers.append(rename)


def _name_pattern(name: str) -> re.Pattern[str]:
    # Not ``attributes.name_2``, nor ``other.attributes.name``.
    return re.compile(r"(?<![\w.])attributes\." + re.escape(name) + r"(?!\w)")


def _tokens(text: str) -> list[str]:
    """The text split by Django's own lexer pattern: odd items are ``{{ }}``, ``{% %}``
    and ``{# #}`` tokens, even items the text between them."""
    return tag_re.split(text)


def _is_code(token: str) -> bool:
    return token.startswith((VARIABLE_TAG_START, BLOCK_TAG_START))


def tag_used(text: str, name: str) -> bool:
    """Whether ``text`` uses ``attributes.<name>`` in a variable or a tag."""
    if f"attributes.{name}" not in text:
        return False
    pattern = _name_pattern(name)
    return any(_is_code(token) and pattern.search(token) for token in _tokens(text)[1::2])


def tag_rename(text: str, old: str, new: str) -> str:
    """``text`` with every use of ``attributes.<old>`` in a variable or a tag made
    ``attributes.<new>``; the text between tokens is left as it is."""
    if f"attributes.{old}" not in text:
        return text
    pattern = _name_pattern(old)
    parts = _tokens(text)
    for index in range(1, len(parts), 2):
        if _is_code(parts[index]):
            parts[index] = pattern.sub(f"attributes.{new}", parts[index])
    return "".join(parts)


def uses(account: Account, name: str, *, lock: bool = False) -> list[TagUse]:
    """The campaigns not sent yet, or still being sent, that use ``attributes.<name>``.
    With ``lock``, inside a transaction, each one that may use it is locked until the
    transaction ends, so none changes state (starts sending) meanwhile."""
    return [use for find in _finders for use in find(account, name, lock=lock)]


def sending(account: Account, name: str, *, lock: bool = False) -> list[TagUse]:
    """The uses that forbid changing the attribute: campaigns being sent or paused."""
    return [use for use in uses(account, name, lock=lock) if use.sending]


def rename(account: Account, old: str, new: str) -> int:
    """Rewrite the tag where it may still change; returns how many were changed."""
    return sum(rename(account, old, new) for rename in _renamers)
