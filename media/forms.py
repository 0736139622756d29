from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


class ImageUploadForm(forms.Form):
    file = forms.FileField(
        label="Image",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = filesizeformat(settings.MISSIVE_IMAGE_MAX_BYTES)
        self.fields["file"].help_text = (
            f"PNG, JPEG, GIF or WebP, up to {limit}. Location, camera details and comments "
            "are removed; images wider than 600 pixels also get 600 and 1200 pixel copies."
        )
