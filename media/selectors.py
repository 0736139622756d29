from __future__ import annotations

import re

from django.db.models import QuerySet, Sum

from accounts.models import Account
from media.models import Image

KEY = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


def images(account: Account) -> QuerySet[Image]:
    return Image.objects.for_account(account).select_related("created_by")


def bytes_used(account: Account) -> int:
    return Image.objects.for_account(account).aggregate(total=Sum("size"))["total"] or 0


def public_image(key: str) -> Image | None:
    """The image behind a public address. The random key is the only credential, as a
    signed token is for the tracking endpoints: anyone holding the address of an email's
    image may fetch it."""
    if not KEY.match(key):
        return None
    return Image.objects.filter(key=key).first()
