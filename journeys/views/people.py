"""A journey's report (each step: reached, waiting, passed; each email: sent, opened,
clicked) and who is inside it, with a contact put in or taken out by hand."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AccountRequest
from accounts.query import QueryParams
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts.models import Contact, Subscription
from contacts.services import clean_email
from journeys import selectors, services
from journeys.engine import list_ids
from journeys.forms import EnrollForm
from journeys.models import Enrollment, Journey
from journeys.views import words
from journeys.views.page import journey_or_404

PAGE_SIZE = 50
ACTIVE = Enrollment.Status.ACTIVE


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


@dataclass(frozen=True)
class Line:
    """One step of the report."""

    card: words.Card
    depth: int
    branch: str

    @property
    def open_rate(self) -> str:
        email = self.card.figures.email
        return _rate(email.opened, email.sent) if email else ""

    @property
    def click_rate(self) -> str:
        email = self.card.figures.email
        return _rate(email.clicked, email.sent) if email else ""


@account_required(Perm.VIEW)
def journey_report(request: AccountRequest, journey_id: int) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    # The version new contacts enter (what happened is counted by step, and a step keeps
    # its id from one version to the next); the draft of a journey never started.
    steps = journey.version.steps if journey.version is not None else journey.draft or []
    figures = selectors.step_figures(journey, steps)
    cards = words.cards(request.account, steps, selectors.rows(journey, steps, figures))
    lines = [Line(card, card.row.depth, branch) for card, branch in words.flatten(cards)]
    return render(
        request,
        "journeys/journey_report.html",
        {
            "journey": journey,
            "lines": lines,
            "totals": selectors.totals(journey),
            "version": journey.version,
        },
    )


def _enroll(request: AccountRequest, journey: Journey, form: EnrollForm) -> bool:
    """Put the contact named by address in the journey; False with the form's error."""
    try:
        email = clean_email(form.cleaned_data["email"])
    except ValidationError as error:
        form.add_error("email", error.messages)
        return False
    contact = Contact.objects.for_account(request.account).filter(email__iexact=email).first()
    if contact is None:
        form.add_error(
            "email",
            f"No contact has the address {email} in this account: add them on the Contacts "
            "page first.",
        )
        return False
    try:
        made = services.contacts_enroll(journey=journey, actor=request.user, contacts=[contact])
    except ValidationError as refused:
        form.add_error("email", refused.messages)
        return False
    if not made:
        form.add_error("email", f"{contact.email} did not enter: {_kept_out(journey, contact)}.")
        return False
    messages.success(request, f"{contact.email} entered the journey, at its first step.")
    return True


def _kept_out(journey: Journey, contact: Contact) -> str:
    """Why the journey's rules kept a contact out."""
    subscribed = Subscription.objects.filter(
        contact=contact,
        status=Subscription.Status.SUBSCRIBED,
        contact_list_id__in=list_ids(journey),
    ).exists()
    if journey.exit_on_unsubscribe and not subscribed:
        return (
            "they are subscribed to none of the journey's lists, and with “leave when "
            "unsubscribed” on it takes subscribers only"
        )
    return (
        f"its entry rule (“{journey.get_entry_display()}”) keeps them out, as they are "
        "inside now or went through before"
    )


@require_http_methods(["GET", "POST"])
@account_required(Perm.VIEW)
def journey_contacts(request: AccountRequest, journey_id: int) -> HttpResponse:
    """Who is inside, newest first; a POST puts a contact in by address."""
    journey = journey_or_404(request, journey_id)
    can_send = role_can(request.membership.role, Perm.SEND)
    form = EnrollForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not can_send:
            messages.error(request, "Your role cannot put contacts in a journey.")
            return redirect("journey_contacts", journey_id=journey.pk)
        if form.is_valid() and _enroll(request, journey, form):
            return redirect("journey_contacts", journey_id=journey.pk)
    params = QueryParams(request.GET)
    number = params.id("page") or 1
    params.note_ignored(request)
    inside = (
        selectors.enrollments(request.account)
        .filter(journey=journey, status=ACTIVE)
        .order_by("-entered_at", "-pk")
    )
    page = Paginator(inside, PAGE_SIZE).get_page(number)
    said: dict[int, dict[str, str]] = {}
    for enrollment in page.object_list:
        version = enrollment.version
        if version.pk not in said:
            said[version.pk] = words.step_names(request.account, version.steps)
    rows = [
        (enrollment, said[enrollment.version_id].get(enrollment.step, "Entering"))
        for enrollment in page.object_list
    ]
    return render(
        request,
        "journeys/journey_contacts.html",
        {
            "journey": journey,
            "rows": rows,
            "page": page,
            "form": form,
            "can_send": can_send,
            "totals": selectors.totals(journey),
            "time_zone": request.account.time_zone,
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@account_required(Perm.SEND)
def journey_enrollment_remove(
    request: AccountRequest, journey_id: int, enrollment_id: int
) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    enrollment = get_for_account_or_404(
        Enrollment,
        request.account,
        pk=enrollment_id,
        journey=journey,
    )
    email = enrollment.contact.email
    if request.method == "POST":
        if enrollment.status != ACTIVE:
            messages.info(request, f"{email} was no longer in the journey.")
        else:
            services.enrollment_remove(enrollment=enrollment, actor=request.user)
            messages.success(request, f"{email} was taken out of the journey.")
        return redirect("journey_contacts", journey_id=journey.pk)
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Take {email} out of “{journey.name}”?",
            "body": "Nothing more of the journey is sent to them (an email already on its way "
            "still goes). Whether they may enter again depends on its entry rule.",
            "confirm_label": "Take them out",
            "cancel_href": reverse("journey_contacts", args=[journey.pk]),
        },
    )
