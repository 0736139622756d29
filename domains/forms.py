from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from domains.services import DEFAULT_WARMUP, MAX_WARMUP_DAYS


class DomainAddForm(forms.Form):
    name = forms.CharField(
        label="Domain",
        max_length=253,
        help_text="The part after @ of the addresses you send from, e.g. news.example.com.",
        widget=forms.TextInput(attrs={"placeholder": "news.example.com", "autocomplete": "off"}),
    )
    ed25519 = forms.BooleanField(
        label="Also sign with an Ed25519 key",
        required=False,
        help_text="A second, shorter signature that newer receivers check (RFC 8463); the "
        "RSA signature stays for the others.",
    )


class WarmupForm(forms.Form):
    warmup = forms.BooleanField(label="Follow a warm-up schedule", required=False)
    warmup_schedule = forms.CharField(
        label="Daily caps",
        required=False,
        help_text="Messages per day from this domain, first day first, separated by commas; "
        "after the last day there is no cap.",
        initial=", ".join(str(n) for n in DEFAULT_WARMUP),
    )

    def clean_warmup_schedule(self) -> list[int]:
        text = self.cleaned_data["warmup_schedule"].strip()
        if not text:
            return list(DEFAULT_WARMUP)
        caps: list[int] = []
        for position, part in enumerate(text.replace(";", ",").split(","), start=1):
            part = part.strip().replace(" ", "").replace("_", "")
            if not (part.isascii() and part.isdigit()) or len(part) > 9 or int(part) < 1:
                raise ValidationError(
                    f"Day {position}: “{part}” is not a whole number of messages (1 or more)."
                )
            caps.append(int(part))
        if len(caps) > MAX_WARMUP_DAYS:
            raise ValidationError(f"At most {MAX_WARMUP_DAYS} days.")
        return caps
