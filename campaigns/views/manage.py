"""The customer's side of campaigns: list, create, edit, preview, test, templates, and
the sending actions (start, schedule, pause, resume, cancel) with their progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from accounts.http import AccountRequest
from accounts.query import QueryParams
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns import ab, checks, selectors, services
from campaigns.archive import archive_key
from campaigns.checks import Level, presend_checks
from campaigns.composing import compose
from campaigns.forms import (
    CampaignForm,
    NewCampaignForm,
    SaveTemplateForm,
    ScheduleForm,
    TestSendForm,
)
from campaigns.models import ABTest, Campaign, Editor, Link, Template
from campaigns.rendering import TemplateRefused
from campaigns.states import Action, State, allowed_actions
from campaigns.views.framed import framed
from contacts.views.lists import _add_errors


@account_required(Perm.VIEW)
def campaigns(request: AccountRequest) -> HttpResponse:
    return render(
        request,
        "campaigns/campaigns.html",
        {
            "campaigns": selectors.campaigns(request.account)[:200],
            "time_zone": request.account.time_zone,
            "archive_key": archive_key(request.account),
        },
    )


@account_required(Perm.EDIT_CONTENT)
def campaign_new(request: AccountRequest) -> HttpResponse:
    form = NewCampaignForm(request.POST or None, account=request.account)
    if request.method == "POST" and form.is_valid():
        kind, _, key = form.cleaned_data["start_from"].partition(":")
        template = None
        if kind == "template":
            template = get_for_account_or_404(Template, request.account, pk=key)
        campaign = services.campaign_create(
            account=request.account,
            actor=request.user,
            name=form.cleaned_data["name"],
            starter=key if kind == "starter" else "",
            template=template,
        )
        messages.success(request, f"Draft “{campaign.name}” created.")
        if campaign.editor == Editor.BLOCKS:
            return redirect("campaign_blocks", campaign_id=campaign.pk)
        return redirect("campaign_detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_new.html", {"form": form})


@account_required(Perm.VIEW)
def campaign_detail(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    can_edit = role_can(
        request.membership.role, Perm.EDIT_CONTENT
    ) and Action.EDIT in allowed_actions(campaign.status, campaign.kind)
    form = CampaignForm(
        request.POST or None,
        instance=Campaign(
            account=campaign.account, **{f: getattr(campaign, f) for f in services.EDITABLE}
        ),
        initial={"lists": list(campaign.lists.all())},
        account=request.account,
    )
    if request.method == "POST":
        if not can_edit:
            messages.error(request, "This campaign cannot be changed.")
            return redirect("campaign_detail", campaign_id=campaign.pk)
        if form.is_valid():
            data = dict(form.cleaned_data)
            lists = list(data.pop("lists"))
            try:
                services.campaign_update(campaign=campaign, actor=request.user, lists=lists, **data)
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, "Campaign saved.")
                return redirect("campaign_detail", campaign_id=campaign.pk)
    params = QueryParams(request.GET)
    # (a contact id that is malformed or not in the account: the sample recipient)
    preview_as = selectors.preview_contact(campaign, params.id("contact"))
    preview_url = reverse("campaign_preview", args=[campaign.pk])
    context = {
        "campaign": campaign,
        "form": form,
        "can_edit": can_edit,
        "links": campaign.links.all(),
        "actions": (
            allowed_actions(campaign.status, campaign.kind)
            if role_can(request.membership.role, Perm.SEND)
            else []
        ),
        "time_zone": campaign.account.time_zone,
        "test_form": TestSendForm(account=request.account, chosen=preview_as),
        "template_form": SaveTemplateForm(initial={"name": campaign.name}),
        "archive_key": archive_key(request.account),
        "preview_as": preview_as,
        "preview_src": f"{preview_url}?contact={preview_as.pk}" if preview_as else preview_url,
        "inbox": selectors.inbox_line(campaign, preview_as),
        **_preview_search(campaign, request.GET),
        "ab": ab.page_context(campaign),
    }
    if campaign.status in (State.DRAFT, State.SCHEDULED):
        # Counting the audience is only worth it before the send; afterwards the
        # snapshot's counters tell.
        reach = selectors.audience(campaign)
        context.update(
            reach=reach,
            problems=selectors.start_problems(campaign, reach),
            checks=presend_checks(campaign),
            accept_errors=checks.ACCEPT_ERRORS,
            schedule_form=ScheduleForm.around(
                campaign.scheduled_at or timezone.now() + dt.timedelta(hours=1),
                campaign.account.time_zone,
            ),
        )
    else:
        context.update(_progress_context(campaign), failures=selectors.recent_failures(campaign))
    return render(
        request,
        "campaigns/campaign_detail.html",
        context,
        status=400 if form.errors else 200,
    )


def _preview_search(campaign: Campaign, query_string: QueryDict) -> dict[str, object]:
    """The contacts matching ``?q=`` to preview the campaign as; none asked, none found."""
    query = QueryParams(query_string).text("q", max_length=200)
    searched = "q" in query_string
    return {
        "preview_query": query,
        "preview_searched": searched,
        "preview_found": selectors.preview_contacts(campaign, query) if searched else [],
    }


@account_required(Perm.VIEW)
def campaign_preview_contacts(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """The search results alone, for htmx as the customer types."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    context = {"campaign": campaign, **_preview_search(campaign, request.GET)}
    return render(request, "campaigns/_preview_contacts.html", context)


@account_required(Perm.EDIT_CONTENT)
@require_POST
def campaign_duplicate(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    copy = services.campaign_duplicate(campaign=campaign, actor=request.user)
    messages.success(
        request, f"“{copy.name}” is a new draft with the content and audience of “{campaign.name}”."
    )
    return redirect("campaign_detail", campaign_id=copy.pk)


# -- sending ------------------------------------------------------------------------------------


def _progress_context(campaign: Campaign) -> dict[str, object]:
    progress = selectors.progress(campaign)
    return {
        "campaign": campaign,
        "progress": progress,
        "polling": campaign.status == State.SENDING,
        "finishes_at": (
            timezone.now() + dt.timedelta(seconds=progress.seconds_left)
            if progress.seconds_left is not None
            else None
        ),
    }


@account_required(Perm.VIEW)
def campaign_progress(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """The progress panel alone, polled by htmx every 2 seconds while the campaign sends."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    context = _progress_context(campaign)
    response = render(request, "campaigns/_campaign_progress.html", context)
    if request.htmx and not context["polling"]:
        # Sent, paused, cancelled or failed: the actions and the failures change too, so
        # the page reloads once, and the panel it gets back no longer polls.
        response["HX-Refresh"] = "true"
    return response


def _act(
    request: AccountRequest,
    campaign: Campaign,
    service: Callable[..., Campaign],
    done: str,
    **arguments: object,
) -> HttpResponse:
    """Call one sending service; its refusals become messages on the campaign's page."""
    try:
        service(campaign=campaign, actor=request.user, **arguments)
    except ValidationError as refused:
        for reason in refused.messages:
            messages.error(request, reason)
    else:
        messages.success(request, done)
    return redirect("campaign_detail", campaign_id=campaign.pk)


def _unaccepted_errors(request: AccountRequest, campaign: Campaign) -> bool:
    """Whether the checks found errors the person did not tick to send anyway. A campaign
    that cannot be sent at all goes on to the service, which says every reason."""
    if request.POST.get(checks.ACCEPT_ERRORS) or not checks.errors(campaign):
        return False
    return not selectors.start_problems(campaign)


def _confirm(request: AccountRequest, campaign: Campaign, **context: object) -> HttpResponse:
    return render(request, "campaigns/campaign_confirm.html", {"campaign": campaign, **context})


@account_required(Perm.SEND)
def campaign_start(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """Send now: a page saying whom it will reach, then the POST that starts it."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    refused = ""
    if request.method == "POST":
        if not _unaccepted_errors(request, campaign):
            return _act(
                request,
                campaign,
                services.campaign_start,
                f"“{campaign.name}” is being sent.",
            )
        refused = "Not sent: fix the errors below, or tick that you send it with them."
    reach = selectors.audience(campaign)
    return _confirm(
        request,
        campaign,
        title=f"Send “{campaign.name}” now?",
        reach=reach,
        problems=selectors.start_problems(campaign, reach),
        # What the checks found that is worth a look before it goes; errors are sent
        # only once the person ticks that they send them anyway.
        checks=[c for c in presend_checks(campaign) if c.level != Level.INFO],
        accept_errors=checks.ACCEPT_ERRORS,
        refused=refused,
        test=ABTest.objects.filter(campaign=campaign).first(),
        possible=Action.START in allowed_actions(campaign.status, campaign.kind),
        confirm_label="Send now",
    )


@account_required(Perm.SEND)
@require_POST
def campaign_schedule(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    form = ScheduleForm(request.POST, time_zone=campaign.account.time_zone)
    if not form.is_valid():
        for reason in form.errors["when"]:
            messages.error(request, f"Not scheduled: {reason}")
        return redirect("campaign_detail", campaign_id=campaign.pk)
    if _unaccepted_errors(request, campaign):
        messages.error(
            request,
            "Not scheduled: the checks found errors. Fix them, or tick that you send it with them.",
        )
        return redirect("campaign_detail", campaign_id=campaign.pk)
    when = form.cleaned_data["when"]
    local = timezone.localtime(when, form.zone)
    return _act(
        request,
        campaign,
        services.campaign_schedule,
        f"“{campaign.name}” will be sent on {local:%Y-%m-%d at %H:%M} ({form.zone.key}).",
        when=when,
    )


@account_required(Perm.SEND)
@require_POST
def campaign_unschedule(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    return _act(
        request, campaign, services.campaign_unschedule, "Back to draft: nothing is scheduled."
    )


@account_required(Perm.SEND)
@require_POST
def campaign_pause(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    return _act(
        request,
        campaign,
        services.campaign_pause,
        "Paused: the messages already on their way finish, no others leave until you resume.",
    )


@account_required(Perm.SEND)
@require_POST
def campaign_resume(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    return _act(
        request,
        campaign,
        services.campaign_resume,
        "Resumed: sending continues with those not reached yet.",
    )


@account_required(Perm.SEND)
def campaign_cancel(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if request.method == "POST":
        return _act(
            request,
            campaign,
            services.campaign_cancel,
            f"“{campaign.name}” is cancelled: nobody else will receive it.",
        )
    return _confirm(
        request,
        campaign,
        title=f"Cancel “{campaign.name}”?",
        body=(
            "Nobody else receives it: those not reached yet never will, and a cancelled "
            "campaign cannot be resumed. Messages already sent stay sent."
        ),
        possible=Action.CANCEL in allowed_actions(campaign.status, campaign.kind),
        confirm_label="Cancel the campaign",
        danger=True,
    )


@account_required(Perm.VIEW)
@xframe_options_sameorigin
def campaign_preview(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """The message as a recipient would see it, for the editor's sandboxed frame."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    # (a contact id that is malformed or not in the account: the sample recipient)
    contact = selectors.preview_contact(campaign, QueryParams(request.GET).id("contact"))
    # An A/B variant's content (B is 1); A, or a variant the campaign lacks: its own.
    variant = QueryParams(request.GET).id("variant")
    campaign = ab.content_of(campaign, variant)
    try:
        _subject, html, _text = compose(campaign).render(
            selectors.recipient_values(campaign, contact)
        )
    except TemplateRefused as refused:
        # The problem quotes the template, markup included: it is shown as text.
        html = format_html("<p>This message cannot be shown: {}</p>", str(refused))
    return framed(html)


@account_required(Perm.SEND)
def campaign_test(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if request.method != "POST":
        return redirect("campaign_detail", campaign_id=campaign.pk)
    form = TestSendForm(request.POST, account=request.account)
    if form.is_valid():
        as_contact = form.cleaned_data.get("contact")
        try:
            result = services.campaign_test_send(
                campaign=campaign,
                actor=request.user,
                recipients=form.cleaned_data["recipients"],
                as_contact=as_contact,
            )
        except (
            ValidationError,
            TemplateRefused,
            OSError,
            services.TestSendRefused,
            services.TestSendLimitReached,
        ) as error:
            text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            messages.error(request, f"The test was not sent: {text}")
        else:
            sent = result.sent
            if sent or not result.skipped:
                who = f", as {as_contact.email}" if as_contact is not None else ""
                messages.success(
                    request, f"Test sent to {sent} address{'es' if sent != 1 else ''}{who}."
                )
            if result.skipped:
                skipped = ", ".join(f"{a} ({why})" for a, why in result.skipped.items())
                messages.warning(request, f"Nothing was sent to {skipped}.")
    else:
        for errors in form.errors.values():
            messages.error(request, " ".join(map(str, errors)))
    return redirect("campaign_detail", campaign_id=campaign.pk)


@account_required(Perm.EDIT_CONTENT)
def campaign_delete(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if request.method == "POST":
        try:
            services.campaign_delete(campaign=campaign, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("campaign_detail", campaign_id=campaign.pk)
        messages.success(request, f"“{campaign.name}” deleted.")
        return redirect("campaigns")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete the draft “{campaign.name}”?",
            "body": "Its content is lost unless you saved it as a template.",
            "confirm_label": "Delete draft",
            "cancel_url": "campaigns",
        },
    )


@account_required(Perm.EDIT_CONTENT)
def campaign_save_template(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    form = SaveTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        template = services.template_save(
            campaign=campaign, actor=request.user, name=form.cleaned_data["name"]
        )
        messages.success(request, f"Saved as the template “{template.name}”.")
    return redirect("campaign_detail", campaign_id=campaign.pk)


@account_required(Perm.VIEW)
def templates(request: AccountRequest) -> HttpResponse:
    return render(
        request, "campaigns/templates.html", {"templates": selectors.templates(request.account)}
    )


@account_required(Perm.EDIT_CONTENT)
def template_delete(request: AccountRequest, template_id: int) -> HttpResponse:
    template = get_for_account_or_404(Template, request.account, pk=template_id)
    if request.method == "POST":
        services.template_delete(template=template, actor=request.user)
        messages.success(request, f"Template “{template.name}” deleted.")
        return redirect("campaign_templates")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete the template “{template.name}”?",
            "body": "Campaigns made from it keep their content.",
            "confirm_label": "Delete template",
            "cancel_url": "campaign_templates",
        },
    )


@require_POST
@account_required(Perm.EDIT_CONTENT)
def campaign_publish(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    public = request.POST.get("public") == "on"
    services.campaign_publish(campaign=campaign, actor=request.user, public=public)
    if public:
        messages.success(
            request,
            "The campaign is in the public archive"
            + (" now." if campaign.status == State.SENT else " once it is sent."),
        )
    else:
        messages.success(request, "The campaign is out of the public archive.")
    return redirect("campaign_detail", campaign_id=campaign.pk)


@require_POST
@account_required(Perm.EDIT_CONTENT)
def campaign_follow_up(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """From a sent campaign's report: a draft for those who did not open it, or for those
    who clicked one of its links."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    link = None
    if request.POST.get("link", "").isdigit():
        link = Link.objects.for_account(request.account).filter(pk=request.POST["link"]).first()
    try:
        follow_up = services.campaign_follow_up(
            campaign=campaign,
            actor=request.user,
            audience=request.POST.get("audience", ""),
            link=link,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("campaign_report", campaign_id=campaign.pk)
    messages.success(
        request,
        f"Follow-up drafted for the segment “{follow_up.segment}”: change what you like, "
        "then send it.",
    )
    return redirect("campaign_detail", campaign_id=follow_up.pk)
