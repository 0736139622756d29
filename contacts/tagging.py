"""Tags on contacts: the account's tags created, renamed and deleted, and one tag put on
(or taken off) many contacts at once.

Guarantees:
- A name is unique in the account whatever its case: "VIP" and "vip" are one tag. The
  unique index on (account, lower(name)) has the last word when two requests race.
- A bulk change is one statement, whatever the number of contacts: an INSERT … SELECT
  over the selection's own SQL, or a DELETE of the rows it names. It is idempotent (a
  contact that has the tag keeps its row) and writes one audit entry for the whole
  action, never one per contact.
- The contacts are always the account's, whatever selection the caller hands in, and the
  tag must be the account's too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import audit_log
from contacts import selectors, signals
from contacts.models import TAG_NAME_MAX, Contact, Tag

# What separates the names of several tags in one cell of an imported file.
NAME_SEPARATORS = ",;"


def clean_tag_name(value: str) -> str:
    """The name as it is stored (trimmed), or ValidationError on ``name`` saying why it
    cannot be one."""
    name = value.strip()
    if not name:
        problem = "A tag needs a name."
    elif len(name) > TAG_NAME_MAX:
        problem = f"A tag name has at most {TAG_NAME_MAX} characters (this one has {len(name)})."
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problem = "A tag name is one line of text, without control characters."
    elif any(separator in name for separator in NAME_SEPARATORS):
        problem = "A tag name cannot contain a comma or a semicolon: they separate tags in files."
    else:
        return name
    raise ValidationError({"name": ValidationError(problem, code="invalid")})


def split_tag_names(cell: str) -> list[str]:
    """The tag names of a cell of a file, such as ``vip; webinar-2026, Paris`` or
    Mailchimp's ``"VIP","Customer"``: each trimmed of spaces and of the quotes around it,
    empty ones left out, each once whatever its case (the first spelling kept)."""
    for separator in NAME_SEPARATORS[1:]:
        cell = cell.replace(separator, NAME_SEPARATORS[0])
    names: dict[str, str] = {}
    for part in cell.split(NAME_SEPARATORS[0]):
        name = part.strip().strip('"').strip()
        if name:
            names.setdefault(name.lower(), name)
    return list(names.values())


def _duplicate(name: str) -> ValidationError:
    return ValidationError(
        {"name": ValidationError(f"A tag named “{name}” already exists.", code="unique")}
    )


def _taken(account: Account, name: str, *, exclude: int | None = None) -> Tag | None:
    clash = selectors.find_tag(account, name)
    return clash if clash is not None and clash.pk != exclude else None


def _save(tag: Tag, update_fields: list[str] | None = None) -> None:
    """Save, answering a name another transaction took since ``_taken`` looked (the
    unique index is the only check that sees it) as the same error."""
    try:
        with transaction.atomic():
            tag.save(update_fields=update_fields)
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != "tag_name_unique":
            raise
        raise _duplicate(tag.name) from None


@transaction.atomic
def tag_create(*, account: Account, actor: User | None, name: str) -> Tag:
    name = clean_tag_name(name)
    clash = _taken(account, name)
    if clash is not None:
        raise _duplicate(clash.name)
    tag = Tag(account=account, name=name)
    _save(tag)
    audit_log(account=account, actor=actor, action="tag.created", name=name)
    return tag


@transaction.atomic
def tag_rename(*, tag: Tag, actor: User | None, name: str) -> Tag:
    """Give a tag a new name (a change of case only is a rename too). The contacts keep
    it; segments refer to it by id and keep it as well."""
    name = clean_tag_name(name)
    if name == tag.name:
        return tag
    clash = _taken(tag.account, name, exclude=tag.pk)
    if clash is not None:
        raise _duplicate(clash.name)
    old, tag.name = tag.name, name
    _save(tag, update_fields=["name"])
    audit_log(account=tag.account, actor=actor, action="tag.renamed", old=old, new=name)
    return tag


@transaction.atomic
def tag_delete(*, tag: Tag, actor: User | None) -> int:
    """Delete a tag, taking it off every contact; how many contacts had it."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM contacts_contacttag WHERE tag_id = %s", [tag.pk])
        untagged = cursor.rowcount
    audit_log(
        account=tag.account, actor=actor, action="tag.deleted", name=tag.name, contacts=untagged
    )
    tag.delete()
    return untagged


_ADD_SQL = """
WITH chosen AS (SELECT DISTINCT id FROM ({selection}) AS s (id)),
added AS (
    INSERT INTO contacts_contacttag (tag_id, contact_id, created_at)
    SELECT %s, id, %s FROM chosen
    ON CONFLICT (tag_id, contact_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM chosen), (SELECT count(*) FROM added)
"""

_REMOVE_SQL = """
WITH chosen AS (SELECT DISTINCT id FROM ({selection}) AS s (id)),
removed AS (
    DELETE FROM contacts_contacttag
    WHERE tag_id = %s AND contact_id IN (SELECT id FROM chosen)
    RETURNING 1
)
SELECT (SELECT count(*) FROM chosen), (SELECT count(*) FROM removed)
"""


@dataclass(frozen=True)
class Tagged:
    """What a bulk change did."""

    tag: Tag
    matched: int  # the account's contacts in the selection
    changed: int  # of them, those that gained (or lost) the tag now
    created: bool = False  # the tag, given by name, did not exist before

    @property
    def unchanged(self) -> int:
        """Those that had the tag already (or, on removal, did not have it)."""
        return self.matched - self.changed


def _selection_sql(account: Account, contacts: QuerySet[Contact]) -> tuple[str, tuple[Any, ...]]:
    """The SQL of the selection's ids, restricted to the account whatever the caller's
    queryset says."""
    ids = contacts.filter(account=account).order_by().values("pk")
    return ids.query.sql_with_params()


def _tag_of(account: Account, tag: Tag) -> Tag:
    if tag.account_id != account.pk:
        # a caller's bug, not a customer's mistake: the views fetch tags by account
        raise ValueError("The tag belongs to another account.")
    return tag


def tag_get_or_create(*, account: Account, actor: User | None, name: str) -> tuple[Tag, bool]:
    """The account's tag of that name (any case), created when missing, with whether it
    was. Safe against a concurrent creation of the same name: one INSERT … ON CONFLICT,
    then the row that won."""
    name = clean_tag_name(name)
    found = selectors.find_tag(account, name)
    if found is not None:
        return found, False
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_tag (account_id, name, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (account_id, lower(name)) DO NOTHING RETURNING id",
            [account.pk, name, timezone.now()],
        )
        row = cursor.fetchone()
    if row is None:
        found = selectors.find_tag(account, name)
        assert found is not None, "the conflicting tag is committed before ours may insert"
        return found, False
    tag = selectors.tags(account).get(pk=row[0])
    audit_log(account=account, actor=actor, action="tag.created", name=name)
    return tag, True


def _change(
    account: Account,
    actor: User | None,
    tag: Tag,
    contacts: QuerySet[Contact],
    statement: str,
    action: str,
    how: str,
) -> Tagged:
    """Run one bulk statement over the selection (its values after the selection's: the
    tag, and for an insert the time); one audit entry when it changed a row."""
    selection, params = _selection_sql(account, contacts)
    values = [tag.pk, timezone.now()] if statement is _ADD_SQL else [tag.pk]
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{selection}", selection), [*params, *values])
        matched, changed = cursor.fetchone()
    if changed:
        audit_log(account=account, actor=actor, action=action, tag=tag.name, count=changed, how=how)
    return Tagged(tag=tag, matched=matched, changed=changed)


@transaction.atomic
def tag_contacts(
    *,
    account: Account,
    actor: User | None,
    tag: Tag | str,
    contacts: QuerySet[Contact],
    how: str = "bulk",
) -> Tagged:
    """Put ``tag`` on every contact of ``contacts`` (the account's only), in one
    statement; a tag given by name is the account's tag of that name, whatever its case,
    created when missing. Idempotent; one audit entry when a contact gained the tag."""
    created = False
    if isinstance(tag, str):
        tag, created = tag_get_or_create(account=account, actor=actor, name=tag)
    done = _change(
        account, actor, _tag_of(account, tag), contacts, _ADD_SQL, "contacts.tagged", how
    )
    if done.changed:
        signals.tagged.send(Tag, account_id=account.pk, tag_id=done.tag.pk, contact_ids=None)
    return Tagged(tag=done.tag, matched=done.matched, changed=done.changed, created=created)


@transaction.atomic
def untag_contacts(
    *,
    account: Account,
    actor: User | None,
    tag: Tag | str,
    contacts: QuerySet[Contact],
    how: str = "bulk",
) -> Tagged:
    """Take ``tag`` off every contact of ``contacts`` (the account's only), in one
    statement. A tag given by name must exist (any case). Idempotent; one audit entry
    when a contact lost the tag."""
    if isinstance(tag, str):
        name = clean_tag_name(tag)
        found = selectors.find_tag(account, name)
        if found is None:
            raise ValidationError(
                {"name": ValidationError(f"There is no tag named “{name}”.", code="not_found")}
            )
        tag = found
    return _change(
        account, actor, _tag_of(account, tag), contacts, _REMOVE_SQL, "contacts.untagged", how
    )
