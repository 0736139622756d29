"""The campaign report in the API: the same figures as the report page, from the
roll-up's counters (stats/reports.py). The campaign is fetched through
``get_for_account_or_404``, so another account's campaign answers 404 like a missing one.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from campaigns.models import Campaign
from domains.models import SendingDomain
from stats import reports
from stats.readiness import FAIL, readiness


def _count(help_text: str = "") -> serializers.IntegerField:
    return serializers.IntegerField(read_only=True, help_text=help_text)


def _rate(help_text: str = "") -> serializers.FloatField:
    return serializers.FloatField(read_only=True, allow_null=True, help_text=help_text)


class ReportParamsSerializer(serializers.Serializer):
    include_machines = serializers.BooleanField(
        default=False,
        help_text="Count opens by privacy prefetchers and scanners and clicks by link "
        "scanners too. By default only people are counted (Gmail's image proxy fetches "
        "when its user opens the message: those opens are people's).",
    )


class ReportTotalsSerializer(serializers.Serializer):
    recipients = _count("In the audience when the send began.")
    sent = _count()
    delivered = _count(
        "As the sending provider reported, or sent less bounced when it reports no "
        "deliveries (see delivered_reported)."
    )
    delivered_reported = serializers.BooleanField(
        read_only=True, help_text="Whether the provider reports deliveries."
    )
    opens = _count("Opens (events).")
    opens_unique = _count("Recipients who opened.")
    clicks = _count("Clicks (events).")
    clicks_unique = _count("Recipients who clicked.")
    machine_opens = _count(
        "Opens by privacy prefetchers and scanners, always apart (see machines for why)."
    )
    machine_clicks = _count("Clicks by link scanners, always apart.")
    anonymous_opens = _count(
        "People's opens through anonymous links (anonymous tracking, or recipients who "
        "objected to tracking): in opens, but in no recipient count."
    )
    anonymous_clicks = _count("Likewise for clicks.")
    bounced = _count("Recipients whose message bounced, whatever the kind.")
    bounced_hard = _count()
    bounced_soft = _count()
    bounced_other = _count("Policy rejections and bounces of unknown kind.")
    deferred = _count(
        "Recipients whose server put the message off for the sender's sake (rate limits, "
        "reputation, a busy server): a sending problem, retried, never held against them."
    )
    complaints = _count("Recipients who marked the message as spam.")
    unsubscribes = _count("Recipients who unsubscribed from it.")


class ReportRatesSerializer(serializers.Serializer):
    """Shares from 0 to 1; null when there is nothing to divide by."""

    open_rate = _rate("Recipients who opened, of those delivered.")
    click_rate = _rate("Recipients who clicked, of those delivered.")
    click_to_open_rate = _rate("Recipients who clicked, of those who opened.")
    bounce_rate = _rate("Recipients whose message bounced, of those sent.")
    hard_bounce_rate = _rate()
    soft_bounce_rate = _rate()
    complaint_rate = _rate("Complaints, of the messages delivered.")
    unsubscribe_rate = _rate("Unsubscribes, of the messages delivered.")


class ReportLinkSerializer(serializers.Serializer):
    position = serializers.IntegerField(read_only=True)
    url = serializers.CharField(read_only=True)
    clicks = _count()
    clicks_unique = _count("Recipients who clicked it.")
    click_rate = _rate()


class ReportMachineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        read_only=True,
        help_text="apple_mpp, prefetch, scanner, automation, no_agent, timing or provider; "
        "empty for events recorded before reasons were kept.",
    )
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]  # a declared field: DRF takes it off the class
    opens = _count()
    clicks = _count()


class ReportDomainSerializer(serializers.Serializer):
    domain = serializers.CharField(read_only=True, help_text="Empty for erased recipients.")
    sent = _count()
    delivered = _count()
    opens_unique = _count()
    clicks_unique = _count()
    bounced = _count()
    bounced_hard = _count()
    bounced_soft = _count()
    complaints = _count()
    unsubscribes = _count()
    open_rate = _rate()
    click_rate = _rate()
    bounce_rate = _rate()


class ReportPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField(read_only=True)
    opens = serializers.IntegerField(read_only=True)
    clicks = serializers.IntegerField(read_only=True)


class CampaignReportSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField(source="campaign.pk", read_only=True)
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    include_machines = serializers.BooleanField(read_only=True)
    as_of = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Every event recorded before this instant is counted.",
    )
    age_seconds = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="How far behind the counts are."
    )
    totals = ReportTotalsSerializer(read_only=True)
    rates = ReportRatesSerializer(source="totals", read_only=True)
    links = ReportLinkSerializer(many=True, read_only=True)
    machines = ReportMachineSerializer(
        many=True,
        read_only=True,
        help_text="Why opens and clicks were judged machines' (they are in machine_opens and "
        "machine_clicks), most first.",
    )
    top_domains = ReportDomainSerializer(
        many=True, read_only=True, help_text="The 10 domains with most recipients who opened."
    )
    bounce_domains = ReportDomainSerializer(
        many=True, read_only=True, help_text="The 10 domains with most bounced recipients."
    )
    hourly = ReportPointSerializer(
        many=True, read_only=True, help_text="Opens and clicks per hour, first 48 hours."
    )
    daily = ReportPointSerializer(
        many=True, read_only=True, help_text="Then per day (in the account's time zone)."
    )


class CampaignReportView(AccountAPIMixin, APIView):
    required_perms = {"GET": Perm.VIEW}

    @extend_schema(
        operation_id="campaigns_report",
        parameters=[ReportParamsSerializer],
        responses=CampaignReportSerializer,
        description="The campaign's report: counts, rates, clicks per link, top domains and "
        "opens and clicks over time. Kept by a periodic roll-up: `as_of` says how fresh it "
        "is (usually under 20 seconds).",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        params = ReportParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        campaign = get_for_account_or_404(Campaign, self.account, pk=campaign_id)
        report = reports.campaign_report(
            self.account, campaign, include_machines=params.validated_data["include_machines"]
        )
        return Response(CampaignReportSerializer(report).data)


class ReadinessLineSerializer(serializers.Serializer):
    rule = serializers.CharField(read_only=True)
    required_by = serializers.CharField(read_only=True, help_text="Whose published rule.")
    status = serializers.ChoiceField(choices=["pass", "warn", "fail", "unknown"], read_only=True)
    figure = serializers.CharField(read_only=True, help_text="What was measured.")
    advice = serializers.CharField(read_only=True, help_text="What to do.")


class ReadinessSerializer(serializers.Serializer):
    domain = serializers.CharField(read_only=True)
    ready = serializers.BooleanField(read_only=True, help_text="No rule fails.")
    lines = ReadinessLineSerializer(many=True, read_only=True)


class DomainReadinessView(AccountAPIMixin, APIView):
    required_perms = {"GET": Perm.VIEW}

    @extend_schema(
        operation_id="domains_readiness",
        responses=ReadinessSerializer,
        description="The domain against Gmail's, Yahoo's and Microsoft's rules for bulk "
        "senders: SPF, DKIM, DMARC and its alignment, one-click unsubscribe, Feedback-ID, "
        "complaint and bounce rates over 30 days, deferrals, and the sending host's PTR and "
        "TLS where Missive sends directly.",
    )
    def get(self, request: Request, domain_id: int) -> Response:
        domain = get_for_account_or_404(SendingDomain, self.account, pk=domain_id)
        lines = readiness(domain)
        data = {
            "domain": domain.name,
            "ready": all(line.status != FAIL for line in lines),
            "lines": lines,
        }
        return Response(ReadinessSerializer(data).data)
