from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from contacts.importing.sniff import new_attribute_name
from contacts.models import AttributeDefinition, ImportJob, Subscription

NEW_ATTRIBUTE_LABELS = {"text": "text", "number": "number", "date": "date", "boolean": "yes/no"}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 or Windows/Latin-1, separated by commas, semicolons or tabs, with a "
        "header row. Up to 200 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )


class MappingForm(forms.Form):
    """One choice per column of the file, plus the consent the customer declares."""

    legal_basis = forms.ChoiceField(
        choices=Subscription.LegalBasis.choices,
        label="Legal basis",
        help_text="Consent, or existing customers receiving news of similar products.",
    )
    consent_text = forms.CharField(
        label="How did these people agree to hear from you?",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with each subscription as proof, e.g. “Newsletter box ticked at checkout "
        "on our web shop, 2024-2026”.",
    )
    update_existing = forms.BooleanField(
        required=False,
        label="Update contacts already stored with the names and attributes of this file",
        help_text="Otherwise their stored fields are kept and only the subscription is added.",
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, job: ImportJob, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        self.job = job
        attributes = AttributeDefinition.objects.for_account(job.account)
        choices = [
            ("ignore", "Ignore this column"),
            ("email", "Email address"),
            ("first_name", "First name"),
            ("last_name", "Last name"),
            ("full_name", "Full name (first name, then last name)"),
            ("consent_at", "Consent proof: when they opted in"),
            ("consent_ip", "Consent proof: IP address they opted in from"),
            ("confirmed_at", "Consent proof: when they confirmed (double opt-in)"),
            ("tags", "Tags (names separated by commas or semicolons)"),
            *[
                (f"attribute:{a.name}", f"Attribute: {a.label or a.name} ({a.get_type_display()})")
                for a in attributes
            ],
        ]
        declared = {a.name for a in attributes}
        self.column_fields = []
        for index, name in enumerate(job.columns):
            # (none for a built-in field: a column of one is imported into it)
            slug = new_attribute_name(name)
            extra = []
            if slug is not None and slug not in declared:
                extra = [
                    (f"new:{kind}:{slug}", f"New {label} attribute “{slug}”")
                    for kind, label in NEW_ATTRIBUTE_LABELS.items()
                ]
            field_name = f"col_{index}"
            self.fields[field_name] = forms.ChoiceField(
                label=name or f"Column {index + 1}",
                choices=choices + extra,
                initial=job.mapping.get(str(index), "ignore"),
            )
            self.column_fields.append(field_name)

    def mapping(self) -> dict[str, str]:
        return {name.removeprefix("col_"): self.cleaned_data[name] for name in self.column_fields}

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.column_fields and all(f in cleaned for f in self.column_fields):
            emails = [f for f in self.column_fields if cleaned[f] == "email"]
            if len(emails) != 1:
                raise forms.ValidationError(
                    "Choose exactly one column for the email address."
                    if not emails
                    else "Only one column can be the email address."
                )
        return cleaned
