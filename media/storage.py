"""The storage the image files live in: ``STORAGES["images"]`` (the filesystem under
MEDIA_ROOT/images by default, an S3-compatible bucket by setting)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

log = logging.getLogger(__name__)


def image_storage() -> Storage:
    return storages["images"]


def save(name: str, content: bytes) -> None:
    stored = image_storage().save(name, ContentFile(content))
    if stored != name:
        # The key is random and unique: a file already there means two uploads drew the
        # same key, which the database would refuse anyway.
        image_storage().delete(stored)
        raise FileExistsError(f"{name} is already in the images storage.")


def delete(names: Iterable[str]) -> None:
    """Remove files, each on its own: one that fails is logged, the others still go."""
    storage = image_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            log.exception("Could not delete %s from the images storage", name)
