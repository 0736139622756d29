"""The account's tags: listed with how many contacts have each, made, renamed, deleted."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import selectors, tagging
from contacts.models import Tag


@account_required(Perm.VIEW)
def tags(request: AccountRequest) -> HttpResponse:
    error = ""
    name = ""
    if request.method == "POST":
        if not role_can(request.membership.role, Perm.EDIT_CONTENT):
            messages.error(request, "Your role cannot make tags.")
            return redirect("tags")
        name = request.POST.get("name", "")
        try:
            tag = tagging.tag_create(account=request.account, actor=request.user, name=name)
        except ValidationError as refused:
            error = " ".join(refused.messages)
        else:
            messages.success(
                request, f"Tag “{tag.name}” made. Put it on contacts from the contacts page."
            )
            return redirect("tags")
    return render(
        request,
        "contacts/tags.html",
        {
            "tags": selectors.tags_with_counts(request.account),
            "name": name,
            "error": error,
            "can_edit": role_can(request.membership.role, Perm.EDIT_CONTENT),
        },
        status=400 if error else 200,
    )


@account_required(Perm.VIEW)
def tag_detail(request: AccountRequest, tag_id: int) -> HttpResponse:
    """Rename a tag (POST); a GET goes to the contacts that have it."""
    tag = get_for_account_or_404(Tag, request.account, pk=tag_id)
    if request.method != "POST":
        return redirect(f"{reverse('contacts')}?{urlencode({'tag': tag.pk})}")
    if not role_can(request.membership.role, Perm.EDIT_CONTENT):
        messages.error(request, "Your role cannot rename tags.")
        return redirect("tags")
    try:
        tagging.tag_rename(tag=tag, actor=request.user, name=request.POST.get("name", ""))
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, f"Tag renamed “{tag.name}”.")
    return redirect("tags")


@account_required(Perm.EDIT_CONTENT)
def tag_delete(request: AccountRequest, tag_id: int) -> HttpResponse:
    tag = get_for_account_or_404(Tag, request.account, pk=tag_id)
    if request.method == "POST":
        untagged = tagging.tag_delete(tag=tag, actor=request.user)
        messages.success(
            request,
            f"Tag “{tag.name}” deleted; {untagged} contact{'s' if untagged != 1 else ''} "
            "no longer have it.",
        )
        return redirect("tags")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete the tag “{tag.name}”?",
            "body": "It is taken off every contact that has it; the contacts stay. A segment "
            "that tests this tag will say so and must be changed before it is used again.",
            "confirm_label": "Delete the tag",
            "cancel_url": "tags",
        },
    )
