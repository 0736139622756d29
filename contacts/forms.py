from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django import forms

from accounts.models import Account
from contacts.models import AttributeDefinition, ContactList, Subscription
from contacts.services import clean_email


class ContactListForm(forms.ModelForm):
    class Meta:
        model = ContactList
        fields = ["name", "description", "double_opt_in", "form_consent_text"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "form_consent_text": forms.Textarea(attrs={"rows": 2}),
        }


class ContactForm(forms.Form):
    """A contact's fields plus one field per declared attribute (``attr_<name>``)."""

    email = forms.EmailField()
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, account: Account, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        self.definitions = list(AttributeDefinition.objects.for_account(account))
        for definition in self.definitions:
            widget = (
                forms.DateInput(attrs={"type": "date"})
                if definition.type == AttributeDefinition.Type.DATE
                else forms.TextInput()
            )
            self.fields[f"attr_{definition.name}"] = forms.CharField(
                label=definition.label or definition.name.replace("_", " ").capitalize(),
                required=False,
                widget=widget,
                help_text=definition.get_type_display(),
            )

    def clean_email(self) -> str:
        return clean_email(self.cleaned_data["email"])

    def attribute_values(self) -> dict[str, object]:
        return {d.name: self.cleaned_data.get(f"attr_{d.name}", "") for d in self.definitions}


class NewContactForm(ContactForm):
    lists = forms.ModelMultipleChoiceField(
        queryset=ContactList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Subscribe the contact to these lists.",
    )
    legal_basis = forms.ChoiceField(
        choices=Subscription.LegalBasis.choices, initial=Subscription.LegalBasis.CONSENT
    )
    consent_text = forms.CharField(
        label="How was consent obtained?",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For example: “signed up at our shop on 3 May, paper form kept”.",
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, account: Account, **kwargs: Any
    ) -> None:
        super().__init__(data, account=account, **kwargs)
        lists = cast(forms.ModelMultipleChoiceField, self.fields["lists"])
        lists.queryset = ContactList.objects.for_account(account)


class AttributeForm(forms.ModelForm):
    class Meta:
        model = AttributeDefinition
        fields = ["name", "label", "type"]
        help_texts = {"name": "Used in merge tags: {{ attributes.name }}."}


class DeleteListForm(forms.Form):
    delete_contacts = forms.BooleanField(
        required=False,
        label="Also delete the contacts that are on this list and on no other",
    )
