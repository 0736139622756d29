"""Contacts: all of them, one of them, adding, editing, and actions on a selection."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode

from accounts.http import AccountRequest
from accounts.query import QueryParams, parse_id
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import activity, selectors, services, tagging
from contacts.forms import ContactForm, NewContactForm
from contacts.models import Contact, ContactList, Subscription, Tag


def _attribute_errors_to_fields(form: ContactForm, error: ValidationError) -> None:
    for field, errors in error.message_dict.items():
        if field.startswith("attributes."):
            form.add_error(f"attr_{field.removeprefix('attributes.')}", errors)
        else:
            form.add_error(field if field in form.fields else None, errors)


def contacts_table(
    request: AccountRequest,
    *,
    contact_list: ContactList | None = None,
    statuses: list[tuple[str, str]] | None = None,
) -> HttpResponse:
    """The contacts page and one list's page: a filtered table, by keyset pages, whose
    filters live in the address (so reload, back and a shared link keep them)."""
    params = QueryParams(request.GET)
    search = params.text("q")
    sort = params.choice("sort", selectors.SORTS, default="email")
    status = params.choice("status", Subscription.Status.values) if contact_list else ""
    cursor, before = params.cursor("after"), params.cursor("before")
    tag_id = params.id("tag")
    tag = selectors.tags(request.account).filter(pk=tag_id).first() if tag_id else None
    if tag_id and tag is None:
        params.ignore("tag")
    try:
        page = selectors.contacts_page(
            request.account,
            contact_list=contact_list,
            status=status,
            search=search,
            tag=tag,
            sort=sort,
            cursor=cursor,
            before=before,
        )
    except ValidationError:
        # a cursor from another sort order: start again from the first page
        params.ignore("before" if before else "after")
        page = selectors.contacts_page(
            request.account,
            contact_list=contact_list,
            status=status,
            search=search,
            tag=tag,
            sort=sort,
        )
    params.note_ignored(request)
    filters = {
        name: value
        for name, value in (
            ("q", search),
            ("status", status),
            ("tag", str(tag.pk) if tag else ""),
            ("sort", sort),
        )
        if value and not (name == "sort" and value == "email")
    }
    statuses_by_contact = (
        dict(
            Subscription.objects.filter(
                contact_list=contact_list, contact_id__in=[c.pk for c in page.contacts]
            ).values_list("contact_id", "status")
        )
        if contact_list
        else {}
    )
    context = {
        "contact_list": contact_list,
        "page": page,
        "rows": [(c, statuses_by_contact.get(c.pk, "")) for c in page.contacts],
        "q": search,
        "status": status,
        "tag": tag,
        "tags": selectors.tags(request.account),
        "sort": sort,
        "statuses": statuses,
        # the paging links carry the filters
        "paging_url": f"{request.path}?{urlencode(filters)}&" if filters else f"{request.path}?",
        "can_edit": role_can(request.membership.role, Perm.EDIT_CONTENT),
        "can_export": role_can(request.membership.role, Perm.EXPORT),
    }
    if contact_list:
        context["counts"] = selectors.list_with_counts(contact_list)
    # htmx swaps get the table alone; a history restore (back after a swap) the page.
    swap = request.htmx and not request.htmx.history_restore_request
    if swap:
        template = "contacts/_contacts_table.html"
    else:
        template = "contacts/list_detail.html" if contact_list else "contacts/contacts.html"
    response = render(request, template, context)
    # one address, two bodies: caches must tell them apart
    patch_vary_headers(response, ["HX-Request"])
    return response


@account_required(Perm.VIEW)
def contacts(request: AccountRequest) -> HttpResponse:
    return contacts_table(request)


@account_required(Perm.EDIT_CONTENT)
def contact_new(request: AccountRequest) -> HttpResponse:
    initial = {}
    params = QueryParams(request.GET)
    list_id = params.id("list")
    if list_id is not None:
        initial["lists"] = ContactList.objects.for_account(request.account).filter(pk=list_id)
    if request.method == "GET":
        params.note_ignored(request)
    form = NewContactForm(request.POST or None, account=request.account, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            contact = services.contact_create(
                account=request.account,
                actor=request.user,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                attributes=form.attribute_values(),
                lists=list(data["lists"]),
                legal_basis=data["legal_basis"],
                consent_text=data["consent_text"],
            )
        except ValidationError as error:
            _attribute_errors_to_fields(form, error)
        else:
            messages.success(request, f"{contact.email} added.")
            return redirect("contact_detail", contact_id=contact.pk)
    return render(request, "contacts/contact_new.html", {"form": form})


@account_required(Perm.VIEW)
def contact_detail(request: AccountRequest, contact_id: int) -> HttpResponse:
    contact = get_for_account_or_404(Contact, request.account, pk=contact_id)
    can_edit = role_can(request.membership.role, Perm.EDIT_CONTENT)
    initial = {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        **{f"attr_{k}": v for k, v in contact.attributes.items()},
    }
    form = ContactForm(request.POST or None, account=request.account, initial=initial)
    if request.method == "POST":
        if not can_edit:
            messages.error(request, "Your role cannot edit contacts.")
            return redirect("contact_detail", contact_id=contact.pk)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.contact_update(
                    contact=contact,
                    actor=request.user,
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    attributes=form.attribute_values(),
                )
            except ValidationError as error:
                _attribute_errors_to_fields(form, error)
            else:
                messages.success(request, "Contact saved.")
                return redirect("contact_detail", contact_id=contact.pk)
    declared = {d.name for d in form.definitions}
    return render(
        request,
        "contacts/contact_detail.html",
        {
            "contact": contact,
            "form": form,
            "can_edit": can_edit,
            "can_export": role_can(request.membership.role, Perm.EXPORT),
            "subscriptions": selectors.subscriptions_of(contact),
            "contact_tags": selectors.tags_of(request.account, contact),
            "tags": selectors.tags(request.account),
            "activity": activity.contact_activity(request.account, contact),
            "undeclared": {k: v for k, v in contact.attributes.items() if k not in declared},
        },
    )


BULK_ACTIONS = ("unsubscribe", "delete", "tag", "untag")


@account_required(Perm.EDIT_CONTENT)
def contacts_bulk(request: AccountRequest) -> HttpResponse:
    """Unsubscribe, delete, tag or untag the selected contacts (a tag, also every contact
    the table's filters keep): a confirmation page, then the POST that does it."""
    if request.method != "POST":
        return redirect("contacts")
    ids = [pk for x in request.POST.getlist("ids") if (pk := parse_id(x)) is not None][:1000]
    action = request.POST.get("action")
    contact_list = None
    list_id = parse_id(request.POST.get("list_id", ""))
    if list_id is not None:
        contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    back = reverse("list_detail", args=[contact_list.pk]) if contact_list else reverse("contacts")
    tag_name = request.POST.get("tag_name", "").strip()
    if action in ("tag", "untag"):
        return _bulk_tag(request, action, ids, contact_list, tag_name, back)
    chosen = list(Contact.objects.for_account(request.account).filter(pk__in=ids).order_by("email"))
    if not chosen or action not in BULK_ACTIONS:
        messages.error(request, "Select at least one contact and an action.")
        return redirect(back)
    if request.POST.get("confirmed") == "yes":
        if action == "delete":
            count = services.contacts_delete(
                account=request.account, actor=request.user, contact_ids=[c.pk for c in chosen]
            )
            messages.success(request, f"{count} contact{'s' if count != 1 else ''} deleted.")
        else:
            count = services.contacts_unsubscribe(
                account=request.account,
                actor=request.user,
                contact_ids=[c.pk for c in chosen],
                contact_list=contact_list,
            )
            messages.success(request, f"{count} subscription{'s' if count != 1 else ''} ended.")
        return redirect(back)
    return render(
        request,
        "contacts/bulk_confirm.html",
        {"action": action, "chosen": chosen, "contact_list": contact_list, "back": back},
    )


def _bulk_tag(
    request: AccountRequest,
    action: str,
    ids: list[int],
    contact_list: ContactList | None,
    tag_name: str,
    back: str,
) -> HttpResponse:
    """Tag or untag the selected contacts, or (``scope=all``) every contact the table's
    filters keep, whatever their number: one statement."""
    post = request.POST
    every = post.get("scope") == "all"
    if every:
        status = post.get("status", "")
        tag_id = parse_id(post.get("filter_tag", ""))
        contacts = selectors.contacts_matching(
            request.account,
            contact_list=contact_list,
            status=status if contact_list and status in Subscription.Status.values else "",
            search=post.get("q", "")[:200],
            tag=selectors.tags(request.account).filter(pk=tag_id).first() if tag_id else None,
        )
    else:
        contacts = Contact.objects.for_account(request.account).filter(pk__in=ids)
    try:
        name = tagging.clean_tag_name(tag_name)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    count = contacts.count()
    if not count:
        messages.error(request, "Select at least one contact, or all those that match.")
        return redirect(back)
    if post.get("confirmed") == "yes":
        try:
            if action == "tag":
                done = tagging.tag_contacts(
                    account=request.account, actor=request.user, tag=name, contacts=contacts
                )
                messages.success(
                    request,
                    f"“{done.tag.name}” put on {done.changed} contact"
                    f"{'s' if done.changed != 1 else ''}"
                    + (f" ({done.unchanged} had it already)." if done.unchanged else "."),
                )
            else:
                done = tagging.untag_contacts(
                    account=request.account, actor=request.user, tag=name, contacts=contacts
                )
                messages.success(
                    request,
                    f"“{done.tag.name}” taken off {done.changed} contact"
                    f"{'s' if done.changed != 1 else ''}.",
                )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect(back)
    return render(
        request,
        "contacts/bulk_confirm.html",
        {
            "action": action,
            "chosen": list(contacts.order_by("email")[:10]),
            "count": count,
            "every": every,
            "ids": ids,
            "filters": {k: post.get(k, "") for k in ("q", "status", "filter_tag")},
            "tag_name": name,
            "contact_list": contact_list,
            "back": back,
        },
    )


@account_required(Perm.EDIT_CONTENT)
def contact_tag(request: AccountRequest, contact_id: int) -> HttpResponse:
    """Put a tag on one contact (by name, made when new), or take one off (``remove``)."""
    contact = get_for_account_or_404(Contact, request.account, pk=contact_id)
    back = redirect("contact_detail", contact_id=contact.pk)
    if request.method != "POST":
        return back
    one = Contact.objects.for_account(request.account).filter(pk=contact.pk)
    try:
        remove = parse_id(request.POST.get("remove", ""))
        if remove is not None:
            tag = get_for_account_or_404(Tag, request.account, pk=remove)
            tagging.untag_contacts(
                account=request.account, actor=request.user, tag=tag, contacts=one, how="one"
            )
            messages.success(request, f"Tag “{tag.name}” taken off.")
        else:
            done = tagging.tag_contacts(
                account=request.account,
                actor=request.user,
                tag=request.POST.get("name", ""),
                contacts=one,
                how="one",
            )
            messages.success(request, f"Tagged “{done.tag.name}”.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return back


@account_required(Perm.EDIT_CONTENT)
def contact_delete(request: AccountRequest, contact_id: int) -> HttpResponse:
    contact = get_for_account_or_404(Contact, request.account, pk=contact_id)
    if request.method == "POST":
        services.contacts_delete(
            account=request.account, actor=request.user, contact_ids=[contact.pk]
        )
        messages.success(request, f"{contact.email} deleted.")
        return redirect("contacts")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete {contact.email}?",
            "body": "The contact, their subscriptions and their consent proof are deleted. "
            "To make sure they are never mailed again, unsubscribe them instead.",
            "confirm_label": "Delete contact",
            "cancel_url": "contacts",
        },
    )
