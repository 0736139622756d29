"""Writes to the customer's contacts: one function per use case, atomic, audited where
the controller must be able to show what happened to personal data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import Account, User, normalize_email
from accounts.services import audit_log
from contacts.models import (
    AttributeDefinition,
    Contact,
    ContactList,
    Subscription,
    Suppression,
    email_sha256,
)
from contacts.selectors import forget_list_counts, is_suppressed

S = Subscription.Status


def clean_email(value: str) -> str:
    """The address normalized, or ValidationError saying what is wrong with it."""
    email = normalize_email(value)
    if not email:
        raise ValidationError("The email address is empty.")
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"{value.strip()!r} is not a valid email address.") from None
    return email


TRUE_WORDS = {"1", "true", "yes", "y", "oui", "on", "x"}
FALSE_WORDS = {"0", "false", "no", "n", "non", "off", ""}


def clean_attribute(definition: AttributeDefinition, raw: object) -> object:
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
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError(f"{text!r} is not a date in the form YYYY-MM-DD.") from None
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
        raise ValidationError({"name": f"A list named {name!r} already exists."})
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
        raise ValidationError({"name": f"A list named {name!r} already exists."})
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
        raise ValidationError({"email": f"{email} is already a contact."})
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
        raise ValidationError({"email": f"{email} is already a contact."}) from None
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
        raise ValidationError({"name": f"An attribute named {definition.name!r} already exists."})
    definition.save()
    return definition
