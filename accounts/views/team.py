"""Members and invitations."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import AcceptInvitationForm, ConfirmForm, InvitationForm, RoleForm
from accounts.http import AccountRequest
from accounts.models import Invitation, Membership, User
from accounts.roles import DESCRIPTIONS, Perm, Role, can_grant, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required

ONLY_OWNER_TEXT = (
    "You are the only owner: make someone else owner first, then you can leave this account."
)


def _error_text(error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or "You cannot do this."


def _members_page(
    request: AccountRequest, form: InvitationForm | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "accounts/members.html",
        {
            "members": selectors.members(request.account),
            "invitations": selectors.pending_invitations(request.account),
            "form": form,
            "can_manage": form is not None,
            "role_choices": [c for c in Role.choices if can_grant(request.membership.role, c[0])],
            # rows of members above oneself show a badge, not a role menu or Remove
            "grantable": [r for r in Role.values if can_grant(request.membership.role, r)],
            "role_descriptions": DESCRIPTIONS.items(),
            "only_owner": selectors.is_only_owner(request.membership),
        },
        status=status,
    )


@account_required(Perm.VIEW)
def members(request: AccountRequest) -> HttpResponse:
    role = request.membership.role
    can_manage = role_can(role, Perm.MANAGE_MEMBERS)
    return _members_page(request, InvitationForm(granter_role=role) if can_manage else None)


@account_required(Perm.MANAGE_MEMBERS)
@require_POST
def member_invite(request: AccountRequest) -> HttpResponse:
    form = InvitationForm(request.POST, granter_role=request.membership.role)
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                by=request.membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            _report_sending(request, invitation)
            return redirect("members")
    return _members_page(request, form, status=400)


@account_required(Perm.MANAGE_MEMBERS)
@require_POST
def member_role(request: AccountRequest, membership_id: int) -> HttpResponse:
    target = get_for_account_or_404(Membership, request.account, pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("members")
    try:
        services.membership_change_role(
            by=request.membership, membership=target, role=form.cleaned_data["role"]
        )
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("members")


@account_required(Perm.VIEW)
def member_remove(request: AccountRequest, membership_id: int) -> HttpResponse:
    target = get_for_account_or_404(Membership, request.account, pk=membership_id)
    leaving = target.pk == request.membership.pk
    if not leaving and not role_can(request.membership.role, Perm.MANAGE_MEMBERS):
        raise PermissionDenied("Only owners and admins can remove members.")
    if leaving and request.method != "POST" and selectors.is_only_owner(target):
        # No confirmation page for a step the service refuses: say why at once.
        messages.error(request, ONLY_OWNER_TEXT)
        return redirect("members")
    if request.method == "POST":
        try:
            services.membership_remove(by=request.membership, membership=target)
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, _error_text(error))
            return redirect("members")
        if leaving:
            request.session.pop(selectors.SESSION_ACCOUNT_KEY, None)
            messages.success(request, f"You have left {request.account.name}.")
            return redirect("dashboard")
        messages.success(request, f"{target.user.email} no longer has access.")
        return redirect("members")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": ConfirmForm(),
            "title": "Leave this account?" if leaving else f"Remove {target.user.email}?",
            "body": (
                f"You will lose access to {request.account.name} until someone invites you again."
                if leaving
                else f"{target.user.email} will lose access to {request.account.name} at once. "
                "Their past actions stay in the activity log."
            ),
            "confirm_label": "Leave" if leaving else "Remove member",
            "cancel_url": "members",
        },
    )


def _report_sending(request: HttpRequest, invitation: Invitation) -> None:
    error = getattr(invitation, "email_error", "")
    if error:
        messages.warning(
            request,
            f"The invitation to {invitation.email} is saved, but the email could not be sent "
            f"({error}). Check the mail settings, then use “Send again”.",
        )
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")


@account_required(Perm.MANAGE_MEMBERS)
@require_POST
def invitation_resend(request: AccountRequest, invitation_id: int) -> HttpResponse:
    invitation = get_for_account_or_404(
        Invitation, request.account, pk=invitation_id, accepted_at__isnull=True
    )
    try:
        invitation = services.invitation_resend(by=request.membership, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        _report_sending(request, invitation)
    return redirect("members")


@account_required(Perm.MANAGE_MEMBERS)
def invitation_revoke(request: AccountRequest, invitation_id: int) -> HttpResponse:
    invitation = get_for_account_or_404(
        Invitation, request.account, pk=invitation_id, accepted_at__isnull=True
    )
    if request.method == "POST":
        services.invitation_revoke(by=request.membership, invitation=invitation)
        messages.success(request, f"The invitation to {invitation.email} is cancelled.")
        return redirect("members")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": ConfirmForm(),
            "title": f"Cancel the invitation to {invitation.email}?",
            "body": "The link in their email will stop working.",
            "confirm_label": "Cancel invitation",
            "cancel_url": "members",
        },
    )


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the link in an invitation email. The token is the only key."""
    invitation = services.invitation_by_token(token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    existing_user = User.objects.filter(email__iexact=invitation.email).first()
    context: dict = {"invitation": invitation}

    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            context["wrong_user"] = True
            return render(request, "accounts/invitation_accept.html", context, status=403)
        if request.method == "POST":
            membership = services.invitation_accept(invitation=invitation, user=request.user)
            request.session[selectors.SESSION_ACCOUNT_KEY] = membership.account_id
            messages.success(request, f"Welcome to {invitation.account.name}.")
            return redirect("dashboard")
        return render(request, "accounts/invitation_accept.html", context)

    if existing_user is not None:
        context["needs_login"] = True
        return render(request, "accounts/invitation_accept.html", context)

    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = User.objects.create_user(
                email=invitation.email,
                password=form.cleaned_data["password"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
            )
            # The invitation reached this address: it is verified.
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
            membership = services.invitation_accept(invitation=invitation, user=user)
        login(request, user, backend="allauth.account.auth_backends.AuthenticationBackend")
        request.session[selectors.SESSION_ACCOUNT_KEY] = membership.account_id
        messages.success(request, f"Welcome to {invitation.account.name}.")
        return redirect("dashboard")
    context["form"] = form
    context["role_description"] = DESCRIPTIONS[Role(invitation.role)]
    return render(request, "accounts/invitation_accept.html", context)
