"""Writes to the customer's contacts: one function per use case, atomic, audited where
the controller must be able to show what happened to personal data."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.models import Account, User, normalize_email
from accounts.services import audit_log, someone_acting
from contacts import merge_tags, signals
from contacts.models import (
    AttributeDefinition,
    Contact,
    ContactList,
    Subscription,
    Suppression,
    email_sha256,
    validate_attribute_name,
)
from contacts.selectors import forget_list_counts, is_suppressed

S = Subscription.Status


def clean_email(value: str) -> str:
    """The address normalized, or ValidationError saying what is wrong with it."""
    email = normalize_email(value)
    if not email:
        raise ValidationError("The email address is empty.")
    if len(email) > 254:  # an A-label domain is longer than what was typed
        raise ValidationError(f"{value.strip()!r} is too long for an email address.")
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"{value.strip()!r} is not a valid email address.") from None
    return email


TRUE_WORDS = {"1", "true", "yes", "y", "oui", "on", "x"}
FALSE_WORDS = {"0", "false", "no", "n", "non", "off", ""}


# Day and month in either order, with a four-digit year, then maybe a time: the exports of
# Brevo (15-01-2024), European spreadsheets (15.01.2024, 15/01/2024) and American ones
# (01/15/2024).
_NUMERIC_DATE = re.compile(
    r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$"
)


def parse_when(text: str, *, day_first: bool = True) -> dt.datetime | None:
    """A date or date-time as spreadsheets and mailing-list exports write it, or None:
    ISO 8601 (2024-03-01, 2024-03-01 10:22:33, 2024-03-01T10:22:33Z, listmonk's
    2024-01-15 09:30:00.123456+00) and DD-MM-YYYY or MM/DD/YYYY with ``-``, ``/`` or
    ``.``. A day and month that could be either way round are read as ``day_first``
    says; one that can be read only one way is read that way. Naive when the text
    gives no offset."""
    text = text.strip()
    if text[:4].isdigit():
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    match = _NUMERIC_DATE.match(text)
    if not match:
        return None
    first, _sep, second, year, hour, minute, second_of_minute = match.groups()
    a, b = int(first), int(second)
    day, month = (a, b) if (day_first and b <= 12) or a > 12 else (b, a)
    try:
        return dt.datetime(
            int(year), month, day, int(hour or 0), int(minute or 0), int(second_of_minute or 0)
        )
    except ValueError:
        return None


def day_first_of(samples: list[str]) -> bool:
    """Whether a column's dates put the day first: False only when one of them cannot be
    read so (its second number is over 12, its first is not)."""
    for text in samples:
        match = _NUMERIC_DATE.match(text.strip())
        if match and int(match.group(3)) > 12 >= int(match.group(1)):
            return False
    return True


def clean_attribute(
    definition: AttributeDefinition, raw: object, *, day_first: bool = True
) -> object:
    """A declared attribute's value in its type, or ValidationError naming the problem.
    Empty text means "no value" (None)."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    text = str(raw).strip()
    T = AttributeDefinition.Type
    if definition.type == T.NUMBER:
        try:
            number = Decimal(
                text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
            )
        except InvalidOperation:
            raise ValidationError(f"{text!r} is not a number.") from None
        return int(number) if number == number.to_integral_value() else float(number)
    if definition.type == T.DATE:
        when = parse_when(text, day_first=day_first)
        if when is None:
            raise ValidationError(
                f"{text!r} is not a date (YYYY-MM-DD, DD-MM-YYYY or an ISO 8601 date and time)."
            )
        # The day as written: a time and its offset say when that day was, not another day.
        return when.date().isoformat()
    if definition.type == T.BOOLEAN:
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValidationError(f"{text!r} is not yes or no.")
    return text


def clean_attributes(account: Account, values: dict[str, object]) -> dict[str, object]:
    definitions = {d.name: d for d in AttributeDefinition.objects.for_account(account)}
    cleaned, errors = {}, {}
    for name, raw in values.items():
        definition = definitions.get(name)
        if definition is None:
            errors[name] = f"{name!r} is not a declared attribute."
            continue
        try:
            value = clean_attribute(definition, raw)
        except ValidationError as error:
            errors[name] = error.messages[0]
            continue
        if value is not None:
            cleaned[name] = value
    if errors:
        raise ValidationError({f"attributes.{k}": v for k, v in errors.items()})
    return cleaned


@transaction.atomic
def list_create(
    *, account: Account, actor: User | None, name: str, **fields: object
) -> ContactList:
    name = name.strip()
    if ContactList.objects.for_account(account).filter(name__iexact=name).exists():
        raise ValidationError(
            {"name": ValidationError(f"A list named {name!r} already exists.", code="unique")}
        )
    contact_list = ContactList.objects.create(account=account, name=name, **fields)
    audit_log(account=account, actor=actor, action="list.created", name=name)
    return contact_list


@transaction.atomic
def list_update(*, contact_list: ContactList, actor: User | None, **fields: object) -> ContactList:
    name = str(fields.get("name", contact_list.name)).strip()
    clash = (
        ContactList.objects.for_account(contact_list.account)
        .filter(name__iexact=name)
        .exclude(pk=contact_list.pk)
    )
    if clash.exists():
        raise ValidationError(
            {"name": ValidationError(f"A list named {name!r} already exists.", code="unique")}
        )
    for key, value in fields.items():
        setattr(contact_list, key, value)
    contact_list.name = name
    contact_list.save()
    return contact_list


@transaction.atomic
def list_delete(
    *, contact_list: ContactList, actor: User | None, delete_contacts: bool = False
) -> int:
    """Delete a list and its subscriptions. With ``delete_contacts``, also the contacts
    that were on this list and on no other; returns how many contacts were deleted."""
    account = contact_list.account
    deleted = 0
    if delete_contacts:
        elsewhere = Subscription.objects.filter(contact=OuterRef("pk")).exclude(
            contact_list=contact_list
        )
        only_here = (
            Contact.objects.for_account(account)
            .filter(subscriptions__contact_list=contact_list)
            .filter(~Exists(elsewhere))
        )
        deleted = delete_contact_rows(list(only_here.values_list("pk", flat=True)))
    name = contact_list.name
    forget_list_counts([contact_list.pk])
    contact_list.delete()
    audit_log(
        account=account, actor=actor, action="list.deleted", name=name, contacts_deleted=deleted
    )
    return deleted


@transaction.atomic
def contact_create(
    *,
    account: Account,
    actor: User | None,
    email: str,
    first_name: str = "",
    last_name: str = "",
    attributes: dict[str, object] | None = None,
    lists: Sequence[ContactList] = (),
    source: str = Subscription.Source.MANUAL,
    legal_basis: str = Subscription.LegalBasis.CONSENT,
    consent_text: str = "",
    consent_ip: str | None = None,
    consent_user_agent: str = "",
) -> Contact:
    email = clean_email(email)
    if Contact.objects.for_account(account).filter(email=email).exists():
        raise ValidationError(
            {"email": ValidationError(f"{email} is already a contact.", code="unique")}
        )
    cleaned = clean_attributes(account, attributes or {})
    if lists and is_suppressed(account, email):
        raise ValidationError(
            {"email": f"{email} is on a suppression list: it cannot be subscribed to any list."}
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                account=account,
                email=email,
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                attributes=cleaned,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        raise ValidationError(
            {"email": ValidationError(f"{email} is already a contact.", code="unique")}
        ) from None
    for contact_list in lists:
        Subscription.objects.create(
            contact=contact,
            contact_list=contact_list,
            status=S.SUBSCRIBED,
            source=source,
            legal_basis=legal_basis,
            consent_at=now,
            consent_text=consent_text,
            consent_ip=consent_ip,
            consent_user_agent=consent_user_agent[:500],
            confirmed_at=now,
        )
    forget_list_counts([cl.pk for cl in lists])
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, actor: User | None, **fields: object) -> Contact:
    account = contact.account
    if "email" in fields:
        email = clean_email(str(fields.pop("email")))
        if email != contact.email:
            clash = Contact.objects.for_account(account).filter(email=email).exclude(pk=contact.pk)
            if clash.exists():
                raise ValidationError({"email": f"{email} is already another contact."})
            contact.email = email
    if "attributes" in fields:
        given = fields.pop("attributes") or {}
        assert isinstance(given, Mapping), "attributes come as names and values"
        contact.attributes = clean_attributes(account, dict(given))
    for name in ("first_name", "last_name"):
        if name in fields:
            setattr(contact, name, str(fields.pop(name)).strip())
    if fields:
        raise ValidationError(dict.fromkeys(fields, "This field cannot be changed."))
    contact.updated_at = timezone.now()
    contact.save()
    return contact


def contacts_set_attribute(
    *,
    account: Account,
    actor: User | None,
    contact_ids: Sequence[int],
    definition: AttributeDefinition,
    value: object,
    how: str,
) -> int:
    """Set one declared attribute to ``value`` (checked in its type; empty clears it) on
    the account's contacts of ``contact_ids``, in one statement. Returns how many
    changed."""
    if definition.account_id != account.pk:
        raise ValueError("The attribute belongs to another account.")
    cleaned = clean_attribute(definition, value)
    contacts = Contact.objects.for_account(account).filter(pk__in=list(contact_ids))
    if cleaned is None:
        changed = contacts.filter(attributes__has_key=definition.name).update(
            attributes=RawSQL("attributes - %s", [definition.name]),
            updated_at=timezone.now(),
        )
    else:
        changed = contacts.update(
            attributes=RawSQL(
                "attributes || jsonb_build_object(%s, %s::jsonb)",
                [definition.name, json.dumps(cleaned)],
            ),
            updated_at=timezone.now(),
        )
    if changed and someone_acting(actor):
        audit_log(
            account=account,
            actor=actor,
            action="contacts.attribute_set",
            attribute=definition.name,
            count=changed,
            how=how,
        )
    return changed


DELETE_CHUNK = 5_000


def delete_contact_rows(ids: Sequence[int]) -> int:
    """Delete contacts by id, set-based, a chunk per transaction: the one delete of
    contacts, whoever asks (a member, the API, a list deleted with its contacts,
    retention, an erasure). Their subscriptions go; what only points at them (the
    deliveries of campaigns, the data-request log) stays, linked to no one, by the
    foreign keys' ON DELETE. Returns how many were deleted. No audit entry: the caller
    writes the one that says why."""
    removed = 0
    ids = list(ids)
    for start in range(0, len(ids), DELETE_CHUNK):
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM contacts_subscription WHERE contact_id = ANY(%s::bigint[]) "
                "RETURNING contact_list_id",
                [ids[start : start + DELETE_CHUNK]],
            )
            forget_list_counts(sorted({row[0] for row in cursor.fetchall()}))
            cursor.execute(
                "DELETE FROM contacts_contact WHERE id = ANY(%s::bigint[])",
                [ids[start : start + DELETE_CHUNK]],
            )
            removed += cursor.rowcount
    return removed


@transaction.atomic
def contacts_delete(*, account: Account, actor: User | None, contact_ids: Sequence[int]) -> int:
    """Delete the account's contacts among ``contact_ids``; how many were."""
    ids = list(
        Contact.objects.for_account(account).filter(pk__in=contact_ids).values_list("pk", flat=True)
    )
    count = delete_contact_rows(ids)
    if count:
        audit_log(account=account, actor=actor, action="contacts.deleted", count=count)
    return count


_UNSUBSCRIBE_SQL = """
UPDATE contacts_subscription AS s
SET status = %(unsubscribed)s, unsubscribed_at = %(when)s, updated_at = %(when)s
FROM contacts_contact AS c
WHERE c.id = s.contact_id AND c.account_id = %(account)s
  AND s.contact_id = ANY(%(contacts)s::bigint[])
  AND s.status <> %(unsubscribed)s
  AND (%(lists)s::bigint[] IS NULL OR s.contact_list_id = ANY(%(lists)s::bigint[]))
RETURNING s.contact_id, s.contact_list_id
"""


@transaction.atomic(savepoint=False)
def unsubscribe(
    *,
    account: Account | int,
    actor: User | None,
    contact_ids: Sequence[int],
    list_ids: Sequence[int] | None = None,
    how: str,
    when: dt.datetime | None = None,
) -> list[tuple[int, int]]:
    """Unsubscribe the account's contacts from the lists in ``list_ids`` (all their lists
    with None), at once and idempotently: the one write of an unsubscribe, whatever the
    route (a message's link or its one-click header, the preferences page, a reply to the
    unsubscribe address, a provider's report, a data request, the API, a bulk action).
    One statement; an audit entry when a member or an API key acted (``how`` says which
    route). Returns the (contact, list) pairs that changed."""
    account_id = account if isinstance(account, int) else account.pk
    with connection.cursor() as cursor:
        cursor.execute(
            _UNSUBSCRIBE_SQL,
            {
                "unsubscribed": S.UNSUBSCRIBED.value,
                "when": when or timezone.now(),
                "account": account_id,
                "contacts": list(contact_ids),
                "lists": None if list_ids is None else list(list_ids),
            },
        )
        changed = [(contact_id, list_id) for contact_id, list_id in cursor.fetchall()]
    if changed:
        list_ids_changed = sorted({list_id for _, list_id in changed})
        forget_list_counts(list_ids_changed)
        if someone_acting(actor):
            names = ContactList.objects.filter(pk__in=list_ids or []).order_by("name")
            audit_log(
                account=Account.objects.get(pk=account_id) if isinstance(account, int) else account,
                actor=actor,
                action="contacts.unsubscribed",
                count=len(changed),
                list="all lists"
                if list_ids is None
                else ", ".join(names.values_list("name", flat=True)),
                how=how,
            )
    return changed


def contacts_unsubscribe(
    *,
    account: Account,
    actor: User | None,
    contact_ids: list[int],
    contact_list: ContactList | None = None,
    how: str = "bulk",
) -> int:
    """Unsubscribe contacts from one list, or from every list of the account; how many
    subscriptions ended."""
    lists = None if contact_list is None else [contact_list.pk]
    return len(
        unsubscribe(account=account, actor=actor, contact_ids=contact_ids, list_ids=lists, how=how)
    )


@transaction.atomic
def subscription_subscribe(
    *,
    contact: Contact,
    contact_list: ContactList,
    source: str = Subscription.Source.MANUAL,
    legal_basis: str = Subscription.LegalBasis.CONSENT,
    consent_text: str = "",
    consent_ip: str | None = None,
    consent_user_agent: str = "",
    confirmed: bool = True,
) -> Subscription:
    """Put a contact on a list, with the proof of consent. An address on a suppression
    list, or one that unsubscribed from this list, is never subscribed again this way."""
    if contact.account_id != contact_list.account_id:
        raise ValidationError("The contact and the list belong to different accounts.")
    if is_suppressed(contact.account, contact.email):
        raise ValidationError(f"{contact.email} is on a suppression list.")
    existing = Subscription.objects.filter(contact=contact, contact_list=contact_list).first()
    if existing and existing.status == S.UNSUBSCRIBED and source != Subscription.Source.FORM:
        raise ValidationError(
            f"{contact.email} unsubscribed from {contact_list.name}: only they can subscribe again."
        )
    if existing and existing.status == S.SUBSCRIBED:
        return existing
    now = timezone.now()
    subscription = existing or Subscription(contact=contact, contact_list=contact_list)
    subscription.status = S.SUBSCRIBED if confirmed else S.UNCONFIRMED
    subscription.source = source
    subscription.legal_basis = legal_basis
    subscription.consent_at = now
    subscription.consent_text = consent_text
    subscription.consent_ip = consent_ip
    subscription.consent_user_agent = consent_user_agent[:500]
    subscription.confirmed_at = now if confirmed else None
    subscription.unsubscribed_at = None
    subscription.updated_at = now
    subscription.save()
    forget_list_counts([contact_list.pk])
    if confirmed:
        signals.subscribed.send(
            Subscription,
            account_id=contact_list.account_id,
            list_id=contact_list.pk,
            contact_ids=[contact.pk],
        )
    return subscription


def subscription_unsubscribe(
    *, subscription: Subscription, actor: User | None = None
) -> Subscription:
    """End one subscription (the API's unsubscribe); a second call changes nothing."""
    unsubscribe(
        account=subscription.contact_list.account_id,
        actor=actor,
        contact_ids=[subscription.contact_id],
        list_ids=[subscription.contact_list_id],
        how="api",
    )
    subscription.refresh_from_db()
    return subscription


_SUPPRESS_SQL = """
INSERT INTO contacts_suppression
    (account_id, email_sha256, reason, note, created_by_id, created_at)
SELECT %(account)s, digest, %(reason)s, %(note)s, %(author)s, %(now)s
FROM unnest(%(digests)s::text[]) AS digest
ON CONFLICT DO NOTHING
RETURNING email_sha256
"""
SUPPRESS_CHUNK = 1000


@dataclass(frozen=True)
class Suppressed:
    added: list[str]  # the digests put on the list now
    already: int  # how many were on it before (they keep their reason, note and author)


@transaction.atomic(savepoint=False)
def suppress(
    *,
    account: Account | None,
    digests: Sequence[str],
    reason: str,
    actor: User | None,
    note: str = "",
    source: str = "",
    **detail: object,
) -> Suppressed:
    """Put addresses (their SHA-256, ``email_sha256``) on ``account``'s suppression list,
    or with None on the platform-wide one: the one write of a suppression, whatever asked
    for it (a member, the API, a file, a hard bounce or a complaint, the recipient
    themself, an erasure, an operator). Idempotent: an address already there keeps its
    entry. One audit entry on the account's log: for one address, or with ``source`` for
    a bulk operation, with the counts and ``detail``."""
    author = actor.pk if actor is not None and actor.pk else None
    unique = list(dict.fromkeys(digests))
    added: list[str] = []
    now = timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(unique), SUPPRESS_CHUNK):
            cursor.execute(
                _SUPPRESS_SQL,
                {
                    "account": account.pk if account is not None else None,
                    "digests": unique[start : start + SUPPRESS_CHUNK],
                    "reason": reason,
                    "note": note.strip()[:200],
                    "author": author,
                    "now": now,
                },
            )
            added += [digest for (digest,) in cursor.fetchall()]
    result = Suppressed(added=added, already=len(unique) - len(added))
    if account is not None and added:
        if source:
            audit_log(
                account=account,
                actor=actor,
                action="suppressions.added",
                reason=reason,
                source=source,
                count=len(added),
                already=result.already,
                acting="",  # (given, so that no key of ``detail`` can stand for it)
                **detail,
            )
        else:
            audit_log(account=account, actor=actor, action="suppression.added", reason=reason)
    return result


def suppression_add(
    *,
    account: Account | None,
    email: str,
    reason: str = Suppression.Reason.MANUAL,
    actor: User | None = None,
    note: str = "",
) -> Suppression:
    """Suppress one address for ``account`` (or, with None, platform-wide); its entry,
    new or the one there before."""
    digest = email_sha256(clean_email(email))
    suppress(account=account, digests=[digest], reason=reason, actor=actor, note=note)
    return Suppression.objects.get(account=account, email_sha256=digest)


@transaction.atomic
def suppression_remove(*, suppression: Suppression, actor: User | None) -> None:
    if suppression.account is not None:
        audit_log(
            account=suppression.account,
            actor=actor,
            action="suppression.removed",
            reason=suppression.reason,
        )
    suppression.delete()


# --- Attributes: define, rename, retype, delete -------------------------------------------
# An import mistake (a column taken as the wrong type, a typo in a name) must not be
# permanent. Each write locks the definition's row first, so two changes of one attribute
# run one after the other, and moves the contacts' values with it by set-based SQL over
# the account's contacts, in the same transaction as the definition.
#
# While a campaign using the attribute's merge tag is being sent (or is paused mid-send),
# the attribute is left alone: each batch renders the tag again, and the messages would
# change half-way.


class AttributeValuesWouldDrop(ValidationError):
    """A change of type would drop stored values, and the caller did not agree to drop
    that many. ``failing`` is how many would be dropped."""

    def __init__(self, message: str, *, failing: int) -> None:
        super().__init__({"type": [message]})
        self.failing = failing


class AttributeInUse(ValidationError):
    """A campaign being sent, or paused mid-send, uses the attribute's merge tag."""


def _duplicate(name: str) -> ValidationError:
    return ValidationError(
        {"name": ValidationError(f"An attribute named “{name}” already exists.", code="unique")}
    )


def _name_taken(account: Account, name: str, *, exclude: int | None = None) -> bool:
    clash = AttributeDefinition.objects.for_account(account).filter(name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    return clash.exists()


def _save_name(definition: AttributeDefinition, update_fields: list[str] | None = None) -> None:
    """Save, answering a name another transaction took since ``_name_taken`` looked (the
    unique constraint is the only check that sees it) as the same form error."""
    try:
        with transaction.atomic():
            definition.save(update_fields=update_fields)
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != "attribute_name_unique":
            raise
        raise _duplicate(definition.name) from None


def _locked(definition: AttributeDefinition) -> AttributeDefinition:
    return AttributeDefinition.objects.select_for_update().get(pk=definition.pk)


def _quoted(uses: list[merge_tags.TagUse]) -> str:
    names = [f"“{use.name}” ({use.status.lower()})" for use in uses]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def attribute_in_use_message(name: str, uses: list[merge_tags.TagUse]) -> str:
    """Why the attribute cannot change now, naming the campaigns being sent that use it;
    empty when none does."""
    sending = [use for use in uses if use.sending]
    if not sending:
        return ""
    return ngettext(
        "The campaign %(campaigns)s uses %(tag)s and has not finished sending: the "
        "attribute cannot be renamed, retyped or deleted until it is sent or cancelled.",
        "The campaigns %(campaigns)s use %(tag)s and have not finished sending: the "
        "attribute cannot be renamed, retyped or deleted until they are sent or cancelled.",
        len(sending),
    ) % {"campaigns": _quoted(sending), "tag": f"{{{{ attributes.{name} }}}}"}


def _refuse_while_sending(definition: AttributeDefinition) -> None:
    # The campaigns are locked too: one cannot start sending until this change commits.
    uses = merge_tags.sending(definition.account, definition.name, lock=True)
    if uses:
        raise AttributeInUse(attribute_in_use_message(definition.name, uses), code="in_use")


@transaction.atomic
def attribute_define(
    *, account: Account, actor: User | None, name: str, type: str, label: str = ""
) -> AttributeDefinition:
    definition = AttributeDefinition(
        account=account, name=name.strip(), type=type, label=label.strip()
    )
    definition.full_clean(validate_constraints=False)
    if _name_taken(account, definition.name):
        raise _duplicate(definition.name)
    _save_name(definition)
    audit_log(
        account=account, actor=actor, action="attribute.created", name=definition.name, type=type
    )
    return definition


def _attribute_name_check(account: Account, name: str, *, exclude: int | None = None) -> str:
    name = name.strip()
    try:
        validate_attribute_name(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    if _name_taken(account, name, exclude=exclude):
        raise _duplicate(name)
    return name


@transaction.atomic
def attribute_rename(
    *, definition: AttributeDefinition, actor: User | None, name: str, update_campaigns: bool
) -> int:
    """Give an attribute a new name; the contacts' values move to it in one UPDATE. With
    ``update_campaigns``, the drafts that use the old merge tag are changed to the new
    one; returns how many were. Renaming to its own name changes nothing."""
    definition = _locked(definition)
    account = definition.account
    old = definition.name
    new = _attribute_name_check(account, name, exclude=definition.pk)
    if new == old:
        return 0
    _refuse_while_sending(definition)
    # The name first: a clash with a name taken meanwhile stops before any value moves.
    definition.name = new
    _save_name(definition, update_fields=["name"])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET attributes = (attributes - %(old)s) "
            "|| jsonb_build_object(%(new)s::text, attributes -> %(old)s) "
            "WHERE account_id = %(account)s AND attributes ? %(old)s",
            {"old": old, "new": new, "account": account.pk},
        )
        moved = cursor.rowcount
    campaigns = merge_tags.rename(account, old, new) if update_campaigns else 0
    audit_log(
        account=account,
        actor=actor,
        action="attribute.renamed",
        old=old,
        new=new,
        contacts=moved,
        campaigns=campaigns,
    )
    return campaigns


# A change of type reads every stored value as a form or a file would give it in the new
# type (``clean_attribute``), in SQL: the confirmation page counts what would be dropped
# without loading the values, and the change is one UPDATE that reads each row as it
# writes it, so a value edited meanwhile is converted from what it is by then. The rules
# are ``clean_attribute``'s, for the forms it reads; tests/contacts/test_attribute_retype.py
# holds the two to the same answers.

# The value as text (``_as_text``: booleans read yes and no), trimmed as ``str.strip``.
_RAW = """CASE jsonb_typeof(attributes -> %(name)s)
    WHEN 'string' THEN attributes ->> %(name)s
    WHEN 'boolean' THEN CASE WHEN (attributes -> %(name)s)::boolean THEN 'yes' ELSE 'no' END
    WHEN 'null' THEN NULL
    ELSE (attributes -> %(name)s)::text END"""
_TEXT = f"regexp_replace({_RAW}, '^[[:space:]]+|[[:space:]]+$', '', 'g')"

_AS_TEXT = f"""(SELECT CASE WHEN s <> '' THEN to_jsonb(s) END
    FROM (SELECT {_TEXT} AS s) AS t)"""  # noqa: S608 - this module's constants

# ``Decimal``'s numbers, with a decimal comma when it is the only one and there is no dot.
_AS_NUMBER = f"""(SELECT CASE
        WHEN n ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{{1,3}})?$'
        THEN to_jsonb(trim_scale(n::numeric)) END
    FROM (SELECT CASE WHEN s LIKE '%%,%%' AND s NOT LIKE '%%,%%,%%' AND s NOT LIKE '%%.%%'
        THEN replace(s, ',', '.') ELSE s END AS n
        FROM (SELECT {_TEXT} AS s) AS t) AS u)"""  # noqa: S608 - this module's constants

_AS_BOOLEAN = f"""(SELECT CASE
        WHEN w = ANY(%(true_words)s) THEN 'true'::jsonb
        WHEN w = ANY(%(false_words)s) THEN 'false'::jsonb END
    FROM (SELECT lower({_TEXT}) AS w) AS t)"""  # noqa: S608 - this module's constants

# ``parse_when``: ISO 8601 as ``datetime.fromisoformat`` reads it (YYYY-MM-DD or
# YYYYMMDD, then maybe a time and an offset), or day and month either way round with a
# four-digit year, the day first when it can be. The day as written is kept.
_TIME = r"([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2})(?:[.,][0-9]+)?)?)?"
_OFFSET = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)?)?"
_ISO_DATE = rf"^([0-9]{{4}})(-?)([0-9]{{2}})\2([0-9]{{2}})(?:.{_TIME}{_OFFSET})?$"
_DAY_MONTH_YEAR = (
    r"^([0-9]{1,2})([./-])([0-9]{1,2})\2([0-9]{4})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.][0-9]+)?)?)?$"
)
_AS_DATE = f"""(SELECT CASE
        WHEN y >= 1 AND m BETWEEN 1 AND 12
        AND d BETWEEN 1 AND CASE WHEN m IN (4, 6, 9, 11) THEN 30 WHEN m <> 2 THEN 31
            WHEN mod(y, 4) = 0 AND (mod(y, 100) <> 0 OR mod(y, 400) = 0) THEN 29 ELSE 28 END
        AND coalesce(hh, 0) <= 23 AND coalesce(mi, 0) <= 59 AND coalesce(ss, 0) <= 59
        THEN to_jsonb(lpad(y::text, 4, '0') || '-' || lpad(m::text, 2, '0') || '-'
            || lpad(d::text, 2, '0')) END
    FROM (SELECT coalesce(iso[1], dmy[4])::int AS y,
            CASE WHEN iso IS NOT NULL THEN iso[3]::int WHEN day_first THEN dmy[3]::int
                ELSE dmy[1]::int END AS m,
            CASE WHEN iso IS NOT NULL THEN iso[4]::int WHEN day_first THEN dmy[1]::int
                ELSE dmy[3]::int END AS d,
            coalesce(iso[5], dmy[5])::int AS hh,
            coalesce(iso[6], dmy[6])::int AS mi,
            coalesce(iso[7], dmy[7])::int AS ss
        FROM (SELECT iso, dmy, dmy[3]::int <= 12 OR dmy[1]::int > 12 AS day_first
            FROM (SELECT regexp_match(s, %(iso_date)s) AS iso,
                    regexp_match(s, %(day_month_year)s) AS dmy
                FROM (SELECT {_TEXT} AS s) AS t) AS r) AS q) AS p)"""  # noqa: S608 - constants

_CONVERTED = {
    AttributeDefinition.Type.TEXT: _AS_TEXT,
    AttributeDefinition.Type.NUMBER: _AS_NUMBER,
    AttributeDefinition.Type.DATE: _AS_DATE,
    AttributeDefinition.Type.BOOLEAN: _AS_BOOLEAN,
}


def _retype_sql(definition: AttributeDefinition, type: str) -> tuple[str, dict[str, Any]]:
    """The value of ``attributes`` read as ``type``: SQL over a row of contacts_contact,
    JSON or NULL when it cannot be read so, and its parameters."""
    if type not in AttributeDefinition.Type.values:
        raise ValidationError({"type": f"“{type}” is not a type of attribute."})
    return _CONVERTED[AttributeDefinition.Type(type)], {
        "name": definition.name,
        "account": definition.account_id,
        "true_words": sorted(TRUE_WORDS),
        "false_words": sorted(FALSE_WORDS - {""}),
        "iso_date": _ISO_DATE,
        "day_month_year": _DAY_MONTH_YEAR,
    }


def _type_label(type: str) -> str:
    return str(AttributeDefinition.Type(type).label).lower()


@dataclass
class RetypePlan:
    """What changing an attribute's type does to the stored values."""

    holding: int  # contacts with a value
    failing: int  # values that cannot be read in the new type: dropped
    examples: list[str]  # a few of them

    @property
    def converting(self) -> int:
        return self.holding - self.failing


def attribute_retype_plan(definition: AttributeDefinition, type: str) -> RetypePlan:
    """How many stored values ``type`` could not read, counted in the database, with the
    first few of them."""
    converted, params = _retype_sql(definition, type)
    holders = "FROM contacts_contact WHERE account_id = %(account)s AND attributes ? %(name)s"
    failing = f"attributes -> %(name)s <> 'null'::jsonb AND {converted} IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE {failing}) {holders}", params)
        holding, failing_count = cursor.fetchone()
        examples: list[str] = []
        if failing_count:
            cursor.execute(
                f"SELECT left({_RAW}, 50) {holders} AND {failing} ORDER BY id LIMIT 3", params
            )
            examples = [text for (text,) in cursor.fetchall()]
    return RetypePlan(holding=holding, failing=failing_count, examples=examples)


def _would_drop_message(plan: RetypePlan, type: str, *, confirmed: int | None) -> str:
    values = {
        "failing": plan.failing,
        "holding": plan.holding,
        "type": _type_label(type),
        "confirmed": confirmed,
        "examples": ", ".join(f"“{example}”" for example in plan.examples),
    }
    if not confirmed:
        return (
            ngettext(
                "%(failing)s of %(holding)s stored values cannot be read as %(type)s "
                "(e.g. %(examples)s); confirm to drop it.",
                "%(failing)s of %(holding)s stored values cannot be read as %(type)s "
                "(e.g. %(examples)s); confirm to drop them.",
                plan.failing,
            )
            % values
        )
    if not plan.failing:
        return (
            f"The stored values changed since the confirmation: none would be dropped now, "
            f"not {confirmed}. Confirm again."
        )
    return (
        ngettext(
            "The stored values changed since the confirmation: %(failing)s value would be "
            "dropped now, not %(confirmed)s. Check it and confirm again.",
            "The stored values changed since the confirmation: %(failing)s values would be "
            "dropped now, not %(confirmed)s. Check them and confirm again.",
            plan.failing,
        )
        % values
    )


@transaction.atomic
def attribute_retype(
    *,
    definition: AttributeDefinition,
    actor: User | None,
    type: str,
    drop_invalid: bool,
    expected_drops: int | None = None,
) -> RetypePlan:
    """Change an attribute's type, converting its stored values in one UPDATE. Values
    that cannot be converted are dropped only with ``drop_invalid``, and then, when
    ``expected_drops`` says how many the customer saw, only if that many still are:
    otherwise nothing changes and AttributeValuesWouldDrop says how many are now."""
    # The definition is locked first: two changes at once would convert twice.
    definition = _locked(definition)
    plan = attribute_retype_plan(definition, type)
    if definition.type == type:
        return plan
    _refuse_while_sending(definition)

    def check(plan: RetypePlan) -> None:
        if expected_drops is not None and plan.failing != expected_drops:
            raise AttributeValuesWouldDrop(
                _would_drop_message(plan, type, confirmed=expected_drops),
                failing=plan.failing,
            )
        if plan.failing and not drop_invalid:
            raise AttributeValuesWouldDrop(
                _would_drop_message(plan, type, confirmed=None), failing=plan.failing
            )

    check(plan)
    converted, params = _retype_sql(definition, type)
    with connection.cursor() as cursor:
        # A JSON null holds no value: removed, not counted as dropped.
        cursor.execute(
            "UPDATE contacts_contact SET attributes = attributes - %(name)s "
            "WHERE account_id = %(account)s AND attributes -> %(name)s = 'null'::jsonb",
            params,
        )
        # Each row is read as the UPDATE writes it: what it drops is what it reads, even
        # for a value changed since the count above.
        cursor.execute(
            f"""WITH changed AS (
                UPDATE contacts_contact SET attributes = (attributes - %(name)s)
                    || jsonb_strip_nulls(jsonb_build_object(%(name)s::text, {converted}))
                WHERE account_id = %(account)s AND attributes ? %(name)s
                RETURNING attributes ? %(name)s AS kept)
            SELECT count(*) FILTER (WHERE kept), count(*) FILTER (WHERE NOT kept)
            FROM changed""",  # noqa: S608 - this module's constants, values are parameters
            params,
        )
        kept, dropped = cursor.fetchone()
    if dropped != plan.failing:
        # Values changed between the count and the UPDATE: undone unless still agreed.
        check(RetypePlan(holding=kept + dropped, failing=dropped, examples=plan.examples))
        plan = RetypePlan(holding=kept + dropped, failing=dropped, examples=plan.examples)
    old = definition.type
    definition.type = type
    definition.save(update_fields=["type"])
    audit_log(
        account=definition.account,
        actor=actor,
        action="attribute.retyped",
        name=definition.name,
        old=old,
        new=type,
        converted=kept,
        dropped=dropped,
    )
    return plan


@transaction.atomic
def attribute_delete(*, definition: AttributeDefinition, actor: User | None) -> int:
    """Delete an attribute and every contact's value of it; returns how many contacts
    held one."""
    definition = _locked(definition)
    _refuse_while_sending(definition)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET attributes = attributes - %(name)s "
            "WHERE account_id = %(account)s AND attributes ? %(name)s",
            {"name": definition.name, "account": definition.account_id},
        )
        cleared = cursor.rowcount
    audit_log(
        account=definition.account,
        actor=actor,
        action="attribute.deleted",
        name=definition.name,
        contacts=cleared,
    )
    definition.delete()
    return cleared


@transaction.atomic
def attribute_update(
    *,
    definition: AttributeDefinition,
    actor: User | None,
    name: str | None = None,
    label: str | None = None,
    type: str | None = None,
    update_campaigns: bool = False,
    drop_invalid: bool = False,
) -> AttributeDefinition:
    """Retype, rename and relabel in one go (the API's PATCH); all or nothing."""
    definition = _locked(definition)
    if type is not None and type != definition.type:
        attribute_retype(definition=definition, actor=actor, type=type, drop_invalid=drop_invalid)
        definition.refresh_from_db()
    if name is not None and name.strip() != definition.name:
        attribute_rename(
            definition=definition, actor=actor, name=name, update_campaigns=update_campaigns
        )
        definition.refresh_from_db()
    if label is not None and label.strip() != definition.label:
        definition.label = label.strip()
        definition.save(update_fields=["label"])
        audit_log(
            account=definition.account,
            actor=actor,
            action="attribute.relabelled",
            name=definition.name,
            label=definition.label,
        )
    return definition
