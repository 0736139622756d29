"""Reads of the customer's contacts, built to stay fast at a million rows: keyset paging
instead of OFFSET, counts that stop counting when they pass what a page can show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import idna
from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Coalesce, Lower

from accounts.models import Account, normalize_email
from accounts.query import parse_cursor
from contacts.models import (
    AttributeDefinition,
    Contact,
    ContactList,
    ContactTag,
    ImportJob,
    Subscription,
    Suppression,
    Tag,
    email_sha256_forms,
    email_unicode_sha256,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000


class Sha256Hex(Func):
    """PostgreSQL's built-in sha256 of a text, as lower-case hex (no pgcrypto needed)."""

    template = "encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')"
    output_field = TextField()


def _counts_key(list_id: int) -> str:
    return f"list-counts:{list_id}"


def forget_list_counts(list_ids: list[int]) -> None:
    """Called by every write that changes who is on a list."""
    cache.delete_many([_counts_key(i) for i in list_ids])


def list_counts(list_ids: list[int]) -> dict[int, dict[str, int]]:
    """Subscriptions per status of each list. Counting a million-row list takes a
    noticeable fraction of a second, so counts are kept in the cache until a write to the
    list forgets them (and for at most ten minutes)."""
    cached = cache.get_many([_counts_key(i) for i in list_ids])
    counts = {i: cached[_counts_key(i)] for i in list_ids if _counts_key(i) in cached}
    missing = [i for i in list_ids if i not in counts]
    if missing:
        fresh = {i: dict.fromkeys(Subscription.Status.values, 0) for i in missing}
        rows = (
            Subscription.objects.filter(contact_list_id__in=missing)
            .values_list("contact_list_id", "status")
            .annotate(n=Count("*"))
            .order_by()
        )
        for list_id, status, n in rows:
            fresh[list_id][status] = n
        cache.set_many({_counts_key(i): c for i, c in fresh.items()}, timeout=600)
        counts.update(fresh)
    return counts


def lists_with_cached_counts(account: Account) -> list[ContactList]:
    """The account's lists, each with ``subscribed``, ``unconfirmed`` and
    ``unsubscribed`` counts from ``list_counts``."""
    lists = list(ContactList.objects.for_account(account))
    counts = list_counts([cl.pk for cl in lists])
    for contact_list in lists:
        for status, n in counts[contact_list.pk].items():
            setattr(contact_list, status, n)
    return lists


def list_with_counts(contact_list: ContactList) -> ContactList:
    for status, n in list_counts([contact_list.pk])[contact_list.pk].items():
        setattr(contact_list, status, n)
    return contact_list


def lists_with_counts(account: Account) -> QuerySet[ContactList]:
    """The same counts as a queryset, counted by the database each time."""
    S = Subscription.Status
    return ContactList.objects.for_account(account).annotate(
        subscribed=Count("subscriptions", filter=Q(subscriptions__status=S.SUBSCRIBED)),
        unconfirmed=Count("subscriptions", filter=Q(subscriptions__status=S.UNCONFIRMED)),
        unsubscribed=Count("subscriptions", filter=Q(subscriptions__status=S.UNSUBSCRIBED)),
    )


def attributes(account: Account) -> QuerySet[AttributeDefinition]:
    return AttributeDefinition.objects.for_account(account)


def attribute_holders(definition: AttributeDefinition) -> int:
    """How many of the account's contacts hold a value of the attribute."""
    return (
        Contact.objects.for_account(definition.account)
        .filter(attributes__has_key=definition.name)
        .count()
    )


# Email order reads the unique index on (account, lower(email)): addresses are stored
# lower-case and unique per account, so the address alone is a complete keyset cursor.
SORTS = {
    "email": ("email_key",),
    "-email": ("-email_key",),
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
}
# Each order's opposite: the page before a cursor is read backwards from it.
REVERSED = {"email": "-email", "-email": "email", "newest": "oldest", "oldest": "newest"}


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_cursor: str | None
    total: int
    total_is_capped: bool
    previous_cursor: str | None = None


def _cursor_value(contact: Contact, sort: str) -> str:
    if sort in ("email", "-email"):
        return f"{contact.email}|{contact.pk}"
    return f"{contact.created_at.isoformat()}|{contact.pk}"


def _after(queryset: QuerySet[Contact], sort: str, cursor: str) -> QuerySet[Contact]:
    """Rows after the cursor; ValidationError for a cursor that is not one of ours."""
    parsed = parse_cursor(cursor)
    if parsed is None:
        raise ValidationError("This cursor is not valid.")
    value, pk = parsed
    if sort in ("email", "-email"):
        return queryset.filter(**{"email_key__lt" if sort == "-email" else "email_key__gt": value})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("This cursor is not valid.") from None
    op = "lt" if sort == "newest" else "gt"
    return queryset.filter(
        Q(**{f"created_at__{op}": moment}) | Q(created_at=moment, **{f"id__{op}": pk})
    )


def _a_label_term(term: str) -> str | None:
    """A search for a Unicode domain (``bücher.de``, ``ana@bücher.de``) as it is stored:
    domains are kept in A-labels. Whole labels only: punycode has no partial form."""
    if term.isascii():
        return None
    try:
        if "@" in term:
            return normalize_email(term)
        return idna.encode(term, uts46=True).decode("ascii")
    except (ValidationError, UnicodeError):
        return None


def contacts_matching(
    account: Account,
    *,
    contact_list: ContactList | None = None,
    status: str = "",
    search: str = "",
    tag: Tag | None = None,
) -> QuerySet[Contact]:
    """The account's contacts that the filters of the contacts page (and of one list's
    page) keep: on ``contact_list`` (with ``status``), matching ``search``, with ``tag``.
    Unordered; the pages read it by keyset, the bulk actions as a whole."""
    queryset: QuerySet[Contact] = Contact.objects.for_account(account).alias(
        email_key=Lower("email")
    )
    if contact_list is not None:
        memberships = Subscription.objects.filter(contact_list=contact_list, contact=OuterRef("pk"))
        if status:
            memberships = memberships.filter(status=status)
        queryset = queryset.filter(Exists(memberships))
    if tag is not None:
        queryset = queryset.filter(
            Exists(ContactTag.objects.filter(tag=tag, contact=OuterRef("pk")))
        )
    search = search.strip()
    if search:
        term = search.lower()
        matches = (
            Q(email__startswith=term)
            | Q(email__icontains=term)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
        stored_form = _a_label_term(term)
        if stored_form:
            matches |= Q(email__icontains=stored_form)
        queryset = queryset.filter(matches)
    return queryset


def tag_names() -> ArraySubquery:
    """The names of a contact's tags, by name, as an array: read in the query of the rows
    themselves (``.annotate(tag_names=tag_names())``), not one more query per page."""
    return ArraySubquery(
        ContactTag.objects.filter(contact=OuterRef("pk"))
        .order_by(Lower("tag__name"))
        .values("tag__name")
    )


def contacts_page(
    account: Account,
    *,
    contact_list: ContactList | None = None,
    status: str = "",
    search: str = "",
    tag: Tag | None = None,
    sort: str = "email",
    cursor: str = "",
    before: str = "",
    page_size: int = PAGE_SIZE,
) -> ContactPage:
    """One page of contacts, by keyset: the cost of page 1,000 is the cost of page 1.
    ``cursor`` reads the page after a row, ``before`` the page before one. Each contact
    comes with ``tag_names``."""
    sort = sort if sort in SORTS else "email"
    queryset = contacts_matching(
        account, contact_list=contact_list, status=status, search=search, tag=tag
    )
    filtered = queryset
    queryset = queryset.annotate(tag_names=tag_names())
    rows: list[Contact] | None = None
    if before:
        backwards = REVERSED[sort]
        earlier = list(
            _after(queryset, backwards, before).order_by(*SORTS[backwards])[: page_size + 1]
        )
        # Near the start a page read backwards would come out short: the first page is
        # shown instead, so that pages stay the same whichever way they are reached.
        if len(earlier) > page_size:
            rows = earlier[:page_size][::-1]
            has_more = has_previous = True
    if rows is None:
        if cursor:
            queryset = _after(queryset, sort, cursor)
        rows = list(queryset.order_by(*SORTS[sort])[: page_size + 1])
        has_more = len(rows) > page_size
        rows = rows[:page_size]
        # A cursor comes from a page before this one.
        has_previous = bool(cursor)
    total = filtered[: COUNT_CAP + 1].count()
    return ContactPage(
        contacts=rows,
        next_cursor=_cursor_value(rows[-1], sort) if has_more and rows else None,
        previous_cursor=_cursor_value(rows[0], sort) if has_previous and rows else None,
        total=min(total, COUNT_CAP),
        total_is_capped=total > COUNT_CAP,
    )


def subscriptions_of(contact: Contact) -> QuerySet[Subscription]:
    return contact.subscriptions.select_related("contact_list").order_by("contact_list__name")


def is_suppressed(account: Account, email: str) -> bool:
    return (
        Suppression.objects.applying_to(account)
        .filter(email_sha256__in=email_sha256_forms(email))
        .exists()
    )


def suppressed(account: Account) -> QuerySet[Suppression]:
    return (
        Suppression.objects.for_account(account)
        .select_related("created_by")
        .order_by("-created_at")
    )


def suppressed_in_unicode_form(account: Account, emails: Iterable[str]) -> set[str]:
    """Of ``emails`` (stored, so normalized), those on a list that applies to ``account``
    under the hash of their U-label form only: entries older versions stored for an
    erased person, which no migration could give an A-label twin. SQL that hashes stored
    addresses cannot find them (PostgreSQL cannot decode punycode), so the gates that do
    (the snapshot, the send claim) ask here too. Only an address with an A-label domain
    can have such an entry: for emails without one, no query."""
    by_hash: dict[str, list[str]] = {}
    for email in emails:
        if "xn--" in email and (digest := email_unicode_sha256(email)):
            by_hash.setdefault(digest, []).append(email)
    if not by_hash:
        return set()
    found = (
        Suppression.objects.applying_to(account)
        .filter(email_sha256__in=list(by_hash))
        .values_list("email_sha256", flat=True)
    )
    return {email for digest in found for email in by_hash[digest]}


# The annotation of ``subscribed_flagged``: the contact's address is suppressed.
SUPPRESSED = "suppressed"


def subscribed_flagged(account: Account, list_ids: list[int]) -> QuerySet[Subscription]:
    """The subscriptions to ``list_ids`` that are subscribed, each annotated ``suppressed``:
    whether the account's suppression list or the platform's "do not contact" list holds
    the contact's address. A send that counts whom it leaves out reads both at once."""
    blocked = Suppression.objects.applying_to(account).filter(
        email_sha256=Sha256Hex(OuterRef("contact__email"))
    )
    subscribed = Subscription.objects.for_account(account).filter(
        contact_list_id__in=list_ids, status=Subscription.Status.SUBSCRIBED
    )
    # The entries SQL cannot find (suppressed_in_unicode_form), looked up for the few
    # subscribed contacts with an A-label domain.
    candidates = (
        Contact.objects.for_account(account)
        .filter(email__contains="xn--")
        .filter(Exists(subscribed.filter(contact=OuterRef("pk"))))
        .values_list("pk", "email")
    )
    emails = dict(candidates)
    legacy = suppressed_in_unicode_form(account, emails.values())
    flag = Q(Exists(blocked))
    if legacy:
        flag |= Q(contact_id__in=[pk for pk, email in emails.items() if email in legacy])
    return subscribed.annotate(**{SUPPRESSED: ExpressionWrapper(flag, output_field=BooleanField())})


def sendable_subscriptions(account: Account, list_ids: list[int]) -> QuerySet[Subscription]:
    """The audience of a send: subscribed to one of ``list_ids``, and on neither the
    account's suppression list nor the platform's "do not contact" list. Every place that
    builds an audience goes through here (or through ``subscribed_flagged``, its flags)."""
    return subscribed_flagged(account, list_ids).filter(**{SUPPRESSED: False})


def imports(account: Account) -> QuerySet[ImportJob]:
    return ImportJob.objects.for_account(account).select_related("contact_list", "created_by")


def find_contact(account: Account, email: str) -> Contact | None:
    return Contact.objects.for_account(account).filter(email=normalize_email(email)).first()


# --- Tags ---------------------------------------------------------------------------------


def tags(account: Account) -> QuerySet[Tag]:
    """The account's tags, by name (case aside)."""
    return Tag.objects.for_account(account)


def tags_with_counts(account: Account) -> QuerySet[Tag]:
    """The account's tags, each with ``contact_count``: how many contacts have it (read from
    the unique (tag, contact) index, one count per tag)."""
    counts = (
        ContactTag.objects.filter(tag=OuterRef("pk"))
        .order_by()
        .values("tag")
        .annotate(n=Count("*"))
        .values("n")
    )
    return tags(account).annotate(
        contact_count=Coalesce(Subquery(counts, output_field=IntegerField()), 0)
    )


def find_tag(account: Account, name: str) -> Tag | None:
    """The account's tag of that name, whatever its case (the unique index's own
    ``lower(name)``), or None."""
    return (
        tags(account)
        .alias(name_key=Lower("name"))
        .filter(name_key=Lower(Value(name.strip())))
        .first()
    )


def tag_names_of(contact: Contact) -> list[str]:
    """The names of a contact's tags, by name; the tags of the contact's own account."""
    return list(
        ContactTag.objects.filter(contact=contact, tag__account_id=contact.account_id)
        .order_by(Lower("tag__name"))
        .values_list("tag__name", flat=True)
    )


def tags_of(account: Account, contact: Contact) -> QuerySet[Tag]:
    """The tags of one of the account's contacts, by name."""
    return tags(account).filter(
        Exists(ContactTag.objects.filter(tag=OuterRef("pk"), contact=contact))
    )
