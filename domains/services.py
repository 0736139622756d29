"""Sending domains: the one place that adds, checks, re-keys, changes and removes them.

Every write is audited in the account's log. A check looks the records up over DNS
(domains.checks), then, in one transaction on the locked domain row:

- a DKIM key found published is marked so; the newest published key of an algorithm
  becomes the signing one, and the key it replaces is kept (still published, still valid
  for messages in flight) for MISSIVE_DKIM_GRACE_DAYS;
- a domain whose signing key is found becomes verified (unless another account verified
  it first: the partial unique index decides, not a read);
- a verified domain whose signing key is no longer found becomes failing, and its owners
  are told by mail; found again, it is verified again and they are told too.

A lookup that could not be made (a DNS timeout) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.mail import send_notice
from accounts.models import Account, Membership, User
from accounts.roles import Role
from accounts.services import audit_log
from domains import checks, dkim, signals
from domains.models import DkimKey, SendingDomain
from domains.names import clean_domain_name

logger = logging.getLogger(__name__)

DEFAULT_WARMUP = [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000]
MAX_WARMUP_DAYS = 60


def _new_key(domain: SendingDomain, algorithm: str) -> DkimKey:
    private_pem, public = dkim.generate_key(algorithm)
    return DkimKey.objects.create(
        domain=domain,
        selector=dkim.new_selector(algorithm, timezone.localdate()),
        algorithm=algorithm,
        private_key=dkim.encrypt_private_key(private_pem),
        public_key=public,
    )


class DomainTaken(ValidationError):
    """The name is already this account's, or verified by another: a conflict with what
    exists, not a mistake in the request."""


def verified_elsewhere(name: str, account: Account | None) -> bool:
    """Whether another account (or the platform) holds ``name`` verified."""
    others = SendingDomain.objects.filter(name=name).exclude(status=SendingDomain.Status.PENDING)
    if account is not None:
        others = others.exclude(account=account)
    return others.exists()


def _taken_message(name: str) -> str:
    return (
        f"{name} is already verified by another Missive account. A domain sends for one "
        "account at a time: whoever manages it there must remove it first."
    )


@transaction.atomic
def domain_add(
    *, account: Account | None, actor: User | None, name: str, ed25519: bool = False
) -> SendingDomain:
    """Add ``name`` to the account (None: the platform's shared domain) with a new RSA-2048
    key, and an Ed25519 key as a second signature when asked. Nothing is proved yet: the
    domain signs and sends once its DKIM record is found."""
    name = clean_domain_name(name)
    if account is not None and name == settings.MISSIVE_SHARED_DOMAIN.lower():
        raise ValidationError({"name": f"{name} is Missive's shared domain."})
    if verified_elsewhere(name, account):
        raise DomainTaken({"name": _taken_message(name)})
    if SendingDomain.objects.filter(account=account, name=name).exists():
        raise DomainTaken({"name": f"{name} is already one of your sending domains."})
    try:
        with transaction.atomic():
            domain = SendingDomain.objects.create(account=account, name=name)
    except IntegrityError:  # the same name added twice at once
        raise DomainTaken({"name": f"{name} is already one of your sending domains."}) from None
    _new_key(domain, DkimKey.Algorithm.RSA)
    if ed25519:
        _new_key(domain, DkimKey.Algorithm.ED25519)
    if account is not None:
        audit_log(account=account, actor=actor, action="domain.added", domain=name)
    return domain


def records_to_publish(domain: SendingDomain) -> list[checks.Record]:
    """What the domain's DNS must hold, the keys waiting to be published first."""
    return checks.records_to_publish(domain.name, _specs(domain))


def _specs(domain: SendingDomain) -> list[checks.DkimSpec]:
    order: dict[str, int] = {
        DkimKey.State.PENDING: 0,
        DkimKey.State.ACTIVE: 1,
        DkimKey.State.RETIRING: 2,
    }
    keys = sorted(domain.keys.all(), key=lambda k: (order[k.state], k.pk))
    return [checks.DkimSpec(selector=k.selector, record_value=k.record_value) for k in keys]


def _owners(account: Account) -> list[str]:
    return list(
        Membership.objects.filter(account=account, role=Role.OWNER).values_list(
            "user__email", flat=True
        )
    )


def _tell_owners(domain: SendingDomain, *, restored: bool) -> None:
    if domain.account is None:
        return
    to = _owners(domain.account)
    if not to:
        return
    template = "domain_restored" if restored else "domain_failing"
    subject = (
        f"[Missive] {domain.name} is verified again"
        if restored
        else f"[Missive] Action needed: the DNS records of {domain.name} are missing"
    )
    send_notice(
        f"domains/email/{template}",
        {
            "domain": domain.name,
            "account": domain.account.name,
            "url": settings.MISSIVE_BASE_URL + reverse("domain_detail", args=[domain.pk]),
            "report": checks.DomainReport.from_dict(domain.report),
        },
        to=to,
        subject=subject,
    )


def _dkim_lookup_failed(report: checks.DomainReport) -> bool:
    return any(c.key.startswith("dkim:") and c.status == "unavailable" for c in report.checks)


def domain_check(*, domain: SendingDomain, actor: User | None = None) -> checks.DomainReport:
    """Look the domain's records up now and act on what was found (see the module)."""
    report = checks.check_domain(domain.name, _specs(domain))
    now = timezone.now()
    with transaction.atomic():
        locked = SendingDomain.objects.select_for_update().get(pk=domain.pk)
        keys = list(locked.keys.select_for_update().order_by("pk"))
        audit: list[tuple[str, dict[str, object]]] = []
        if not _dkim_lookup_failed(report):
            for key in keys:
                if report.dkim_verified(key.selector) and key.published_at is None:
                    key.published_at = now
                    key.save(update_fields=["published_at"])
            audit += _switch_keys(locked, keys, now)
        signing = [k for k in keys if k.state == DkimKey.State.ACTIVE]
        # RSA signs for every receiver; Ed25519 is only a second signature, which many
        # receivers do not check: a domain is verified through its RSA key.
        signing_found = any(k.algorithm == DkimKey.Algorithm.RSA for k in signing) and all(
            report.dkim_verified(k.selector) for k in signing
        )
        status = SendingDomain.Status
        tell: bool | None = None  # restored?
        if _dkim_lookup_failed(report):
            pass
        elif locked.status == status.PENDING and signing_found:
            if verified_elsewhere(locked.name, locked.account):
                report.conflict = _taken_message(locked.name)
            else:
                try:
                    with transaction.atomic():
                        SendingDomain.objects.filter(pk=locked.pk).update(
                            status=status.VERIFIED, verified_at=now
                        )
                except IntegrityError:  # verified elsewhere between the read and now
                    report.conflict = _taken_message(locked.name)
                else:
                    locked.status, locked.verified_at = status.VERIFIED, now
                    audit.append(("domain.verified", {}))
        elif locked.status == status.VERIFIED and not signing_found:
            locked.status, locked.failing_since = status.FAILING, now
            audit.append(("domain.failing", {}))
            tell = False
        elif locked.status == status.FAILING and signing_found:
            locked.status, locked.failing_since = status.VERIFIED, None
            audit.append(("domain.restored", {}))
            tell = True
        locked.report = report.as_dict()
        locked.checked_at = now
        locked.save(update_fields=["status", "failing_since", "report", "checked_at"])
        if locked.account is not None:
            for action, detail in audit:
                audit_log(
                    account=locked.account,
                    actor=actor,
                    action=action,
                    acting="" if actor else "DNS check",
                    domain=locked.name,
                    **detail,
                )
        if tell is not None:
            _tell_owners(locked, restored=tell)
    domain.refresh_from_db()
    return report


def _switch_keys(
    domain: SendingDomain, keys: Sequence[DkimKey], now: dt.datetime
) -> list[tuple[str, dict[str, object]]]:
    """Per algorithm, the newest published pending key takes over from the signing one,
    which retires; retired keys past their grace period are removed."""
    audit: list[tuple[str, dict[str, object]]] = []
    grace = dt.timedelta(days=settings.MISSIVE_DKIM_GRACE_DAYS)
    for algorithm in DkimKey.Algorithm.values:
        ready = [
            k
            for k in keys
            if k.algorithm == algorithm and k.state == DkimKey.State.PENDING and k.published_at
        ]
        if not ready:
            continue
        new = ready[-1]
        for key in keys:
            if key.algorithm == algorithm and key.state == DkimKey.State.ACTIVE:
                key.state, key.retire_after = DkimKey.State.RETIRING, now + grace
                key.save(update_fields=["state", "retire_after"])
        new.state, new.activated_at = DkimKey.State.ACTIVE, now
        new.save(update_fields=["state", "activated_at"])
        if domain.status != SendingDomain.Status.PENDING:
            audit.append(("domain.key_switched", {"selector": new.selector}))
    for key in keys:
        if key.state == DkimKey.State.RETIRING and key.retire_after and key.retire_after <= now:
            audit.append(("domain.key_removed", {"selector": key.selector}))
            key.delete()
    return audit


@transaction.atomic
def domain_rotate_keys(*, domain: SendingDomain, actor: User | None) -> list[DkimKey]:
    """New keys under new selectors, one per algorithm in use. They sign once they are
    found published; until then the current keys go on signing."""
    if not domain.is_verified:
        raise ValidationError("Verify the domain before replacing its keys.")
    if domain.keys.filter(state=DkimKey.State.PENDING).exists():
        raise ValidationError(
            "New keys are already waiting to be published: publish them, then check again."
        )
    algorithms = sorted(
        set(domain.keys.filter(state=DkimKey.State.ACTIVE).values_list("algorithm", flat=True))
    ) or [DkimKey.Algorithm.RSA]
    keys = [_new_key(domain, algorithm) for algorithm in algorithms]
    if domain.account is not None:
        audit_log(
            account=domain.account,
            actor=actor,
            action="domain.key_rotation_started",
            domain=domain.name,
            selectors=[k.selector for k in keys],
        )
    return keys


@transaction.atomic
def domain_update(
    *,
    domain: SendingDomain,
    actor: User | None,
    warmup: bool,
    warmup_schedule: Sequence[int] | None = None,
) -> SendingDomain:
    """Turn the warm-up on (from today, in the account's time zone) or off, or change its
    daily caps."""
    schedule = [int(n) for n in (warmup_schedule or DEFAULT_WARMUP)]
    too_big = any(not 1 <= n <= 999_999_999 for n in schedule)
    if not 1 <= len(schedule) <= MAX_WARMUP_DAYS or too_big:
        raise ValidationError(
            {"warmup_schedule": f"Give 1 to {MAX_WARMUP_DAYS} daily caps, each at least 1."}
        )
    if warmup and not domain.warmup:
        zone = zoneinfo.ZoneInfo(domain.account.time_zone if domain.account else "UTC")
        domain.warmup_started_on = timezone.now().astimezone(zone).date()
    loosened = domain.warmup and (not warmup or schedule != list(domain.warmup_schedule))
    domain.warmup = warmup
    domain.warmup_schedule = schedule
    domain.save(update_fields=["warmup", "warmup_started_on", "warmup_schedule"])
    if loosened:
        signals.warmup_changed.send(sender=SendingDomain, domain_id=domain.pk)
    if domain.account is not None:
        audit_log(
            account=domain.account,
            actor=actor,
            action="domain.updated",
            domain=domain.name,
            warmup=warmup,
        )
    return domain


@transaction.atomic
def domain_delete(*, domain: SendingDomain, actor: User | None) -> None:
    """Remove the domain and its keys: campaigns from it cannot be sent until it is added
    and verified again (with new keys)."""
    if domain.account is not None:
        audit_log(account=domain.account, actor=actor, action="domain.deleted", domain=domain.name)
    domain.delete()


def check_due_domains(limit: int = 200) -> int:
    """The beat's job: verified and failing domains every hour, pending ones every hour
    in their first week, then once a day."""
    now = timezone.now()
    hour_ago, day_ago = now - dt.timedelta(hours=1), now - dt.timedelta(days=1)
    week_ago = now - dt.timedelta(days=7)
    due = (
        SendingDomain.objects.exclude(checked_at__gt=hour_ago)
        .exclude(
            status=SendingDomain.Status.PENDING, created_at__lt=week_ago, checked_at__gt=day_ago
        )
        .order_by(F("checked_at").asc(nulls_first=True))[:limit]
    )
    done = 0
    for domain in due:
        try:
            domain_check(domain=domain)
        except Exception:
            # One domain's fault must not stop the others' checks: it is logged, and the
            # domain waits its turn again instead of coming first on every run.
            logger.exception("The DNS check of sending domain %s failed", domain.pk)
            SendingDomain.objects.filter(pk=domain.pk).update(checked_at=timezone.now())
        done += 1
    return done
