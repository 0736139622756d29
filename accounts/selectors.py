"""Reads for accounts: which account a request acts for, members, security records."""

from __future__ import annotations

from datetime import timedelta

from allauth.mfa.models import Authenticator
from axes.models import AccessFailureLog
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Account, ApiKey, AuditEntry, Invitation, Membership, User
from accounts.roles import Role

SESSION_ACCOUNT_KEY = "missive_account_id"


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("account").order_by("account__name")


def current_membership(
    user: User | AnonymousUser, preferred_account_id: int | str | None = None
) -> Membership | None:
    """The membership a logged-in user acts through: the account chosen in the session,
    else their oldest one."""
    if not user.is_authenticated:
        return None
    # A closed account is not worked in; its members meet the closure page instead.
    memberships = Membership.objects.filter(user=user).active().select_related("account", "user")
    if preferred_account_id:
        try:
            chosen = memberships.filter(account_id=int(preferred_account_id)).first()
        except (TypeError, ValueError):
            chosen = None
        if chosen is not None:
            return chosen
    return memberships.order_by("created_at").first()


def has_authenticator_app(user: User) -> bool:
    return Authenticator.objects.filter(user=user, type="totp").exists()


def mfa_missing(user: User, account: Account) -> bool:
    """True when ``account`` requires two-factor authentication and ``user`` has none."""
    return account.require_mfa and not has_authenticator_app(user)


def members(account: Account) -> QuerySet[Membership]:
    return Membership.objects.for_account(account).select_related("user").order_by("created_at")


def is_only_owner(membership: Membership) -> bool:
    """Whether this member is the account's one owner, who may not leave (the account
    keeps at least one owner), so the team page offers no Leave to them."""
    if membership.role != Role.OWNER:
        return False
    return not (
        Membership.objects.for_account(membership.account)
        .filter(role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def pending_invitations(account: Account) -> QuerySet[Invitation]:
    return Invitation.objects.for_account(account).filter(accepted_at__isnull=True)


def api_keys(account: Account) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_account(account).select_related("created_by")


def recent_failed_logins(account: Account, days: int = 30) -> QuerySet[AccessFailureLog]:
    """Failed logins against the addresses of this account's members."""
    emails = list(members(account).values_list("user__email", flat=True))
    since = timezone.now() - timedelta(days=days)
    return AccessFailureLog.objects.filter(
        username__in=[e.lower() for e in emails], attempt_time__gte=since
    ).order_by("-attempt_time")


def members_without_mfa(account: Account) -> QuerySet[User]:
    return User.objects.filter(memberships__account=account).exclude(authenticator__type="totp")


def audit_entries(account: Account) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.for_account(account).select_related("actor")
