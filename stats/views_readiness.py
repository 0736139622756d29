"""Readiness of sending domains against Gmail's, Yahoo's and Microsoft's rules: the page
of a domain, and the pre-send verdict the campaign page loads for its From domain."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns.models import Campaign
from domains.models import SendingDomain
from domains.selectors import from_address_problem, sender_for
from stats.readiness import FAIL, WARN, readiness


@require_safe
@account_required(Perm.VIEW)
def domain_readiness(request: AccountRequest, domain_id: int) -> HttpResponse:
    domain = get_for_account_or_404(SendingDomain, request.account, pk=domain_id)
    lines = readiness(domain)
    return render(
        request,
        "stats/domain_readiness.html",
        {
            "domain": domain,
            "lines": lines,
            "failing": [line for line in lines if line.status == FAIL],
            "warnings": [line for line in lines if line.status == WARN],
        },
    )


@require_safe
@account_required(Perm.VIEW)
def campaign_readiness(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """The verdict for the campaign's From domain, as a fragment of its page."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    problem = from_address_problem(request.account, campaign.from_email)
    sender = sender_for(
        request.account,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    )
    domain = sender.domain
    lines = readiness(domain) if domain is not None and domain.account_id else []
    return render(
        request,
        "stats/_campaign_readiness.html",
        {
            "campaign": campaign,
            "problem": problem,
            "domain": domain,
            "shared": domain is not None and domain.account_id is None,
            "failing": [line for line in lines if line.status == FAIL],
            "warnings": [line for line in lines if line.status == WARN],
        },
    )
