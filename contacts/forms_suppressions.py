"""Forms of the suppression lists: the account's page, the admin, the public request."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from contacts import suppressing
from contacts.models import Suppression, email_sha256_forms
from contacts.services import clean_email

MAX_LINES = 5000
REASON_CHOICES = [(reason.value, reason.label) for reason in suppressing.ACCOUNT_REASONS]


class _ReasonAndNote(forms.Form):
    reason = forms.ChoiceField(choices=REASON_CHOICES, initial=Suppression.Reason.MANUAL)
    note = forms.CharField(
        max_length=200,
        required=False,
        help_text="For your team: where the request came from, a ticket number…",
    )


class SuppressionAddForm(_ReasonAndNote):
    # Not stripped: leading blank lines count, so the line numbers of a report match
    # what the person sees in the box.
    emails = forms.CharField(
        label="Addresses",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text=f"One per line, up to {MAX_LINES:,}. For more, import a file.",
    )

    field_order = ["emails", "reason", "note"]

    def clean_emails(self) -> str:
        text = self.cleaned_data["emails"]
        lines = suppressing.numbered_lines(text)
        if not lines:
            raise ValidationError("Enter at least one address.")
        if len(text.splitlines()) > MAX_LINES:
            raise ValidationError(f"Paste up to {MAX_LINES:,} lines at a time, or import a file.")
        return text

    def numbered(self) -> list[tuple[int, str]]:
        return suppressing.numbered_lines(self.cleaned_data["emails"])


class SuppressionImportForm(_ReasonAndNote):
    file = forms.FileField(
        help_text="CSV or text, up to 5 MB: the column named email, or else the first one.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )

    field_order = ["file", "reason", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its fields share names with the add form's, on the same page: not their ids.
        kwargs.setdefault("auto_id", "import_%s")
        super().__init__(*args, **kwargs)

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        if upload.size > suppressing.MAX_UPLOAD_BYTES:
            raise ValidationError("The file is larger than 5 MB: split it, or import it in parts.")
        return upload


class SuppressionCheckForm(forms.Form):
    email = forms.CharField(
        label="Address to check",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
    )

    def clean_email(self) -> str:
        return clean_email(self.cleaned_data["email"])


class PlatformSuppressionForm(forms.ModelForm):
    """The admin's add form: an operator types an address; only its hash is kept."""

    email = forms.EmailField(
        max_length=254,
        help_text="Kept as a SHA-256 hash only. Every account of this installation is "
        "stopped from mailing it.",
    )

    class Meta:
        model = Suppression
        fields = ["reason", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].initial = Suppression.Reason.DO_NOT_CONTACT

    def clean_email(self) -> str:
        email = clean_email(self.cleaned_data["email"])
        if (
            Suppression.objects.platform()
            .filter(email_sha256__in=email_sha256_forms(email))
            .exists()
        ):
            raise ValidationError("This address is already on the platform-wide list.")
        return email


class DoNotContactForm(forms.Form):
    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    # A honeypot: people never see it, form-filling robots fill it.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def clean_email(self) -> str:
        return clean_email(self.cleaned_data["email"])

    @property
    def is_robot(self) -> bool:
        return bool(self.cleaned_data.get("website", "").strip())
