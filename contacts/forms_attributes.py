"""Forms of the attribute screens: rename and change type (delete needs none)."""

from __future__ import annotations

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


class AttributeRetypeForm(forms.Form):
    type = forms.ChoiceField(label="New type", choices=AttributeDefinition.Type.choices)
