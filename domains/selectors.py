"""What the rest of Missive asks of sending domains: may this account send from this
address, as whom, and signed by which keys."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Account
from domains import dkim
from domains.models import DkimKey, SendingDomain
from domains.names import domain_of


def domains(account: Account) -> QuerySet[SendingDomain]:
    return SendingDomain.objects.for_account(account).order_by("name")


def verified_domain(account: Account, email: str) -> SendingDomain | None:
    """The account's verified (or failing) domain of ``email``, if it has one."""
    name = domain_of(email)
    if not name:
        return None
    return (
        SendingDomain.objects.for_account(account)
        .filter(name=name)
        .exclude(status=SendingDomain.Status.PENDING)
        .first()
    )


def shared_domain() -> SendingDomain | None:
    """The platform's shared domain, when operators set one up and it is verified."""
    name = settings.MISSIVE_SHARED_DOMAIN.lower()
    if not name:
        return None
    return (
        SendingDomain.objects.filter(account=None, name=name)
        .exclude(status=SendingDomain.Status.PENDING)
        .first()
    )


def uses_shared_domain(account: Account, email: str) -> bool:
    """Whether the account's mail from ``email`` goes out from the shared domain: it has
    no verified domain for the address and an operator allowed it the shared one."""
    return (
        account.shared_domain_allowed
        and verified_domain(account, email) is None
        and shared_domain() is not None
    )


def from_address_problem(account: Account, email: str) -> str | None:
    """Why the account may not send from ``email``, as a sentence to act on, or None."""
    if not settings.MISSIVE_REQUIRE_VERIFIED_DOMAIN:
        return None
    name = domain_of(email)
    if not name:
        return None  # the address itself is refused elsewhere, with its own message
    domain = verified_domain(account, email)
    if domain is not None:
        if domain.status == SendingDomain.Status.FAILING:
            return (
                f"The DNS records of {name} are missing since "
                f"{domain.failing_since:%Y-%m-%d}: publish them again and check the domain "
                f"on its page ({reverse('domain_detail', args=[domain.pk])})."
            )
        return None
    if uses_shared_domain(account, email):
        return None
    pending = SendingDomain.objects.for_account(account).filter(name=name).first()
    where = reverse("domain_detail", args=[pending.pk]) if pending else reverse("domains")
    if pending:
        return (
            f"{name} is not verified yet: publish its DNS records and check it on its page "
            f"({where})."
        )
    return (
        f"The sender address is on {name}, which is not a verified sending domain of this "
        f"account. Add and verify it under Settings → Sending domains ({where})."
    )


@dataclass(frozen=True)
class Sender:
    """Who a message is from, as it is written in its headers."""

    from_email: str
    from_name: str
    reply_to: str
    # The domain whose keys sign the message (None: not signed by Missive).
    domain: SendingDomain | None


def sender_for(account: Account, *, from_email: str, from_name: str, reply_to: str) -> Sender:
    """The campaign's sender, or, for an account sending from the shared domain, the
    shared address with the customer's name and the customer's address to reply to."""
    domain = verified_domain(account, from_email)
    if domain is None and uses_shared_domain(account, from_email):
        shared = shared_domain()
        assert shared is not None
        # The account's number keeps two accounts of one name from sharing an address.
        name = slugify(account.name)[:40].strip("-") or "account"
        local = f"{name}-{account.pk}"
        return Sender(
            from_email=f"{local}@{shared.name}",
            from_name=from_name or account.name,
            reply_to=reply_to or from_email,
            domain=shared,
        )
    return Sender(from_email=from_email, from_name=from_name, reply_to=reply_to, domain=domain)


def warmup_cap_today(domain: SendingDomain, today: dt.date | None = None) -> int | None:
    """How many messages the domain may send today under its warm-up (None: no cap).
    Days count in the account's time zone from the day the warm-up was turned on."""
    if not domain.warmup or domain.warmup_started_on is None or not domain.warmup_schedule:
        return None
    if today is None:
        zone = zoneinfo.ZoneInfo(domain.account.time_zone if domain.account else "UTC")
        today = timezone.now().astimezone(zone).date()
    day = (today - domain.warmup_started_on).days
    if day >= len(domain.warmup_schedule):
        return None
    return int(domain.warmup_schedule[max(day, 0)])


_SIGNERS: OrderedDict[tuple[int, tuple[int, ...]], dkim.Signer] = OrderedDict()


def signer_for(domain: SendingDomain | None) -> dkim.Signer | None:
    """The signer of the domain's current keys (RSA first), built once per process and
    set of keys; None when the domain has no key that signs."""
    if domain is None:
        return None
    keys = list(
        DkimKey.objects.filter(domain=domain, state=DkimKey.State.ACTIVE).order_by(
            "-algorithm", "pk"
        )
    )
    if not keys:
        return None
    cache_key = (domain.pk, tuple(k.pk for k in keys))
    signer = _SIGNERS.get(cache_key)
    if signer is None:
        signer = dkim.Signer(
            [
                dkim.SigningKey.load(domain.name, k.selector, k.algorithm, k.private_key)
                for k in keys
            ]
        )
        _SIGNERS[cache_key] = signer
        while len(_SIGNERS) > 64:
            _SIGNERS.popitem(last=False)
    return signer
