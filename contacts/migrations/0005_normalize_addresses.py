"""Addresses stored before Missive had one normalization: the forms and the API kept a
Unicode domain (``ana@bücher.de``) while the importer wrote its A-labels
(``ana@xn--bcher-kva.de``), so one person could be two contacts, and a suppression hashed
from one form did not stop mail to the other.

1. Suppressions. Only a hash is stored, so an entry cannot be rewritten from itself. For
   every contact whose address was stored or may have been hashed in another form, an
   entry under any of those forms' hashes gets a twin under the normalized form's hash, in
   the same scope (the account's list or the platform's). Entries for addresses no contact
   has are left as they are: lookups by address check both forms' hashes
   (``contacts.models.email_sha256_forms``).
2. Contacts. Each address not in normalized form is rewritten. When that makes two
   contacts of one account one person, the older contact is kept and the newer merged into
   it: subscriptions to lists the older one is not on move over; where both are on a list
   the older one's subscription stays, unsubscribed if the newer one was (mailing someone
   who left is the worse mistake), replaced by the newer one's when only that one holds a
   confirmed consent; names and attributes the older one lacks are copied;
   deliveries and data requests move over where they can, the others keep their row
   without a contact, as after an erasure. Then the newer contact is deleted.

The normalization is copied here, frozen, as migrations must not follow later changes of
the code.
"""

import hashlib

import idna
from django.db import migrations
from django.db.models import Q
from django.db.models.functions import Lower

# Any character outside printable ASCII, an upper-case letter, or an A-label.
_MAYBE_UNNORMALIZED = r"[^!-~]|[A-Z]|xn--"


class _Invalid(Exception):
    pass


def _normalize(email):
    email = (email or "").strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or (domain.isascii() and "xn--" not in domain):
        return email
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except UnicodeError:
        raise _Invalid(email) from None


def _unicode_form(email):
    local, _, domain = email.rpartition("@")
    if "xn--" not in domain:
        return email
    try:
        return f"{local}@{idna.decode(domain)}"
    except UnicodeError:
        return email


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _twin_suppressions(Contact, Suppression, contact, normalized):
    other_forms = {contact.email, contact.email.strip().lower(), _unicode_form(normalized)}
    other_hashes = {_sha256(form) for form in other_forms} - {_sha256(normalized)}
    entries = Suppression.objects.filter(
        Q(account_id=contact.account_id) | Q(account__isnull=True),
        email_sha256__in=other_hashes,
    )
    for entry in entries:
        Suppression.objects.get_or_create(
            account_id=entry.account_id,
            email_sha256=_sha256(normalized),
            defaults={
                "reason": entry.reason,
                "note": entry.note,
                "created_by_id": entry.created_by_id,
                "created_at": entry.created_at,
            },
        )


def _merge(Contact, Subscription, DataRequest, connection, keep, drop):
    # Updates, not save(): the models' own save() may hold code of a later version.
    kept = dict(
        Subscription.objects.filter(contact_id=keep.pk).values_list("contact_list_id", "status")
    )
    for subscription in Subscription.objects.filter(contact_id=drop.pk):
        status = kept.get(subscription.contact_list_id)
        if status is None:
            Subscription.objects.filter(pk=subscription.pk).update(contact_id=keep.pk)
        elif subscription.status == "unsubscribed" and status != "unsubscribed":
            Subscription.objects.filter(
                contact_id=keep.pk, contact_list_id=subscription.contact_list_id
            ).update(status="unsubscribed", unsubscribed_at=subscription.unsubscribed_at)
        elif subscription.status == "subscribed" and status == "unconfirmed":
            # The newer one holds the confirmed consent: its proof replaces the pending one.
            Subscription.objects.filter(
                contact_id=keep.pk, contact_list_id=subscription.contact_list_id
            ).delete()
            Subscription.objects.filter(pk=subscription.pk).update(contact_id=keep.pk)
    objections = [t for t in (keep.tracking_objected_at, drop.tracking_objected_at) if t]
    activity = [t for t in (keep.last_activity_at, drop.last_activity_at) if t]
    Contact.objects.filter(pk=keep.pk).update(
        first_name=keep.first_name or drop.first_name,
        last_name=keep.last_name or drop.last_name,
        attributes={**(drop.attributes or {}), **(keep.attributes or {})},
        tracking_objected_at=min(objections) if objections else None,
        last_activity_at=max(activity) if activity else None,
    )
    DataRequest.objects.filter(contact_id=drop.pk).update(contact_id=keep.pk)
    if "campaigns_delivery" in connection.introspection.table_names():
        with connection.cursor() as cursor:
            # One delivery per campaign and contact: those of a campaign both received
            # stay with no contact, as an erased person's do.
            cursor.execute(
                """
                UPDATE campaigns_delivery AS d SET contact_id = %s
                WHERE d.contact_id = %s AND NOT EXISTS (
                    SELECT 1 FROM campaigns_delivery AS k
                    WHERE k.campaign_id = d.campaign_id AND k.contact_id = %s)
                """,
                [keep.pk, drop.pk, keep.pk],
            )
            cursor.execute(
                "UPDATE campaigns_delivery SET contact_id = NULL WHERE contact_id = %s",
                [drop.pk],
            )
    Subscription.objects.filter(contact_id=drop.pk).delete()
    Contact.objects.filter(pk=drop.pk).delete()


def normalize_addresses(apps, schema_editor):
    Contact = apps.get_model("contacts", "Contact")
    Subscription = apps.get_model("contacts", "Subscription")
    Suppression = apps.get_model("contacts", "Suppression")
    DataRequest = apps.get_model("contacts", "DataRequest")
    connection = schema_editor.connection

    candidates = list(
        Contact.objects.filter(email__regex=_MAYBE_UNNORMALIZED).values_list("pk", flat=True)
    )
    for pk in candidates:
        contact = Contact.objects.filter(pk=pk).first()
        if contact is None:  # merged into an older contact already
            continue
        try:
            normalized = _normalize(contact.email)
        except _Invalid:
            continue  # no A-label form: left as it was, it cannot be delivered anyway
        _twin_suppressions(Contact, Suppression, contact, normalized)
        if normalized == contact.email:
            continue
        same = (
            Contact.objects.alias(email_key=Lower("email"))
            .filter(account_id=contact.account_id, email_key=normalized)
            .exclude(pk=contact.pk)
            .first()
        )
        if same is not None:
            keep, drop = sorted([contact, same], key=lambda c: (c.created_at, c.pk))
            _merge(Contact, Subscription, DataRequest, connection, keep, drop)
            if keep.pk != contact.pk:
                continue
        Contact.objects.filter(pk=contact.pk).update(email=normalized)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_import_warnings_and_retries"),
    ]

    operations = [
        migrations.RunPython(normalize_addresses, migrations.RunPython.noop, elidable=True),
    ]
