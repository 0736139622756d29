from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictJSONMixin
from domains import selectors, services
from domains.checks import DomainReport
from domains.models import DkimKey, SendingDomain

# What the last check found of a record ("unchecked": no check yet).
RECORD_STATUSES = ["found", "missing", "wrong", "unavailable", "unchecked"]


# A host name with at least one dot, in ASCII (an internationalized name as its IDNA
# A-labels, xn--…), as the schema shows it; the service checks it again.
DOMAIN_NAME = (
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$"
)


class DomainAddSerializer(StrictJSONMixin, serializers.Serializer):
    name = serializers.RegexField(
        DOMAIN_NAME,
        max_length=253,
        help_text="The domain of your sender addresses, e.g. news.example.com; an "
        "internationalized name in its ASCII form (xn--…).",
        error_messages={
            "invalid": "Give a domain name such as news.example.com (letters, digits and "
            "hyphens, at least one dot; an internationalized name as xn--…)."
        },
    )
    ed25519 = serializers.BooleanField(
        default=False, help_text="Also sign with an Ed25519 key (RFC 8463), beside RSA-2048."
    )


class DomainUpdateSerializer(StrictJSONMixin, serializers.Serializer):
    warmup = serializers.BooleanField(help_text="Follow the warm-up schedule from today.")
    warmup_schedule = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=999_999_999),
        min_length=1,
        max_length=services.MAX_WARMUP_DAYS,
        required=False,
        help_text="Daily caps, first day first; after the last day there is no cap. Default "
        + ", ".join(str(n) for n in services.DEFAULT_WARMUP)
        + ".",
    )


class RecordSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    type = serializers.CharField(help_text="TXT, MX or CNAME.")
    name = serializers.CharField(help_text="The fully qualified name to publish it at.")
    value = serializers.CharField()
    note = serializers.CharField()
    status = serializers.ChoiceField(
        choices=RECORD_STATUSES,
        help_text="What the last check found in DNS.",
    )
    found = serializers.ListField(child=serializers.CharField(), help_text="What DNS held.")
    message = serializers.CharField(help_text="What to do, when it is not found.")


class KeySerializer(serializers.ModelSerializer):
    class Meta:
        model = DkimKey
        fields = ["selector", "algorithm", "state", "created_at", "activated_at", "retire_after"]
        read_only_fields = fields


class WarmupSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    started_on = serializers.DateField(allow_null=True)
    schedule = serializers.ListField(child=serializers.IntegerField())
    today_cap = serializers.IntegerField(allow_null=True, help_text="Null: no cap today.")


class DomainSerializer(serializers.ModelSerializer):
    """A sending domain as listed."""

    class Meta:
        model = SendingDomain
        fields = ["id", "name", "status", "created_at", "verified_at", "checked_at"]
        read_only_fields = fields


class DomainDetailSerializer(serializers.ModelSerializer):
    """A sending domain with the records to publish and what its last check found."""

    records = serializers.SerializerMethodField()
    alignment = serializers.SerializerMethodField(
        help_text="Per mechanism (dkim, spf): aligned in relaxed and strict mode."
    )
    keys = KeySerializer(many=True, read_only=True)
    warmup = serializers.SerializerMethodField()
    conflict = serializers.SerializerMethodField(
        help_text="Set when another account verified this domain first."
    )

    class Meta:
        model = SendingDomain
        fields = [
            "id",
            "name",
            "status",
            "created_at",
            "verified_at",
            "checked_at",
            "failing_since",
            "records",
            "alignment",
            "keys",
            "warmup",
            "conflict",
        ]
        read_only_fields = fields

    def _report(self, domain: SendingDomain) -> DomainReport | None:
        return DomainReport.from_dict(domain.report) if domain.report else None

    @extend_schema_field(RecordSerializer(many=True))
    def get_records(self, domain: SendingDomain) -> list[dict[str, Any]]:
        report = self._report(domain)
        found = {(c.name.lower(), c.rtype): c for c in report.checks} if report else {}
        rows = []
        for record in services.records_to_publish(domain):
            check = found.get((record.name.lower(), record.rtype))
            rows.append(
                {
                    "purpose": record.purpose,
                    "type": record.rtype,
                    "name": record.name,
                    "value": record.value,
                    "note": record.note,
                    "status": check.status if check else "unchecked",
                    "found": list(check.found) if check else [],
                    "message": check.message if check and check.status != "found" else "",
                }
            )
        return rows

    def get_alignment(self, domain: SendingDomain) -> dict[str, Any]:
        report = self._report(domain)
        return asdict(report.alignment) if report else {}

    @extend_schema_field(WarmupSerializer)
    def get_warmup(self, domain: SendingDomain) -> dict[str, Any]:
        return {
            "enabled": domain.warmup,
            "started_on": domain.warmup_started_on,
            "schedule": list(domain.warmup_schedule),
            "today_cap": selectors.warmup_cap_today(domain),
        }

    def get_conflict(self, domain: SendingDomain) -> str:
        report = self._report(domain)
        return report.conflict if report else ""
