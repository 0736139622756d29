"""Writes to the customer's contacts: one function per use case, atomic, audited where
the controller must be able to show what happened to personal data."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import Account, User, normalize_email
from accounts.services import audit_log
from contacts import merge_tags
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
        ids = list(only_here.values_list("pk", flat=True))
        Contact.objects.filter(pk__in=ids).delete()
        deleted = len(ids)
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
    lists: list[ContactList] = (),
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
        contact.attributes = clean_attributes(account, dict(fields.pop("attributes") or {}))
    for name in ("first_name", "last_name"):
        if name in fields:
            setattr(contact, name, str(fields.pop(name)).strip())
    if fields:
        raise ValidationError(dict.fromkeys(fields, "This field cannot be changed."))
    contact.updated_at = timezone.now()
    contact.save()
    return contact


@transaction.atomic
def contacts_delete(*, account: Account, actor: User | None, contact_ids: list[int]) -> int:
    deleted = Contact.objects.for_account(account).filter(pk__in=contact_ids)
    count = deleted.count()
    forget_list_counts(list(ContactList.objects.for_account(account).values_list("pk", flat=True)))
    deleted.delete()
    if count:
        audit_log(account=account, actor=actor, action="contacts.deleted", count=count)
    return count


@transaction.atomic
def contacts_unsubscribe(
    *,
    account: Account,
    actor: User | None,
    contact_ids: list[int],
    contact_list: ContactList | None = None,
) -> int:
    """Unsubscribe contacts from one list, or from every list of the account."""
    subscriptions = (
        Subscription.objects.for_account(account)
        .filter(contact_id__in=contact_ids)
        .exclude(status=S.UNSUBSCRIBED)
    )
    if contact_list is not None:
        subscriptions = subscriptions.filter(contact_list=contact_list)
    now = timezone.now()
    forget_list_counts(list(subscriptions.values_list("contact_list_id", flat=True).distinct()))
    count = subscriptions.update(status=S.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now)
    if count:
        audit_log(
            account=account,
            actor=actor,
            action="contacts.unsubscribed",
            count=count,
            list=contact_list.name if contact_list else "all lists",
        )
    return count


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
    return subscription


@transaction.atomic
def subscription_unsubscribe(
    *, subscription: Subscription, when: dt.datetime | None = None
) -> Subscription:
    """Honoured at once and idempotent: a second call changes nothing."""
    if subscription.status != S.UNSUBSCRIBED:
        now = when or timezone.now()
        subscription.status = S.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.updated_at = now
        subscription.save(update_fields=["status", "unsubscribed_at", "updated_at"])
        forget_list_counts([subscription.contact_list_id])
    return subscription


@transaction.atomic
def suppression_add(
    *,
    account: Account | None,
    email: str,
    reason: str = Suppression.Reason.MANUAL,
    actor: User | None = None,
    note: str = "",
) -> Suppression:
    """Suppress an address for ``account`` (or, with None, platform-wide). Idempotent."""
    email = clean_email(email)
    suppression, created = Suppression.objects.get_or_create(
        account=account,
        email_sha256=email_sha256(email),
        defaults={"reason": reason, "note": note[:200], "created_by": actor},
    )
    if created and account is not None:
        audit_log(account=account, actor=actor, action="suppression.added", reason=reason)
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, actor: User | None) -> None:
    if suppression.account_id is not None:
        audit_log(
            account=suppression.account,
            actor=actor,
            action="suppression.removed",
            reason=suppression.reason,
        )
    suppression.delete()


@transaction.atomic
def attribute_define(
    *, account: Account, actor: User | None, name: str, type: str, label: str = ""
) -> AttributeDefinition:
    definition = AttributeDefinition(
        account=account, name=name.strip(), type=type, label=label.strip()
    )
    definition.full_clean(validate_constraints=False)
    if AttributeDefinition.objects.for_account(account).filter(name=definition.name).exists():
        raise ValidationError(
            {
                "name": ValidationError(
                    f"An attribute named {definition.name!r} already exists.", code="unique"
                )
            }
        )
    definition.save()
    audit_log(
        account=account, actor=actor, action="attribute.created", name=definition.name, type=type
    )
    return definition


# --- Attributes: rename, retype, delete --------------------------------------------------
# An import mistake (a column taken as the wrong type, a typo in a name) must not be
# permanent. Each write moves the contacts' values with it, by set-based SQL over the
# account's contacts, in the same transaction as the definition.


class AttributeValuesWouldDrop(ValidationError):
    """A change of type would drop stored values, and the caller did not agree to it."""


def _attribute_name_check(account: Account, name: str, *, exclude: int | None = None) -> str:
    name = name.strip()
    try:
        validate_attribute_name(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    clash = AttributeDefinition.objects.for_account(account).filter(name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationError(
            {"name": ValidationError(f"An attribute named {name!r} already exists.", code="unique")}
        )
    return name


@transaction.atomic
def attribute_rename(
    *, definition: AttributeDefinition, actor: User | None, name: str, update_campaigns: bool
) -> int:
    """Give an attribute a new name; the contacts' values move to it in one UPDATE. With
    ``update_campaigns``, the drafts and scheduled campaigns that use the old merge tag
    are changed to the new one; returns how many were."""
    account = definition.account
    old = definition.name
    new = _attribute_name_check(account, name, exclude=definition.pk)
    if new == old:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET attributes = (attributes - %(old)s) "
            "|| jsonb_build_object(%(new)s::text, attributes -> %(old)s) "
            "WHERE account_id = %(account)s AND attributes ? %(old)s",
            {"old": old, "new": new, "account": account.pk},
        )
        moved = cursor.rowcount
    definition.name = new
    definition.save(update_fields=["name"])
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


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class RetypePlan:
    """What changing an attribute's type does to the stored values."""

    holding: int  # contacts with a value
    failing: int  # values that cannot be read in the new type: dropped
    examples: list[str]
    changes: list[tuple[int, str | None]]  # contact id → new value as JSON, or None to drop


def attribute_retype_plan(definition: AttributeDefinition, type: str) -> RetypePlan:
    """Each stored value read as ``type`` would read it from a form or a file."""
    if type not in AttributeDefinition.Type.values:
        raise ValidationError({"type": f"{type!r} is not a type of attribute."})
    target = AttributeDefinition(name=definition.name, type=type)
    values = (
        Contact.objects.for_account(definition.account)
        .filter(attributes__has_key=definition.name)
        .values_list("pk", f"attributes__{definition.name}")
        .order_by("pk")
    )
    holding = failing = 0
    examples: list[str] = []
    changes: list[tuple[int, str | None]] = []
    for pk, value in values.iterator(chunk_size=5000):
        holding += 1
        try:
            cleaned = clean_attribute(target, _as_text(value)) if value is not None else None
        except (ValidationError, ArithmeticError):
            cleaned = None
        if cleaned is None:
            failing += value is not None
            if value is not None and len(examples) < 3:
                examples.append(_as_text(value)[:50])
            changes.append((pk, None))
        elif cleaned != value:
            changes.append((pk, json.dumps(cleaned)))
    return RetypePlan(holding=holding, failing=failing, examples=examples, changes=changes)


@transaction.atomic
def attribute_retype(
    *, definition: AttributeDefinition, actor: User | None, type: str, drop_invalid: bool
) -> RetypePlan:
    """Change an attribute's type, converting its stored values. Values that cannot be
    converted are dropped, but only when ``drop_invalid`` says the customer saw how many."""
    # The definition is locked first: two changes at once would convert twice.
    definition = AttributeDefinition.objects.select_for_update().get(pk=definition.pk)
    plan = attribute_retype_plan(definition, type)
    if definition.type == type:
        return plan
    if plan.failing and not drop_invalid:
        examples = ", ".join(repr(e) for e in plan.examples)
        raise AttributeValuesWouldDrop(
            {
                "type": f"{plan.failing} of {plan.holding} stored values cannot be read as "
                f"{AttributeDefinition.Type(type).label.lower()} (e.g. {examples}); confirm "
                "to drop them."
            }
        )
    if plan.changes:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE contacts_contact c SET attributes = CASE WHEN v.value IS NULL "
                "THEN c.attributes - %(name)s "
                "ELSE jsonb_set(c.attributes, ARRAY[%(name)s], v.value) END "
                "FROM unnest(%(ids)s::bigint[], %(values)s::jsonb[]) AS v(id, value) "
                "WHERE c.id = v.id AND c.account_id = %(account)s",
                {
                    "name": definition.name,
                    "ids": [pk for pk, _ in plan.changes],
                    "values": [value for _, value in plan.changes],
                    "account": definition.account_id,
                },
            )
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
        converted=len(plan.changes) - plan.failing,
        dropped=plan.failing,
    )
    return plan


@transaction.atomic
def attribute_delete(*, definition: AttributeDefinition, actor: User | None) -> int:
    """Delete an attribute and every contact's value of it; returns how many contacts
    held one."""
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
    if type is not None and type != definition.type:
        attribute_retype(definition=definition, actor=actor, type=type, drop_invalid=drop_invalid)
        definition.refresh_from_db()
    if name is not None and name.strip() != definition.name:
        attribute_rename(
            definition=definition, actor=actor, name=name, update_campaigns=update_campaigns
        )
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
