"""What the campaigns API reads and writes. Input serializers only check shapes and
types; the rules (sanitized HTML, merge tags, states, readiness to send) live in
campaigns.services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictJSONMixin
from accounts.models import validate_single_line
from accounts.scoping import account_queryset
from audiences.models import Segment
from campaigns import ab, blocks, selectors
from campaigns.checks import CHECK_CODES, Level
from campaigns.models import ABTest, Campaign, Link, Template
from campaigns.starters import BLOCK_STARTERS, STARTERS
from campaigns.states import HUMAN_ACTIONS, State, allowed_actions
from contacts.api.serializers import AddressField
from contacts.models import Contact, ContactList


class CampaignStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=State.choices, **kwargs)


class CampaignStatusSchema(OpenApiSerializerFieldExtension):
    """Names the campaign states ``CampaignStatusEnum``: left to drf-spectacular, they
    would clash with the other ``status`` enums of the schema."""

    target_class = CampaignStatusField

    def get_name(self) -> str:
        return "CampaignStatusEnum"

    def map_serializer_field(self, auto_schema: object, direction: str) -> dict:
        return {"type": "string", "enum": State.values}


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time that must carry its offset: a bare time would be read
    in whatever zone the server happens to use."""

    default_error_messages = {
        "naive": "Give the time with its offset, e.g. 2030-06-01T09:00:00+02:00.",
    }

    def enforce_timezone(self, value: Any) -> Any:
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Recipients in the audience taken at the start.")
    sent = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Messages given up on after their retries.")
    skipped = serializers.IntegerField(
        help_text="Recipients who unsubscribed or were suppressed after the start."
    )
    remaining = serializers.IntegerField(help_text="Neither sent, failed nor skipped yet.")
    percent = serializers.IntegerField(help_text="Share of the audience handled, 0 to 100.")
    rate = serializers.FloatField(help_text="Recipients handled per second since the start.")
    seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Estimate while sending; null when it cannot be told."
    )
    finished = serializers.BooleanField(
        help_text="True once the campaign is sent, cancelled or failed."
    )

    def to_representation(self, instance: Any) -> dict:
        data = super().to_representation(instance)
        data["rate"] = round(data["rate"], 1)
        return data


class CampaignProgressSerializer(serializers.Serializer):
    """A campaign's send, from its counters: cheap enough to poll every few seconds."""

    id = serializers.IntegerField()
    status = CampaignStatusField()
    progress = ProgressSerializer()
    excluded = serializers.IntegerField(
        help_text="Subscribed but suppressed when the audience was taken: not sent to."
    )
    scheduled_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField(help_text="Why the send failed, when it did.")

    @classmethod
    def of(cls, campaign: Campaign) -> dict:
        return cls(
            {
                "id": campaign.pk,
                "status": campaign.status,
                "progress": selectors.progress(campaign),
                "excluded": campaign.excluded_count,
                "scheduled_at": campaign.scheduled_at,
                "started_at": campaign.started_at,
                "finished_at": campaign.finished_at,
                "failure_reason": campaign.failure_reason,
            }
        ).data


class AccountObjectField(serializers.PrimaryKeyRelatedField):
    """The id of one of the account's objects (``queryset`` names the model); another
    account's is answered like a missing one."""

    def get_queryset(self) -> QuerySet[Any]:
        declared = super().get_queryset()
        assert declared is not None, "an AccountObjectField names its model with queryset="
        return account_queryset(declared.model, self.context["account"])


class CampaignSerializer(StrictJSONMixin, serializers.ModelSerializer):
    """A campaign without its body, as listed."""

    status = CampaignStatusField(read_only=True)
    lists = AccountObjectField(
        queryset=ContactList.objects.none(),
        many=True,
        required=False,
        error_messages={"does_not_exist": "No list with id {pk_value}."},
        help_text="Ids of the lists the campaign goes to.",
    )
    segment = AccountObjectField(
        queryset=Segment.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No segment with id {pk_value}."},
        help_text="Id of a segment: only the contacts of the lists who match it. With no "
        "list, the segment's subscribed contacts on any list.",
    )
    actions = serializers.SerializerMethodField(
        help_text="What may be done to the campaign in its state: "
        + ", ".join(f"`{a}`" for a in HUMAN_ACTIONS)
        + "."
    )
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "subject",
            "preheader",
            "from_name",
            "from_email",
            "reply_to",
            "lists",
            "segment",
            "scheduled_at",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
            "actions",
            "progress",
        ]
        read_only_fields = [
            "id",
            "scheduled_at",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_actions(self, campaign: Campaign) -> list[str]:
        return [str(action) for action in allowed_actions(campaign.status, campaign.kind)]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, campaign: Campaign) -> dict:
        return ProgressSerializer(selectors.progress(campaign)).data


BLOCKS_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "With `editor` `blocks`: the body as blocks, from which the HTML is made "
    "(responsive, through MJML) on each save; errors name the part at fault "
    "(`blocks.2.href`). `settings`: background, content_background, text_color, link_color "
    f"(#rrggbb) and font ({', '.join(blocks.FONTS)}). Each block has a `type` ("
    + ", ".join(blocks.LABELS)
    + ") and that type's fields: heading (text, level 1-3), text (html: bold, italic, "
    "links, lists; sanitized), image (src, alt, href, width 0-600), button (label, href, "
    "background, color, radius), divider (color, thickness), spacer (height), columns "
    "(columns: two or three lists of blocks), social (links: network and href), quote "
    "(text, cite, border), footer (text); most take align (left, center, right) and "
    "padding (0-80). Links are https, http, mailto, tel or a merge tag.",
    "additionalProperties": False,
    "properties": {
        # What campaigns.blocks.clean_document takes: no other setting.
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{
                    name: {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}
                    for name in ("background", "content_background", "text_color", "link_color")
                },
                "font": {"type": "string", "enum": list(blocks.FONTS)},
            },
        },
        "blocks": {
            "type": "array",
            "maxItems": blocks.MAX_BLOCKS,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": list(blocks.LABELS)}},
            },
        },
    },
}


@extend_schema_field(BLOCKS_SCHEMA)
class BlocksField(serializers.JSONField):
    """A body of blocks: JSON, checked by campaigns.blocks when the campaign is saved."""


class CampaignDetailSerializer(CampaignSerializer):
    """A campaign with its body. On update, only the fields given change; the text part
    is made from the HTML unless ``text_is_custom`` is true."""

    failure_reason = serializers.CharField(read_only=True)
    blocks = BlocksField(required=False, allow_null=True)

    class Meta(CampaignSerializer.Meta):
        fields = [
            *CampaignSerializer.Meta.fields,
            "editor",
            "blocks",
            "html",
            "text",
            "text_is_custom",
            "track_opens",
            "track_clicks",
            "public_archive",
            "failure_reason",
        ]
        read_only_fields = [*CampaignSerializer.Meta.read_only_fields, "public_archive"]
        extra_kwargs = {
            "html": {
                "help_text": "Sanitized when saved: scripts, forms and event handlers go. "
                "With the blocks editor it is made from the blocks (what is given is ignored)."
            },
            "editor": {"help_text": "`html` (the HTML is yours) or `blocks`."},
            "public_archive": {
                "help_text": "Shown in the account's public archive once sent (change it "
                "with `POST …/publish/`, in any state)."
            },
        }


class CampaignCreateSerializer(CampaignDetailSerializer):
    """A new draft: blank, from one of Missive's starters, or from one of your templates."""

    starter = serializers.ChoiceField(
        choices=[(s.key, s.name) for s in [*STARTERS, *BLOCK_STARTERS]],
        required=False,
        write_only=True,
        help_text="Start from this starter's subject and body.",
    )
    template = AccountObjectField(
        queryset=Template.objects.none(),
        required=False,
        write_only=True,
        error_messages={"does_not_exist": "No template with id {pk_value}."},
        help_text="Start from this template of yours (its id).",
    )

    class Meta(CampaignDetailSerializer.Meta):
        fields = [*CampaignDetailSerializer.Meta.fields, "starter", "template"]

    def validate(self, data: dict) -> dict:
        if data.get("starter") and data.get("template"):
            raise serializers.ValidationError(
                {"template": "Start from a starter or a template, not both."}
            )
        return data


class CampaignCreateSchema(OpenApiSerializerExtension):
    """Says in the schema what ``validate`` refuses: a starter and a template at once."""

    target_class = CampaignCreateSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["not"] = {"required": ["starter", "template"]}
        return schema


class CampaignFilterSerializer(serializers.Serializer):
    status = CampaignStatusField(required=False, help_text="Only campaigns in this state.")


class TestSendSerializer(StrictJSONMixin, serializers.Serializer):
    recipients = serializers.ListField(
        child=AddressField(max_length=254),
        min_length=1,
        max_length=5,
        help_text="1 to 5 addresses.",
    )
    contact = AccountObjectField(
        queryset=Contact.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No contact with id {pk_value}."},
        help_text="Id of one of your contacts: the merge tags are filled with their fields "
        "and attributes. Without it, with sample values.",
    )


class CheckSerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=[(level.value, level.value) for level in Level],
        help_text="`error`: fix it before sending; `warning`: worth a look; `info`: advice.",
    )
    code = serializers.CharField(
        help_text="What was checked: " + ", ".join(f"`{code}`" for code in CHECK_CODES) + "."
    )
    message = serializers.CharField(help_text="What was found.")
    fix = serializers.CharField(help_text="What to do about it.")


class ChecksSerializer(serializers.Serializer):
    checks = CheckSerializer(many=True, help_text="Errors first, then warnings, then advice.")


class TestSkippedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    reason = serializers.CharField(help_text='Why nothing was sent: "suppressed".')


class TestSentSerializer(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Messages the mail server accepted.")
    skipped = TestSkippedSerializer(
        many=True,
        help_text="Addresses nothing was sent to: on the account's suppression list or "
        'the platform\'s "do not contact" list.',
    )


class ScheduleSerializer(StrictJSONMixin, serializers.Serializer):
    scheduled_at = AwareDateTimeField(
        help_text="ISO 8601, with its offset: 2030-06-01T09:00:00+02:00. At least a minute "
        "from now."
    )


class TemplateSerializer(serializers.ModelSerializer):
    blocks = BlocksField(read_only=True, allow_null=True)

    class Meta:
        model = Template
        fields = [
            "id",
            "name",
            "subject",
            "preheader",
            "editor",
            "blocks",
            "html",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TemplateCreateSerializer(StrictJSONMixin, serializers.Serializer):
    campaign = AccountObjectField(
        queryset=Campaign.objects.none(),
        error_messages={"does_not_exist": "No campaign with id {pk_value}."},
        help_text="The campaign whose subject, preheader and body to keep (its id).",
    )
    name = serializers.CharField(
        max_length=200,
        validators=[validate_single_line],
        help_text="A template of the same name is replaced.",
    )


class PublishSerializer(StrictJSONMixin, serializers.Serializer):
    public = serializers.BooleanField(
        help_text="true: shown in the account's public archive once sent; false: taken out."
    )


class FollowUpSerializer(StrictJSONMixin, serializers.Serializer):
    audience = serializers.ChoiceField(
        choices=[
            ("unopened", "Those who received it and did not open it"),
            ("clicked", "Those who clicked `link`"),
        ],
        help_text="`unopened`: those who received it and did not open it (people only); "
        "`clicked`: those who clicked `link`.",
    )
    link = AccountObjectField(
        queryset=Link.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No link with id {pk_value}."},
        help_text="For `clicked`: the id of one of the campaign's links.",
    )


# -- A/B tests -----------------------------------------------------------------------------


class VariantSerializer(StrictJSONMixin, serializers.Serializer):
    """B, C or D: what differs from A (the campaign itself); a blank field is A's."""

    subject = serializers.CharField(required=False, allow_blank=True, max_length=300)
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=300)
    preheader = serializers.CharField(required=False, allow_blank=True, max_length=300)
    html = serializers.CharField(
        required=False, allow_blank=True, help_text="Sanitized when saved."
    )
    blocks = BlocksField(
        required=False,
        allow_null=True,
        help_text="For a campaign made of blocks: the variant's own blocks, as the "
        "campaign's `blocks`; its `html` is then made from them.",
    )


class ABTestWriteSerializer(StrictJSONMixin, serializers.Serializer):
    variants = VariantSerializer(many=True, help_text="B, and C and D if wanted: 1 to 3.")
    share = serializers.IntegerField(
        min_value=2, max_value=100, default=20, help_text="Percent of the audience in the test."
    )
    metric = serializers.ChoiceField(choices=ABTest.Metric.choices, default=ABTest.Metric.OPENS)
    wait_hours = serializers.IntegerField(
        min_value=1, max_value=168, default=4, help_text="Hours before the winner is chosen."
    )

    def validate_variants(self, value: list[dict]) -> list[dict]:
        if not 1 <= len(value) <= 3:
            raise serializers.ValidationError("Give one to three variants beside A.")
        return value


class RateSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    rate = serializers.FloatField(help_text="Of the delivered, 0 to 1.")
    low = serializers.FloatField(help_text="Wilson 95% interval, low end.")
    high = serializers.FloatField(help_text="Wilson 95% interval, high end.")


class VariantResultSerializer(serializers.Serializer):
    variant = serializers.IntegerField(help_text="0 for A, 1 for B…")
    letter = serializers.CharField()
    recipients = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opens = RateSerializer(help_text="People's opens only.")
    clicks = RateSerializer(help_text="People's clicks only.")


class ABTestSerializer(serializers.Serializer):
    variants = VariantSerializer(many=True)
    share = serializers.IntegerField()
    metric = serializers.ChoiceField(choices=ABTest.Metric.choices)
    wait_hours = serializers.IntegerField()
    decide_at = serializers.DateTimeField(
        allow_null=True, help_text="When the metric chooses the winner (set once sending)."
    )
    winner = serializers.IntegerField(allow_null=True)
    decided_by = serializers.CharField(help_text="`auto`, `hand`, or blank.")
    held = serializers.IntegerField(help_text="Recipients who wait for the winner, or get it.")
    meaningful = serializers.BooleanField(
        help_text="Whether the leader's lead is larger than chance would make it (95%)."
    )
    results = VariantResultSerializer(many=True)

    @classmethod
    def of(cls, campaign: Campaign, test: ABTest) -> dict:
        described = ab.describe(campaign, test)

        def rate(value: ab.Rate) -> dict:
            low, high = value.interval
            return {"count": value.count, "rate": value.value, "low": low, "high": high}

        return cls(
            {
                "variants": test.variants,
                "share": test.share,
                "metric": test.metric,
                "wait_hours": test.wait_hours,
                "decide_at": test.decide_at,
                "winner": test.winner,
                "decided_by": test.decided_by,
                "held": described["held"],
                "meaningful": described["meaningful"],
                "results": [
                    {
                        "variant": r.variant,
                        "letter": r.letter,
                        "recipients": r.recipients,
                        "delivered": r.delivered,
                        "opens": rate(r.opens),
                        "clicks": rate(r.clicks),
                    }
                    for r in described["results"]
                ],
            }
        ).data


class WinnerSerializer(StrictJSONMixin, serializers.Serializer):
    variant = serializers.IntegerField(min_value=0, max_value=3, help_text="0 for A, 1 for B…")
