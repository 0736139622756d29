"""Writes for accounts, members, invitations and API keys.

One function per use case, atomic, writing its own audit entry. Views, API endpoints,
tasks and commands call these; none of them writes these models directly.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import allowances
from accounts.mail import send_notice
from accounts.models import (
    Account,
    ApiKey,
    AuditEntry,
    Invitation,
    Membership,
    User,
    hash_token,
    normalize_email,
)
from accounts.roles import RANK, Perm, Role, can_grant, role_can

INVITATION_LIFETIME = timedelta(days=7)
# Invitations are mail Missive sends in its own name to any address an account types:
# bounded per account, so an account cannot turn them into a way of mailing strangers.
INVITATIONS_PER_HOUR = 20
# Fixed: the subject is what a spam filter and a stranger see first, so nothing of the
# customer's choosing goes there.
INVITATION_SUBJECT = "[Missive] You're invited to join a team on Missive"
# How much of an account's name an invitation shows (in its body only).
INVITATION_NAME_LENGTH = 40
# Who acts when no person does: set for the length of a request authenticated by an API
# key (accounts.api.auth), so every audit entry written for it names the key.
acting_label: ContextVar[str | None] = ContextVar("missive_acting_label", default=None)


def someone_acting(actor: User | None) -> bool:
    """Whether a member or an API key is behind the current write (not Missive itself,
    nor a recipient following a link)."""
    return bool(actor and actor.pk) or acting_label.get() is not None


def audit_log(
    *, account: Account, actor: User | None, action: str, acting: str = "", **detail: object
) -> AuditEntry:
    """Recorded in the caller's transaction. Without a person, the entry names the API key
    of the request (``acting_label``), else Missive itself, with ``acting`` saying which
    part of it (the schedule, the sender, retention)."""
    missive = f"Missive ({acting})" if acting else "Missive"
    return AuditEntry.objects.create(
        account=account,
        actor=actor if actor and actor.pk else None,
        actor_label=(str(actor) if actor and actor.pk else None) or acting_label.get() or missive,
        action=action,
        detail=detail,
    )


@transaction.atomic
def account_create(*, owner: User, name: str, **fields: object) -> Account:
    """A new customer account with ``owner`` as its first member."""
    account = Account(name=name.strip(), **fields)
    account.full_clean()
    account.save()
    Membership.objects.create(account=account, user=owner, role=Role.OWNER)
    if not account.default_from_email:
        account.default_from_email = owner.email
        account.save(update_fields=["default_from_email"])
    audit_log(account=account, actor=owner, action="account.created", name=account.name)
    return account


@transaction.atomic
def account_update(*, account: Account, actor: User | None, **fields: object) -> Account:
    changed = [name for name, value in fields.items() if getattr(account, name) != value]
    for name in changed:
        setattr(account, name, fields[name])
    if changed:
        account.full_clean()
        account.save(update_fields=changed)
        audit_log(account=account, actor=actor, action="account.updated", fields=changed)
    return account


@transaction.atomic
def sending_suspension_lift(*, account: Account, actor: User | None) -> bool:
    """Missive's operators let a suspended account send again (its paused campaigns stay
    paused until the customer resumes them). False when it was not suspended."""
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if not locked.sending_suspended_at:
        return False
    reason = locked.sending_suspended_reason
    locked.sending_suspended_at = None
    locked.sending_suspended_reason = ""
    locked.save(update_fields=["sending_suspended_at", "sending_suspended_reason"])
    audit_log(account=locked, actor=actor, action="account.sending_resumed", reason=reason)
    return True


def _require(membership: Membership, perm: Perm) -> None:
    if not role_can(membership.role, perm):
        raise PermissionDenied("Your role does not allow this.")


@transaction.atomic
def invitation_create(*, by: Membership, email: str, role: str) -> tuple[Invitation, str]:
    """Invite ``email`` to ``by``'s account. Returns the invitation and its one-time token."""
    _require(by, Perm.MANAGE_MEMBERS)
    email = normalize_email(email)
    if not can_grant(by.role, role):
        raise ValidationError({"role": "You can only invite people with a role up to your own."})
    account = by.account
    if Membership.objects.for_account(account).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of this account."})
    _take_invitation_allowance(account)
    # A fresh invitation replaces a pending one to the same address.
    Invitation.objects.for_account(account).filter(
        email__iexact=email, accepted_at__isnull=True
    ).delete()
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                account=account,
                email=email,
                role=role,
                token_hash=hash_token(token),
                invited_by=by.user,
                expires_at=timezone.now() + INVITATION_LIFETIME,
            )
    except IntegrityError:
        raise ValidationError({"email": f"{email} was invited a moment ago."}) from None
    audit_log(account=account, actor=by.user, action="member.invited", email=email, role=role)
    _send_invitation(invitation, token)
    return invitation, token


def _take_invitation_allowance(account: Account) -> None:
    try:
        allowances.take("invitations", account.pk, count=1, limit=INVITATIONS_PER_HOUR)
    except allowances.AllowanceExceeded:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: f"An account may send {INVITATIONS_PER_HOUR} invitations "
                "an hour. Try again later."
            }
        ) from None


def mail_safe_name(name: str, limit: int = INVITATION_NAME_LENGTH) -> str:
    """An account's name as Missive's own mail may show it: control and invisible
    characters removed, web addresses defused (no scheme, no dot a mail app would turn
    into a link), on one line, at most ``limit`` characters."""
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in name)
    text = _URL_SCHEME.sub("", text)
    text = _DOMAIN_DOT.sub("\u2024", text)  # ONE DOT LEADER: reads as a dot, links nowhere
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_URL_SCHEME = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*:/+|\bwww\.")
_DOMAIN_DOT = re.compile(r"(?<=\w)\.(?=\w)")


def invitation_url(token: str) -> str:
    return settings.MISSIVE_BASE_URL + reverse("invitation_accept", args=[token])


def _send_invitation(invitation: Invitation, token: str) -> None:
    """Mail the invitation by a worker. A mail server that still refuses after the last
    try leaves the invitation in place and says so on ``invitation.email_error`` (the
    inviter sees it on the members page and can send it again)."""
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "account_name": mail_safe_name(invitation.account.name),
        # A name the inviter typed is cleaned like the account's; their proven address
        # is shown as it is.
        "inviter_name": (mail_safe_name(inviter.get_full_name(), 80) or inviter.email)
        if inviter
        else "",
        "url": invitation_url(token),
        "lifetime_days": INVITATION_LIFETIME.days,
    }
    send_notice(
        "accounts/email/invitation",
        context,
        to=[invitation.email],
        subject=INVITATION_SUBJECT,
        on_failure=("accounts.invitation_not_sent", [invitation.pk, invitation.token_hash]),
    )


def invitation_mail_failed(*, invitation_id: int, token_hash: str, error: str) -> int:
    """The mail of this link could not be sent: say so on the invitation, unless it was
    sent again since (with another link) or accepted. Returns the rows marked."""
    return Invitation.objects.filter(
        pk=invitation_id, token_hash=token_hash, accepted_at__isnull=True
    ).update(email_error=error[:500])


def invitation_by_token(token: str) -> Invitation | None:
    """The pending, unexpired invitation this token opens, or None (bad, used or old)."""
    if not token or len(token) > 100:
        return None
    invitation = (
        Invitation.objects.select_related("account", "invited_by")
        .filter(token_hash=hash_token(token), accepted_at__isnull=True)
        .first()
    )
    if invitation is None or invitation.is_expired or not invitation.account.is_active:
        return None
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if normalize_email(user.email) != normalize_email(invitation.email):
        raise PermissionDenied("This invitation was sent to another address.")
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation has already been used.")
    membership, created = Membership.objects.get_or_create(
        account=invitation.account, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    if created:
        audit_log(
            account=invitation.account,
            actor=user,
            action="member.joined",
            email=user.email,
            role=membership.role,
        )
    return membership


@transaction.atomic
def invitation_resend(*, by: Membership, invitation: Invitation) -> Invitation:
    """A fresh link (only its hash is stored, so the old one cannot be sent again) and a
    fresh expiry date, mailed again."""
    _require(by, Perm.MANAGE_MEMBERS)
    _take_invitation_allowance(by.account)
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.expires_at = timezone.now() + INVITATION_LIFETIME
    invitation.email_error = ""
    invitation.save(update_fields=["token_hash", "expires_at", "email_error"])
    audit_log(
        account=by.account, actor=by.user, action="member.invitation_resent", email=invitation.email
    )
    _send_invitation(invitation, token)
    return invitation


@transaction.atomic
def invitation_revoke(*, by: Membership, invitation: Invitation) -> None:
    _require(by, Perm.MANAGE_MEMBERS)
    audit_log(
        account=by.account,
        actor=by.user,
        action="member.invitation_revoked",
        email=invitation.email,
    )
    invitation.delete()


def _owner_count(account: Account) -> int:
    """Owners of the account, their rows locked: two owners stepping down at once must
    not leave the account with none."""
    owners = Membership.objects.for_account(account).filter(role=Role.OWNER).select_for_update()
    return len(list(owners.values_list("pk", flat=True)))


def _revoke_keys_above(*, membership: Membership, role: str | None, by: Membership) -> int:
    """A member's API keys never outlive their role: keys they made that outrank
    ``role`` (all of them, with None) are revoked."""
    keys = ApiKey.objects.for_account(membership.account).filter(
        created_by=membership.user, revoked_at__isnull=True
    )
    if role is not None:
        keys = keys.filter(role__in=[r for r in Role.values if RANK[r] > RANK[role]])
    revoked = 0
    for api_key in keys:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_log(
            account=membership.account,
            actor=by.user,
            action="api_key.revoked",
            name=api_key.name,
            because=f"{membership.user.email} no longer has that role",
        )
        revoked += 1
    return revoked


@transaction.atomic
def membership_change_role(*, by: Membership, membership: Membership, role: str) -> Membership:
    _require(by, Perm.MANAGE_MEMBERS)
    if role not in Role.values:
        raise ValidationError({"role": f"{role!r} is not a role."})
    if not can_grant(by.role, role) or RANK[membership.role] > RANK[by.role]:
        raise PermissionDenied("You cannot change the role of someone above you.")
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(by.account) == 1:
        raise ValidationError("An account keeps at least one owner: make someone else owner first.")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    _revoke_keys_above(membership=membership, role=role, by=by)
    audit_log(
        account=by.account,
        actor=by.user,
        action="member.role_changed",
        email=membership.user.email,
        old=old,
        new=role,
    )
    return membership


@transaction.atomic
def membership_remove(*, by: Membership, membership: Membership) -> None:
    if membership.pk != by.pk:
        _require(by, Perm.MANAGE_MEMBERS)
        if RANK[membership.role] > RANK[by.role]:
            raise PermissionDenied("You cannot remove someone above you.")
    if membership.role == Role.OWNER and _owner_count(by.account) == 1:
        raise ValidationError("An account keeps at least one owner: make someone else owner first.")
    audit_log(
        account=by.account,
        actor=by.user,
        action="member.removed" if membership.pk != by.pk else "member.left",
        email=membership.user.email,
    )
    _revoke_keys_above(membership=membership, role=None, by=by)
    membership.delete()


@transaction.atomic
def api_key_create(*, by: Membership, name: str, role: str = Role.EDITOR) -> tuple[ApiKey, str]:
    """A new API key; the clear key is returned once and never stored."""
    _require(by, Perm.MANAGE_API_KEYS)
    if role == Role.OWNER or not can_grant(by.role, role):
        raise ValidationError({"role": "An API key's role can be at most your own, never owner."})
    key = ApiKey.PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        account=by.account,
        name=name.strip() or "API key",
        role=role,
        key_hash=hash_token(key),
        hint=key[: len(ApiKey.PREFIX) + 6],
        created_by=by.user,
    )
    audit_log(account=by.account, actor=by.user, action="api_key.created", name=api_key.name)
    return api_key, key


@transaction.atomic
def api_key_revoke(*, by: Membership, api_key: ApiKey) -> None:
    _require(by, Perm.MANAGE_API_KEYS)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_log(account=by.account, actor=by.user, action="api_key.revoked", name=api_key.name)


def api_key_authenticate(key: str) -> ApiKey | None:
    """The active key of an active account matching ``key``; marks it used (at most once
    a minute, so a busy client does not write on every request)."""
    if not key.startswith(ApiKey.PREFIX) or len(key) > 200:
        return None
    api_key = (
        ApiKey.objects.select_related("account")
        .filter(key_hash=hash_token(key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not api_key.account.is_active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
