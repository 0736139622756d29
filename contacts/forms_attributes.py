"""Forms of the attribute screens: rename and change type (delete needs none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from contacts.models import AttributeDefinition, validate_attribute_name


class AttributeRenameForm(forms.Form):
    name = forms.CharField(
        label="New name",
        max_length=50,
        validators=[validate_attribute_name],
        help_text="Lower-case letters, digits and underscores, starting with a letter.",
    )
    update_campaigns = forms.BooleanField(
        required=False,
        initial=True,
        label="Change the merge tag in the draft campaigns listed above",
        help_text="Otherwise they keep the old tag, which no longer names an attribute: "
        "it renders empty.",
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        definition: AttributeDefinition,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.definition = definition

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name == self.definition.name:
            raise forms.ValidationError("That is already its name.", code="unchanged")
        return name


class AttributeRetypeForm(forms.Form):
    type = forms.ChoiceField(label="New type", choices=AttributeDefinition.Type.choices)
    # How many values the confirmation page said would be dropped: the change goes ahead
    # only while that many still would be.
    drops = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        definition: AttributeDefinition,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.definition = definition

    def clean_type(self) -> str:
        type = self.cleaned_data["type"]
        if type == self.definition.type:
            raise forms.ValidationError(
                f"It is already of type {AttributeDefinition.Type(type).label.lower()}.",
                code="unchanged",
            )
        return type
