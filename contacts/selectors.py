"""Reads of the customer's contacts, built to stay fast at a million rows: keyset paging
instead of OFFSET, counts that stop counting when they pass what a page can show."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, Func, OuterRef, Q, QuerySet, TextField

from accounts.models import Account, normalize_email
from contacts.models import (
    AttributeDefinition,
    Contact,
    ContactList,
    ImportJob,
    Subscription,
    Suppression,
    email_sha256,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000


class Sha256Hex(Func):
    """PostgreSQL's built-in sha256 of a text, as lower-case hex (no pgcrypto needed)."""

    template = "encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')"
    output_field = TextField()


def lists_with_counts(account: Account) -> QuerySet[ContactList]:
    S = Subscription.Status
    return ContactList.objects.for_account(account).annotate(
        subscribed=Count("subscriptions", filter=Q(subscriptions__status=S.SUBSCRIBED)),
        unconfirmed=Count("subscriptions", filter=Q(subscriptions__status=S.UNCONFIRMED)),
        unsubscribed=Count("subscriptions", filter=Q(subscriptions__status=S.UNSUBSCRIBED)),
    )


def attributes(account: Account) -> QuerySet[AttributeDefinition]:
    return AttributeDefinition.objects.for_account(account)


SORTS = {
    "email": ("email", "id"),
    "-email": ("-email", "-id"),
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
}


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_cursor: str | None
    total: int
    total_is_capped: bool


def _cursor_value(contact: Contact, sort: str) -> str:
    field = SORTS[sort][0].lstrip("-")
    value = getattr(contact, field)
    return f"{value.isoformat() if hasattr(value, 'isoformat') else value}|{contact.pk}"


def _after(queryset: QuerySet[Contact], sort: str, cursor: str) -> QuerySet[Contact]:
    value, _, pk = cursor.rpartition("|")
    if not pk.isdigit():
        return queryset
    field, _ = SORTS[sort]
    name = field.lstrip("-")
    op = "lt" if field.startswith("-") else "gt"
    return queryset.filter(Q(**{f"{name}__{op}": value}) | Q(**{name: value, f"id__{op}": int(pk)}))


def contacts_page(
    account: Account,
    *,
    contact_list: ContactList | None = None,
    status: str = "",
    search: str = "",
    sort: str = "email",
    cursor: str = "",
    page_size: int = PAGE_SIZE,
) -> ContactPage:
    """One page of contacts, by keyset: the cost of page 1,000 is the cost of page 1."""
    sort = sort if sort in SORTS else "email"
    queryset = Contact.objects.for_account(account)
    if contact_list is not None:
        memberships = Subscription.objects.filter(contact_list=contact_list, contact=OuterRef("pk"))
        if status:
            memberships = memberships.filter(status=status)
        queryset = queryset.filter(Exists(memberships))
    search = search.strip()
    if search:
        term = search.lower()
        queryset = queryset.filter(
            Q(email__startswith=term)
            | Q(email__icontains=term)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    filtered = queryset
    if cursor:
        queryset = _after(queryset, sort, cursor)
    rows = list(queryset.order_by(*SORTS[sort])[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    total = filtered[: COUNT_CAP + 1].count()
    return ContactPage(
        contacts=rows,
        next_cursor=_cursor_value(rows[-1], sort) if has_more and rows else None,
        total=min(total, COUNT_CAP),
        total_is_capped=total > COUNT_CAP,
    )


def subscriptions_of(contact: Contact) -> QuerySet[Subscription]:
    return contact.subscriptions.select_related("contact_list").order_by("contact_list__name")


def is_suppressed(account: Account, email: str) -> bool:
    return (
        Suppression.objects.applying_to(account).filter(email_sha256=email_sha256(email)).exists()
    )


def suppressed(account: Account) -> QuerySet[Suppression]:
    return (
        Suppression.objects.for_account(account)
        .select_related("created_by")
        .order_by("-created_at")
    )


def sendable_subscriptions(account: Account, list_ids: list[int]) -> QuerySet[Subscription]:
    """The audience of a send: subscribed to one of ``list_ids``, and on neither the
    account's suppression list nor the platform's "do not contact" list. Every place that
    builds an audience goes through here."""
    blocked = Suppression.objects.applying_to(account).filter(
        email_sha256=Sha256Hex(OuterRef("contact__email"))
    )
    return (
        Subscription.objects.for_account(account)
        .filter(contact_list_id__in=list_ids, status=Subscription.Status.SUBSCRIBED)
        .filter(~Exists(blocked))
    )


def imports(account: Account) -> QuerySet[ImportJob]:
    return ImportJob.objects.for_account(account).select_related("contact_list", "created_by")


def find_contact(account: Account, email: str) -> Contact | None:
    return Contact.objects.for_account(account).filter(email=normalize_email(email)).first()
