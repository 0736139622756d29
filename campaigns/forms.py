from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.utils import timezone

from accounts.models import Account, validate_single_line
from audiences.models import Segment
from campaigns.models import Campaign, Editor, Template
from campaigns.starters import BLOCK_STARTERS, STARTERS
from contacts.models import Contact, ContactList
from contacts.services import clean_email


class NewCampaignForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "May newsletter"}),
    )
    start_from = forms.ChoiceField(label="Start from")

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, account: Account, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        choices = [(f"starter:{s.key}", f"Blocks: {s.name}") for s in BLOCK_STARTERS]
        choices += [(f"starter:{s.key}", f"HTML code: {s.name}") for s in STARTERS]
        choices += [("blank", "HTML code: a blank page")]
        choices += [
            (f"template:{t.pk}", f"Your template: {t.name}")
            for t in Template.objects.for_account(account)
        ]
        start_from = cast(forms.ChoiceField, self.fields["start_from"])
        start_from.choices = choices
        start_from.initial = "starter:blocks-newsletter"
        self.starters = BLOCK_STARTERS
        self.html_starters = STARTERS
        self.templates = list(Template.objects.for_account(account))


class CampaignForm(forms.ModelForm):
    lists = forms.ModelMultipleChoiceField(
        queryset=ContactList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A contact on several of these lists receives one message.",
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "subject",
            "preheader",
            "from_name",
            "from_email",
            "reply_to",
            "lists",
            "segment",
            "html",
            "text_is_custom",
            "text",
            "track_opens",
            "track_clicks",
        ]
        widgets = {
            "html": forms.Textarea(attrs={"rows": 22, "class": "code", "spellcheck": "false"}),
            "text": forms.Textarea(attrs={"rows": 10, "class": "code"}),
        }
        help_texts = {
            "html": 'Merge tags: {{ first_name }}, {{ email }}, {{ attributes.city|default:"" }}, '
            "{{ unsubscribe_url }}… Scripts, forms and event handlers are removed when saved.",
            "text_is_custom": "Otherwise the text part is made from the HTML each time you save.",
        }

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, account: Account, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        lists = cast(forms.ModelMultipleChoiceField, self.fields["lists"])
        lists.queryset = ContactList.objects.for_account(account)
        segment = cast(forms.ModelChoiceField, self.fields["segment"])
        segment.queryset = Segment.objects.for_account(account)
        if self.instance.editor == Editor.BLOCKS:
            # Made from the blocks, in their editor.
            del self.fields["html"]
        segment.empty_label = "Everyone on the lists"
        segment.help_text = (
            "Only the contacts who match this segment. With no list ticked, the segment's "
            "subscribed contacts on any list."
        )


class TestSendForm(forms.Form):
    recipients = forms.CharField(
        label="Send a test to",
        widget=forms.TextInput(attrs={"placeholder": "you@company.com, colleague@company.com"}),
        help_text="Up to 5 addresses, separated by commas. The subject starts with [Test].",
    )
    contact = forms.ModelChoiceField(
        queryset=Contact.objects.none(),
        required=False,
        label="As",
        empty_label="Sample contact (Jane Doe)",
        error_messages={"invalid_choice": "Choose one of your contacts to send the test as."},
        help_text="The merge tags are filled with this contact's fields and attributes. "
        "Choose another in the preview.",
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        account: Account,
        chosen: Contact | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        contact = cast(forms.ModelChoiceField, self.fields["contact"])
        contact.queryset = Contact.objects.for_account(account)
        # Any of the account's contacts is accepted; only the one chosen in the preview
        # is offered, so the page does not list the whole account.
        offered: list[tuple[object, str]] = [("", "Sample contact (Jane Doe)")]
        if chosen is not None:
            offered.append((chosen.pk, chosen.email))
            contact.initial = chosen.pk
        contact.widget.choices = offered

    def clean_recipients(self) -> list[str]:
        addresses = [a.strip() for a in self.cleaned_data["recipients"].split(",") if a.strip()]
        if not addresses:
            raise forms.ValidationError("Give at least one address.")
        if len(addresses) > 5:
            raise forms.ValidationError("A test goes to 5 addresses at most.")
        # Normalized like every address Missive handles, so a test to a suppressed
        # address is recognized whichever form of its domain was typed.
        return [clean_email(address) for address in addresses]


class SaveTemplateForm(forms.Form):
    name = forms.CharField(max_length=200, label="Template name", validators=[validate_single_line])


class ScheduleForm(forms.Form):
    """When to send, as a wall-clock time in the account's time zone (a datetime-local
    field carries no zone of its own)."""

    when = forms.DateTimeField(
        label="Send at",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, time_zone: str, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        self.zone = zoneinfo.ZoneInfo(time_zone)
        self.fields["when"].help_text = f"In the account's time zone, {time_zone}."

    @classmethod
    def around(cls, when: dt.datetime, time_zone: str) -> ScheduleForm:
        """An unbound form showing ``when`` (aware) in the account's time zone."""
        local = timezone.localtime(when, zoneinfo.ZoneInfo(time_zone))
        return cls(
            initial={"when": local.replace(tzinfo=None, second=0, microsecond=0)},
            time_zone=time_zone,
        )

    def full_clean(self) -> None:
        # Django reads a naive time in the current time zone, and refuses one that does not
        # exist there (a daylight-saving gap): make that zone the account's.
        with timezone.override(self.zone):
            super().full_clean()
