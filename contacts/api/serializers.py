"""What the contacts API reads and writes. Input serializers only check shapes and types;
the rules (unique names, declared attributes, suppressions) live in contacts.services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictJSONMixin
from accounts.query import BIGINT_MAX
from contacts import selectors
from contacts.models import Contact, ContactList, Subscription, Suppression, Tag
from contacts.selectors import SORTS
from contacts.services import clean_email
from contacts.tagging import clean_tag_name

MAX_PAGE_SIZE = 1000


class AddressField(serializers.EmailField):
    """An address as Missive stores and hashes it (``clean_email``): whatever form the
    client sends (``ANA@BÜCHER.DE``, ``ana@xn--bcher-kva.de``), the view gets one."""

    def to_internal_value(self, data: Any) -> str:
        try:
            return clean_email(super().to_internal_value(data))
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None


class SubscriptionStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Subscription.Status.choices, **kwargs)


class SubscriptionStatusSchema(OpenApiSerializerFieldExtension):
    """Names the subscription states ``SubscriptionStatusEnum`` in the schema: left to
    drf-spectacular, they would clash with the account's ``status`` enum."""

    target_class = SubscriptionStatusField

    def get_name(self) -> str:
        return "SubscriptionStatusEnum"

    def map_serializer_field(self, auto_schema: object, direction: str) -> dict:
        return {"type": "string", "enum": Subscription.Status.values}


class ContactListSerializer(StrictJSONMixin, serializers.ModelSerializer):
    subscribed = serializers.IntegerField(read_only=True)
    unconfirmed = serializers.IntegerField(read_only=True)
    unsubscribed = serializers.IntegerField(read_only=True)

    class Meta:
        model = ContactList
        fields = [
            "id",
            "name",
            "description",
            "double_opt_in",
            "form_consent_text",
            "created_at",
            "subscribed",
            "unconfirmed",
            "unsubscribed",
        ]
        read_only_fields = ["id", "created_at"]


class ListDeleteParamsSerializer(serializers.Serializer):
    delete_contacts = serializers.BooleanField(
        default=False,
        help_text="Also delete the contacts that are on this list and on no other.",
    )


class ListDeletedSerializer(serializers.Serializer):
    contacts_deleted = serializers.IntegerField()


class SubscriptionSerializer(serializers.ModelSerializer):
    """A contact on a list, with the proof of consent."""

    list = serializers.IntegerField(source="contact_list_id", read_only=True)
    list_name = serializers.CharField(source="contact_list.name", read_only=True)
    status = SubscriptionStatusField(read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "list",
            "list_name",
            "status",
            "source",
            "legal_basis",
            "consent_at",
            "consent_ip",
            "consent_user_agent",
            "consent_text",
            "confirmed_at",
            "unsubscribed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ListSubscriptionSerializer(SubscriptionSerializer):
    contact = serializers.IntegerField(source="contact_id", read_only=True)
    email = serializers.EmailField(source="contact.email", read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = ["contact", "email", *SubscriptionSerializer.Meta.fields]
        read_only_fields = fields


class ContactSerializer(StrictJSONMixin, serializers.ModelSerializer):
    attributes = serializers.DictField(
        required=False,
        help_text="Values of the account's declared attributes, by name. "
        "An update replaces the whole set.",
    )
    tags = serializers.SerializerMethodField(help_text="The names of the contact's tags.")

    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "attributes",
            "created_at",
            "updated_at",
            "last_activity_at",
            "tracking_objected_at",
            "tags",
        ]
        read_only_fields = [
            "id",
            "created_at",
            "updated_at",
            "last_activity_at",
            "tracking_objected_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, contact: Contact) -> list[str]:
        # A page of contacts comes with its tags' names (contacts_page); one contact asks.
        names = getattr(contact, "tag_names", None)
        if names is None:
            names = [t.name for t in selectors.tags_of(contact.account, contact)]
        return list(names)


class ContactDetailSerializer(ContactSerializer):
    subscriptions = serializers.SerializerMethodField()

    class Meta(ContactSerializer.Meta):
        fields = [*ContactSerializer.Meta.fields, "subscriptions"]

    @extend_schema_field(SubscriptionSerializer(many=True))
    def get_subscriptions(self, contact: Contact) -> list[dict[str, Any]]:
        return serializers.ListSerializer(
            selectors.subscriptions_of(contact), child=SubscriptionSerializer()
        ).data


# One line, at least one character that is not a space, no comma or semicolon (they
# separate tags in a file's cell): what tagging.clean_tag_name accepts, said in the schema.
TAG_NAME = r"^[^,;\x00-\x1f\x7f]*[^\s,;\x00-\x1f\x7f][^,;\x00-\x1f\x7f]*$"


class TagNameField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Unique in the account, any case.")
        super().__init__(TAG_NAME, max_length=100, **kwargs)


class ContactWriteSerializer(StrictJSONMixin, serializers.Serializer):
    """A new contact, or (upsert) the fields to overwrite on an existing one."""

    email = AddressField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    attributes = serializers.DictField(
        required=False,
        help_text="Values of the account's declared attributes, by name. "
        "On upsert, replaces the stored set.",
    )
    lists = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=100,
        help_text="Ids of the lists to subscribe the contact to.",
    )
    legal_basis = serializers.ChoiceField(
        choices=Subscription.LegalBasis.choices,
        default=Subscription.LegalBasis.CONSENT,
        help_text="Why you may mail this person, kept with each subscription.",
    )
    consent_text = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="How consent was obtained, kept as proof with each subscription.",
    )

    tags = serializers.ListField(
        child=TagNameField(help_text="A tag name, any case."),
        required=False,
        max_length=100,
        help_text="Tags to put on the contact, made when the account has none of that "
        "name. Tags it has already are kept: `/api/v1/tags/{id}/remove/` takes one off.",
    )

    def validate_tags(self, names: list[str]) -> list[str]:
        try:
            cleaned = [clean_tag_name(name) for name in names]
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        once: dict[str, str] = {}
        for name in cleaned:
            once.setdefault(name.lower(), name)
        return list(once.values())

    def validate_lists(self, ids: list[int]) -> list[ContactList]:
        account = self.context["account"]
        found = {c.pk: c for c in ContactList.objects.for_account(account).filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise serializers.ValidationError(f"No list with id {missing[0]}.")
        return [found[i] for i in dict.fromkeys(ids)]


class ContactFilterSerializer(serializers.Serializer):
    list = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="Only contacts on this list (its id).",
    )
    status = SubscriptionStatusField(
        required=False,
        help_text="With `list`: only contacts whose subscription has this status.",
    )
    email = AddressField(
        required=False, allow_blank=True, help_text="The contact with this address."
    )
    q = serializers.CharField(
        required=False, allow_blank=True, help_text="Search in addresses and names."
    )
    tag = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="Only contacts with this tag (its id).",
    )
    sort = serializers.ChoiceField(choices=[*SORTS], default="email")
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The cursor of the next page, as given in `next`.",
    )
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=100)

    def validate(self, data: dict) -> dict:
        if data.get("status") and not data.get("list"):
            raise serializers.ValidationError({"status": "Filter by status needs a list."})
        return data


class ContactPageSerializer(serializers.Serializer):
    results = ContactSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null at the end.")
    count = serializers.IntegerField(help_text="Contacts matching the filters, up to a cap.")
    count_is_capped = serializers.BooleanField(
        help_text="True when there are more contacts than `count` says."
    )


class SubscribeSerializer(StrictJSONMixin, serializers.Serializer):
    email = AddressField(max_length=254)
    first_name = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        default="",
        help_text="Used when the contact is created; an existing contact keeps their name.",
    )
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    legal_basis = serializers.ChoiceField(
        choices=Subscription.LegalBasis.choices, default=Subscription.LegalBasis.CONSENT
    )
    consent_text = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="How consent was obtained, kept as proof with the subscription.",
    )


class UnsubscribeSerializer(StrictJSONMixin, serializers.Serializer):
    email = AddressField(max_length=254)


class UnsubscribedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    status = SubscriptionStatusField(
        allow_null=True,
        help_text="The subscription's status now; null when the address is not on the list.",
    )


class SuppressionSerializer(serializers.ModelSerializer):
    """An entry of the account's suppression list. The address itself is never kept,
    only its SHA-256 (of the trimmed, lower-case address)."""

    class Meta:
        model = Suppression
        fields = ["id", "email_sha256", "reason", "note", "created_at"]
        read_only_fields = fields


class SuppressionCreateSerializer(StrictJSONMixin, serializers.Serializer):
    email = AddressField(max_length=254)
    reason = serializers.ChoiceField(
        choices=Suppression.Reason.choices, default=Suppression.Reason.MANUAL
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SuppressionFilterSerializer(serializers.Serializer):
    email = AddressField(
        required=False,
        allow_blank=True,
        help_text="Only the entry for this address, if there is one.",
    )


# One contact's data (GET /contacts/{id}/export/) and its erasure


class ExportedContactSerializer(serializers.Serializer):
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    attributes = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField(allow_null=True)
    tracking_objected_at = serializers.DateTimeField(
        allow_null=True, help_text="When the person objected to open and click tracking."
    )


class ExportedSubscriptionSerializer(serializers.Serializer):
    list = serializers.CharField(help_text="The list's name.")
    status = SubscriptionStatusField()
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field: DRF takes it off the class
    legal_basis = serializers.CharField()
    consent_at = serializers.DateTimeField(allow_null=True)
    consent_ip = serializers.IPAddressField(allow_null=True)
    consent_user_agent = serializers.CharField()
    consent_text = serializers.CharField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    unsubscribed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExportedDeliverySerializer(serializers.Serializer):
    campaign = serializers.CharField(help_text="The campaign's name.")
    status = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    first_opened_at = serializers.DateTimeField(allow_null=True)
    first_clicked_at = serializers.DateTimeField(allow_null=True)


class ExportedEventSerializer(serializers.Serializer):
    campaign = serializers.CharField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    machine = serializers.BooleanField(
        help_text="A mail provider's proxy or a link scanner, not the person."
    )
    link = serializers.CharField(help_text="The clicked link's target, for clicks.")
    detail = serializers.DictField()


class ControllerSerializer(serializers.Serializer):
    name = serializers.CharField()
    postal_address = serializers.CharField()


class ContactExportSerializer(serializers.Serializer):
    """Everything Missive holds on one contact: the document a person gets from an
    access request, for portability (GDPR Art. 15 and 20)."""

    exported_at = serializers.DateTimeField()
    controller = ControllerSerializer()
    contact = ExportedContactSerializer()
    subscriptions = ExportedSubscriptionSerializer(many=True)
    deliveries = ExportedDeliverySerializer(many=True)
    events = ExportedEventSerializer(many=True)


class ErasedSerializer(serializers.Serializer):
    contact = serializers.IntegerField(source="contact_id", help_text="The erased contact's id.")
    email_sha256 = serializers.CharField(help_text="What remains of the address, suppressed.")
    subscriptions = serializers.IntegerField(help_text="Subscriptions deleted.")
    deliveries = serializers.IntegerField(
        help_text="Messages that still count in their campaign, no longer linked to anyone."
    )
    bodies = serializers.IntegerField(help_text="Stored message copies deleted.")
    events = serializers.IntegerField(help_text="Events (opens, clicks…) deleted.")
    suppression = serializers.IntegerField(
        source="suppression_id", help_text="The suppression entry that keeps it from mail."
    )


class TagSerializer(StrictJSONMixin, serializers.ModelSerializer):
    name = TagNameField()
    contact_count = serializers.IntegerField(
        read_only=True, required=False, help_text="Contacts that have it."
    )

    class Meta:
        model = Tag
        fields = ["id", "name", "contact_count", "created_at"]
        read_only_fields = ["id", "created_at"]


class TagContactsSerializer(StrictJSONMixin, serializers.Serializer):
    """Whom to tag or untag: addresses, or ids, up to 10,000 a request."""

    emails = serializers.ListField(
        child=AddressField(max_length=254), required=False, max_length=10_000
    )
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        max_length=10_000,
    )

    def validate(self, data: dict) -> dict:
        if not data.get("emails") and not data.get("contact_ids"):
            raise serializers.ValidationError(
                {"non_field_errors": ["Give `emails` or `contact_ids`."]}
            )
        return data


class TaggedSerializer(serializers.Serializer):
    tag = TagSerializer()
    matched = serializers.IntegerField(help_text="The account's contacts among those given.")
    changed = serializers.IntegerField(help_text="Of them, those that gained (or lost) it now.")
