"""Mailbox providers: who keeps the mailbox behind an address.

Pacing opens connections per provider, and a segment can pick contacts by provider. The
domain's name says it for the big consumer services (gmail.com, hotmail.fr, icloud.com).
A domain under another name, a company on Google Workspace or Microsoft 365, says it by
its mail exchangers: the beat looks them up (``classify_due``) and keeps the answer in
``MailboxDomain``, so neither a send nor a segment ever waits for the DNS.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.utils import timezone

from domains import dns
from domains.models import MailboxDomain

logger = logging.getLogger(__name__)

GMAIL = "gmail"
MICROSOFT = "microsoft"
YAHOO = "yahoo"
APPLE = "apple"
OTHER = "other"

LABELS = {
    GMAIL: "Gmail",
    MICROSOFT: "Microsoft (Outlook, Hotmail)",
    YAHOO: "Yahoo and AOL",
    APPLE: "Apple (iCloud)",
    OTHER: "Other",
}

# Each provider's own domains, by their exact names...
NAMES = {
    GMAIL: ("gmail.com", "googlemail.com"),
    MICROSOFT: ("msn.com", "passport.com"),
    YAHOO: ("ymail.com", "rocketmail.com", "aol.com", "aim.com"),
    APPLE: ("icloud.com", "me.com", "mac.com"),
}
# ...and the brands with a domain per country (yahoo.co.uk, hotmail.fr, live.be): the
# first label of a name with a dot.
BRANDS = {
    GMAIL: (),
    MICROSOFT: ("outlook", "hotmail", "live", "windowslive"),
    YAHOO: ("yahoo",),
    APPLE: (),
}
# Where the providers' mail exchangers live, for the domains they host under another name.
MX_SUFFIXES = (
    ("google.com", GMAIL),
    ("googlemail.com", GMAIL),
    ("outlook.com", MICROSOFT),
    ("yahoodns.net", YAHOO),
    ("icloud.com", APPLE),
)
# A classified domain is looked up again after this long, and forgotten after three times
# as long without a look (no contact has it any more). A lookup that failed is tried
# again the next day.
REFRESH = dt.timedelta(days=30)
FORGET = 3 * REFRESH
RETRY = dt.timedelta(days=1)

_BY_NAME = {name: provider for provider, names in NAMES.items() for name in names}
_BY_BRAND = {brand: provider for provider, brands in BRANDS.items() for brand in brands}


def domain_of(address: str) -> str:
    """The domain of an address (after its last @), or a domain as it is, lower case."""
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def by_name(address: str) -> str:
    """The provider an address's or a domain's name says, or ``OTHER``."""
    name = domain_of(address)
    if name in _BY_NAME:
        return _BY_NAME[name]
    if "." in name:
        return _BY_BRAND.get(name.partition(".")[0], OTHER)
    return OTHER


def by_exchangers(exchangers: Iterable[str]) -> str:
    """The provider whose servers the mail exchangers are, or ``OTHER``."""
    for exchange in exchangers:
        name = exchange.lower().rstrip(".")
        for suffix, provider in MX_SUFFIXES:
            if name == suffix or name.endswith("." + suffix):
                return provider
    return OTHER


def of_addresses(addresses: Iterable[str]) -> dict[str, str]:
    """Each address's provider: by its domain's name, else as the beat classified the
    domain (one query for them all), else ``OTHER``."""
    found = {address: by_name(address) for address in addresses}
    unnamed = {domain_of(a) for a, provider in found.items() if provider == OTHER}
    if unnamed:
        hosted = dict(
            MailboxDomain.objects.filter(name__in=unnamed)
            .exclude(provider=OTHER)
            .values_list("name", "provider")
        )
        if hosted:
            for address, provider in found.items():
                if provider == OTHER:
                    found[address] = hosted.get(domain_of(address), OTHER)
    return found


def classify(name: str, *, now: dt.datetime | None = None) -> str | None:
    """Look the domain's mail exchangers up and keep the provider they say. None when
    the DNS did not answer (the domain is tried again after ``RETRY``)."""
    now = now or timezone.now()
    try:
        provider: str | None = by_exchangers(exchange for _, exchange in dns.mx_records(name))
    except dns.DnsUnavailable as error:
        logger.info("The mail exchangers of %s could not be looked up: %s", name, error)
        provider = None
    MailboxDomain.objects.update_or_create(
        name=name,
        defaults={
            "provider": provider or OTHER,
            # Seen as due again RETRY from now.
            "checked_at": now if provider else now - REFRESH + RETRY,
        },
    )
    return provider


# Contacts' domains with a dot inside and a name that says nothing of the provider, never
# classified or classified before %(stale)s.
_DUE = """
    SELECT d FROM (SELECT DISTINCT split_part(email, '@', 2) AS d FROM contacts_contact) AS x
    LEFT JOIN domains_mailboxdomain AS m ON m.name = d
    WHERE d LIKE '%%_._%%'
      AND NOT (d = ANY(%(names)s) OR split_part(d, '.', 1) = ANY(%(brands)s))
      AND (m.name IS NULL OR m.checked_at < %(stale)s)
    ORDER BY m.checked_at NULLS FIRST, d
    LIMIT %(limit)s
"""


def due(*, limit: int, now: dt.datetime | None = None) -> list[str]:
    """Domains of contacts whose names say nothing of their provider, never classified
    or classified more than ``REFRESH`` ago, oldest first."""
    now = now or timezone.now()
    params: dict[str, Any] = {
        "names": list(_BY_NAME),
        "brands": list(_BY_BRAND),
        "stale": now - REFRESH,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_DUE, params)
        return [row[0] for row in cursor.fetchall()]


def classify_due(*, limit: int = 300, now: dt.datetime | None = None) -> int:
    """The beat's job: classify the domains that are due, and forget those no contact has
    had for ``FORGET``. Returns how many were looked up."""
    now = now or timezone.now()
    names = due(limit=limit, now=now)
    for name in names:
        classify(name, now=now)
    MailboxDomain.objects.filter(checked_at__lt=now - FORGET).delete()
    return len(names)
