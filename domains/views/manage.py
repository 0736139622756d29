"""The customer's sending domains: add one, see the records to publish and what DNS
holds, check now, replace the keys, set the warm-up, remove it."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from domains import selectors, services
from domains.checks import DomainReport
from domains.forms import DomainAddForm, WarmupForm
from domains.models import SendingDomain


@account_required(Perm.VIEW)
def domains(request: AccountRequest) -> HttpResponse:
    form = DomainAddForm(request.POST or None)
    if request.method == "POST":
        if not role_can(request.membership.role, Perm.MANAGE_ACCOUNT):
            messages.error(request, "Your role cannot add sending domains.")
            return redirect("domains")
        if form.is_valid():
            try:
                domain = services.domain_add(
                    account=request.account,
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    ed25519=form.cleaned_data["ed25519"],
                )
            except ValidationError as error:
                for message in error.messages:
                    form.add_error("name", message)
            else:
                messages.success(
                    request, f"{domain.name} added. Publish the records below, then check it."
                )
                return redirect("domain_detail", domain_id=domain.pk)
    return render(
        request,
        "domains/domains.html",
        {
            "domains": selectors.domains(request.account),
            "form": form,
            "shared": selectors.shared_domain() if request.account.shared_domain_allowed else None,
        },
    )


@account_required(Perm.VIEW)
def domain_detail(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    report = DomainReport.from_dict(domain.report) if domain.report else None
    found = {(check.name.lower(), check.rtype): check for check in report.checks} if report else {}
    records = [
        (record, found.get((record.name.lower(), record.rtype)) if report else None)
        for record in services.records_to_publish(domain)
    ]
    return render(
        request,
        "domains/domain_detail.html",
        {
            "domain": domain,
            "records": records,
            "report": report,
            "keys": domain.keys.all(),
            "warmup_form": WarmupForm(
                initial={
                    "warmup": domain.warmup,
                    "warmup_schedule": ", ".join(str(n) for n in domain.warmup_schedule)
                    or WarmupForm.base_fields["warmup_schedule"].initial,
                }
            ),
            "today_cap": selectors.warmup_cap_today(domain),
        },
    )


@require_POST
@account_required(Perm.MANAGE_ACCOUNT)
def domain_check(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    was = domain.status
    report = services.domain_check(domain=domain, actor=request.user)
    if report.conflict:
        messages.error(request, report.conflict)
    elif domain.status == SendingDomain.Status.VERIFIED and was != domain.status:
        messages.success(request, f"{domain.name} is verified: campaigns can be sent from it.")
    elif domain.status == SendingDomain.Status.VERIFIED:
        messages.success(request, f"{domain.name} checked: its signing key is published.")
    else:
        messages.warning(request, f"{domain.name} checked: see what is missing below.")
    return redirect("domain_detail", domain_id=domain.pk)


@require_POST
@account_required(Perm.MANAGE_ACCOUNT)
def domain_rotate(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    try:
        keys = services.domain_rotate_keys(domain=domain, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        selectors_made = ", ".join(k.selector for k in keys)
        messages.success(
            request,
            f"New key made ({selectors_made}). Publish its record; once a check finds it, "
            "it signs and the old key is kept for a grace period.",
        )
    return redirect("domain_detail", domain_id=domain.pk)


@require_POST
@account_required(Perm.MANAGE_ACCOUNT)
def domain_warmup(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    form = WarmupForm(request.POST)
    if form.is_valid():
        try:
            services.domain_update(
                domain=domain,
                actor=request.user,
                warmup=form.cleaned_data["warmup"],
                warmup_schedule=form.cleaned_data["warmup_schedule"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Warm-up saved.")
    else:
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("domain_detail", domain_id=domain.pk)


@account_required(Perm.MANAGE_ACCOUNT)
def domain_delete(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    if request.method == "POST":
        services.domain_delete(domain=domain, actor=request.user)
        messages.success(request, f"{domain.name} removed.")
        return redirect("domains")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Remove {domain.name}?",
            "body": "Its DKIM keys are deleted and campaigns from its addresses cannot be "
            "sent until it is added and verified again, with new keys and new records. You "
            "can then remove its DKIM records from your DNS.",
            "confirm_label": "Remove the domain",
            "cancel_url": "domains",
        },
    )
