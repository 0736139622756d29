"""The public subscribe form, as the hosted page and the embeddable snippet post it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from contacts.models import ContactList
from contacts.services import clean_email
from contacts.subscribing import consent_wording

# The honeypot: a text field people never see (hidden by CSS, skipped by the keyboard,
# silent to screen readers), which bots that fill every field fill too.
HONEYPOT = "website"


class SubscribeForm(forms.Form):
    email = forms.CharField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    first_name = forms.CharField(
        label="First name",
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    consent = forms.BooleanField(
        error_messages={"required": "Tick the box to agree before you subscribe."}
    )
    website = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, contact_list: ContactList, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        self.fields["consent"].label = consent_wording(contact_list)

    @property
    def is_bot(self) -> bool:
        """True when the honeypot was filled: the caller pretends success and stores
        nothing, so the bot learns nothing either."""
        return bool(self.data.get(HONEYPOT, "").strip())

    def clean_email(self) -> str:
        return clean_email(self.cleaned_data["email"])
