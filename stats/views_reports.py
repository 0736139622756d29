"""Campaign reports: the page (people by default, machines on request), its CSV, and
the comparison of the account's last campaigns that the dashboard loads. Everything is
read from the roll-up's counters (stats/reports.py)."""

from __future__ import annotations

import csv
import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns import ab
from campaigns.models import Campaign
from campaigns.states import State
from stats import reports
from stats.charts import timeline_svg

# The page refreshes itself while the numbers still move a lot.
LIVE_FOR = dt.timedelta(days=2)


def _include_machines(request: HttpRequest) -> bool:
    return request.GET.get("machines") in ("1", "true", "yes")


def _charts(report: reports.CampaignReport) -> dict[str, str]:
    charts: dict[str, str] = {}
    if report.hourly:
        charts["hourly_chart"] = timeline_svg(
            report.hourly,
            title="Opens and clicks per hour, first 48 hours",
            label=lambda start: start.strftime("%a %H:00"),
            label_every=6,
            describe=lambda start: start.strftime("%a %d %b, %H:00"),
        )
    if report.daily:
        charts["daily_chart"] = timeline_svg(
            report.daily,
            title="Opens and clicks per day, after the first 48 hours",
            label=lambda start: start.strftime("%d %b"),
            label_every=max(1, len(report.daily) // 8),
            describe=lambda start: start.strftime("%a %d %b"),
        )
    return charts


@require_safe
@account_required(Perm.VIEW)
def campaign_report(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    report = reports.campaign_report(
        request.account, campaign, include_machines=_include_machines(request)
    )
    live = campaign.status == State.SENDING or (
        campaign.finished_at is not None and report.now - campaign.finished_at < LIVE_FOR
    )
    context = {
        "campaign": campaign,
        "report": report,
        "totals": report.totals,
        "freshness": reports.ago(report.age_seconds),
        "live": live,
        # Follow-ups (a draft for those who did not open, or who clicked a link) once it
        # went out, for those who may write campaigns.
        "follow_ups": campaign.started_at is not None
        and role_can(request.membership.role, Perm.EDIT_CONTENT),
        **_charts(report),
        "ab": ab.page_context(campaign),
        "time_zone": campaign.account.time_zone,
        "can_edit": False,
    }
    template = "stats/_report_body.html" if request.htmx else "stats/campaign_report.html"
    return render(request, template, context)


@require_safe
@account_required(Perm.EXPORT)
def campaign_report_csv(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    report = reports.campaign_report(
        request.account, campaign, include_machines=_include_machines(request)
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = slugify(campaign.name) or "campaign"
    response["Content-Disposition"] = f'attachment; filename="report-{campaign.pk}-{name}.csv"'
    csv.writer(response).writerows(reports.report_csv_rows(report))
    return response


@require_safe
@account_required(Perm.VIEW)
def campaign_comparison(request: AccountRequest) -> HttpResponse:
    """The account's last campaigns side by side: loaded into the dashboard by htmx."""
    return render(
        request,
        "stats/_campaign_comparison.html",
        {"rows": reports.campaign_comparison(request.account)},
    )
