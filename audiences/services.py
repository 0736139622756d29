"""Segments are saved, renamed, redefined and deleted here, and nowhere else; each change
is audited. A definition is stored only in its clean form."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import audit_log
from audiences.conditions import Invalid
from audiences.models import Segment
from audiences.selectors import checked, matching_clean
from contacts.copying import subscribe_copying_consent
from contacts.models import ContactList
from contacts.services import list_create

# Higher apps that use segments say, when they load, who still needs one (campaigns: the
# unsent campaigns sent to it), so that deleting it is refused with their names.
Users = Callable[[Segment], list[str]]
_users: list[Users] = []


def register_users(find: Users) -> None:
    if find not in _users:
        _users.append(find)


class SegmentInUse(ValidationError):
    """A campaign not yet sent takes its audience from the segment."""


def _clean_name(account: Account, name: str, *, exclude: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the segment a name."})
    if len(name) > 200:
        raise ValidationError({"name": "A name has at most 200 characters."})
    taken = Segment.objects.for_account(account).filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ValidationError(
            {"name": ValidationError(f"A segment named “{name}” exists already.", code="unique")}
        )
    return name


def _clean_description(description: str) -> str:
    if "\x00" in description:
        raise ValidationError({"description": "The description holds a NUL character."})
    return description.strip()


def _clean_definition(account: Account, definition: object) -> dict[str, object]:
    """``Invalid`` (path → message) when it cannot be read."""
    clean, _ctx = checked(account, definition)
    return clean


@transaction.atomic
def segment_create(
    *,
    account: Account,
    actor: User | None,
    name: str,
    definition: object,
    description: str = "",
) -> Segment:
    segment = Segment.objects.create(
        account=account,
        name=_clean_name(account, name),
        description=_clean_description(description),
        definition=_clean_definition(account, definition),
        created_by=actor,
    )
    audit_log(
        account=account,
        actor=actor,
        action="segment.created",
        segment=segment.pk,
        name=segment.name,
    )
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    actor: User | None,
    name: str | None = None,
    definition: object = None,
    description: str | None = None,
) -> Segment:
    changed = []
    if name is not None and name.strip() != segment.name:
        segment.name = _clean_name(segment.account, name, exclude=segment.pk)
        changed.append("name")
    if description is not None and description.strip() != segment.description:
        segment.description = _clean_description(description)
        changed.append("description")
    if definition is not None:
        clean = _clean_definition(segment.account, definition)
        if clean != segment.definition:
            segment.definition = clean
            changed.append("definition")
    if changed:
        segment.updated_at = timezone.now()
        segment.save(update_fields=[*changed, "updated_at"])
        audit_log(
            account=segment.account,
            actor=actor,
            action="segment.updated",
            segment=segment.pk,
            name=segment.name,
            changed=changed,
        )
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: User | None) -> None:
    """Refused (``SegmentInUse``) while a campaign not yet sent goes to it."""
    using = [name for find in _users for name in find(segment)]
    if using:
        raise SegmentInUse(
            f"“{segment.name}” is the audience of {', '.join(using)}: choose another audience "
            "for them first."
        )
    audit_log(
        account=segment.account,
        actor=actor,
        action="segment.deleted",
        segment=segment.pk,
        name=segment.name,
    )
    segment.delete()


@transaction.atomic
def segment_to_list(*, segment: Segment, actor: User | None, name: str) -> tuple[ContactList, int]:
    """A new list of the segment's contacts who are subscribed now, each with the consent
    proof of their subscription; it stays as it is when the segment changes. ``Invalid``
    when the segment names something deleted."""
    clean, ctx = checked(segment.account, segment.definition)
    made = list_create(
        account=segment.account,
        actor=actor,
        name=name,
        description=f"Made from the segment “{segment.name}” on {ctx.today.isoformat()}.",
        double_opt_in=False,
    )
    added = subscribe_copying_consent(
        account=segment.account,
        actor=actor,
        contact_list=made,
        contacts=matching_clean(clean, ctx),
        origin=f"segment {segment.name}",
    )
    return made, added


__all__ = [
    "Invalid",
    "SegmentInUse",
    "register_users",
    "segment_create",
    "segment_delete",
    "segment_to_list",
    "segment_update",
]
