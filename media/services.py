"""Uploading and deleting images.

Guarantees, each one a test in tests/media/:

- What a file is comes from its bytes, read by Pillow, never from its name or the
  content type the browser declared; only PNG, JPEG, GIF and WebP are kept, and anything
  else (an SVG drawing, an HTML page renamed .png) is refused saying what it is.
- Cheap refusals first: the byte limit before more than the limit is read, the pixel
  limit from the header before any pixel is decoded (so a decompression bomb costs
  nothing), the account's quota before a file is written.
- Nothing of the upload is kept as sent: each image is decoded and encoded again, after
  its EXIF orientation is applied, so EXIF (GPS positions, camera serials), comments and
  text chunks are gone. Animations keep their frames and timing.
- Files follow their rows: written before the row is committed and removed if it is not;
  removed from storage once the deletion of their row commits.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps, ImageSequence

from accounts.models import Account, User
from accounts.services import audit_log
from media import storage
from media.models import ORIGINAL, WIDTHS, Image
from media.selectors import bytes_used

# Pillow's names of the formats Missive keeps, and the one it stores each as.
PILLOW_FORMATS = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "WEBP": "webp"}
ACCEPTED = "upload PNG, JPEG, GIF or WebP."
JPEG_QUALITY = 85
WEBP_QUALITY = 85
TIMES = "\N{MULTIPLICATION SIGN}"


class ImageRefused(ValidationError):
    """The upload cannot be used; the message says why and what to do."""


class QuotaExceeded(ImageRefused):
    """The account's images would take more than its quota."""


@dataclass(frozen=True)
class Variant:
    name: str
    data: bytes
    width: int
    height: int


def clean_name(name: str | None) -> str:
    """The file's own name (no folders), on one line, without control characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in base)
    base = re.sub(r"\s+", " ", base).strip()
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = stem[: 199 - len(ext)] + dot + ext if dot and len(ext) <= 10 else base[:200]
    return base or "image"


def _mb(size: int) -> str:
    return str(filesizeformat(size)).replace("\xa0", " ")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _what_it_is(head: bytes) -> str:
    """What a file that is not a usable image looks like, from its first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!--")) and b"<svg" in text):
        return "it is an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")) or (
        text.startswith(b"<") and b"<html" in text
    ):
        return "it is an HTML page"
    if text.startswith(b"<?xml"):
        return "it is an XML document"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive (or an Office document)"
    if head.startswith(b"BM"):
        return "it is a BMP image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "it is a TIFF image"
    if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1", b"avif", b"avis"}:
        return "it is a HEIC or AVIF photo"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "it is an icon file"
    if b"\x00" not in head and _is_utf8(head):
        return "it is a text file"
    return "its content is not an image format Missive reads"


def _refuse(name: str, why: str) -> ImageRefused:
    return ImageRefused(f"{name} is not an image Missive can use: {why}; {ACCEPTED}")


def size_refusal(name: str, size: int | None) -> str:
    """Why an image of ``size`` bytes (None: more than the limit) is refused."""
    limit = settings.MISSIVE_IMAGE_MAX_BYTES
    too_big = f"the limit is {_mb(limit)}. Make it smaller (fewer pixels, or JPEG for photos)."
    if size is None:
        return f"{name} is larger than {_mb(limit)}; {too_big}"
    return f"{name} is {_mb(size)}; {too_big}"


def _read_limited(file: IO[bytes], name: str) -> bytes:
    limit = settings.MISSIVE_IMAGE_MAX_BYTES
    declared = getattr(file, "size", None)
    if isinstance(declared, int) and declared > limit:
        raise ImageRefused(size_refusal(name, declared))
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ImageRefused(size_refusal(name, None))
    if not data:
        raise ImageRefused(f"{name} is empty; {ACCEPTED}")
    return data


def _open_header(data: bytes) -> ImageFile.ImageFile | None:
    """The image with only its header read, or None when it is none of the accepted
    formats. Pillow's format readers are called directly, so that the size is known
    before Pillow's own decompression bomb check, which refuses without saying it."""
    PILImage.init()
    for pillow_format in PILLOW_FORMATS:
        factory, accept = PILImage.OPEN[pillow_format]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, struct.error):
            return None
    return None


def _check_pixels(name: str, width: int, height: int, frames: int = 1) -> None:
    limit = settings.MISSIVE_IMAGE_MAX_PIXELS
    pixels = width * height * frames
    if pixels <= limit:
        return
    size = f"{width:,} {TIMES} {height:,} pixels"
    if frames > 1:
        size = f"an animation of {frames:,} frames of {size}"
    raise ImageRefused(
        f"{name} is {size} ({pixels / 1e6:,.0f} megapixels); the limit is "
        f"{limit / 1e6:,.0f} megapixels. Resize it: an email shows images at most 1,200 "
        "pixels wide."
    )


def _frames(image: PILImage.Image) -> list[tuple[PILImage.Image, int]]:
    """Each frame of an animation as the viewer sees it, with its duration (ms)."""
    frames = []
    for frame in ImageSequence.Iterator(image):
        duration = int(frame.info.get("duration") or image.info.get("duration") or 100)
        frames.append((frame.convert("RGBA"), duration))
    return frames


def _resized(image: PILImage.Image, width: int) -> PILImage.Image:
    height = max(1, round(image.height * width / image.width))
    if image.mode not in {"RGB", "RGBA", "L", "LA"}:
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.resize((width, height), PILImage.Resampling.LANCZOS)


def _for_format(image: PILImage.Image, fmt: str) -> PILImage.Image:
    """A mode the format stores well."""
    if fmt == "jpeg" and image.mode not in {"RGB", "L"}:
        return image.convert("RGB")
    if fmt == "webp" and image.mode not in {"RGB", "RGBA"}:
        return image.convert("RGBA" if image.mode in {"LA", "PA", "P", "RGBa"} else "RGB")
    if fmt == "png" and image.mode not in {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}:
        return image.convert("RGBA")
    return image


def _encode(
    image: PILImage.Image,
    fmt: str,
    *,
    icc: bytes | None,
    frames: list[tuple[PILImage.Image, int]] | None = None,
    loop: int = 0,
) -> bytes:
    out = io.BytesIO()
    # Nothing carried over from the upload's metadata (EXIF, comments, text chunks): only
    # what is passed here is written, and a palette's transparent colour.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    options: dict[str, Any] = {}
    if icc and fmt != "gif":
        options["icc_profile"] = icc
    if fmt == "jpeg":
        options.update(quality=JPEG_QUALITY, optimize=True, progressive=True)
    elif fmt == "webp":
        options.update(quality=WEBP_QUALITY, method=4)
    elif fmt == "png":
        options.update(optimize=False)
    if frames and len(frames) > 1:
        rest = [frame for frame, _ in frames[1:]]
        for frame in rest:
            frame.info = {}
        options.update(
            save_all=True,
            append_images=rest,
            duration=[duration for _, duration in frames],
            loop=loop,
        )
        if fmt == "gif":
            options["disposal"] = 2
    image.save(out, format=fmt.upper(), **options)
    return out.getvalue()


def _variants(name: str, data: bytes) -> tuple[str, list[Variant]]:
    """The format and the re-encoded variants of an upload, or ImageRefused."""
    header = _open_header(data)
    # Pillow reads some cameras' JPEGs (several pictures in one file) as MPO: the first
    # picture is kept, as a JPEG.
    fmt = {**PILLOW_FORMATS, "MPO": "jpeg"}.get(header.format or "") if header else None
    if header is None or fmt is None:
        raise _refuse(name, _what_it_is(data[:512]))
    width, height = header.size
    _check_pixels(name, width, height)
    frame_count = getattr(header, "n_frames", 1) if fmt in {"gif", "webp"} else 1
    _check_pixels(name, width, height, frame_count)
    # The colour profile is kept (colours look as intended), unless the pixels change
    # colour space: a CMYK profile does not describe the RGB they are turned into.
    icc = header.info.get("icc_profile") if header.mode != "CMYK" else None
    loop = int(header.info.get("loop", 0) or 0)
    try:
        if frame_count > 1:
            frames = _frames(header)
            original = _encode(frames[0][0], fmt, icc=icc, frames=frames, loop=loop)
            variants = [Variant(ORIGINAL, original, width, height)]
            for target in WIDTHS:
                if width > target:
                    scaled = [(_resized(frame, target), duration) for frame, duration in frames]
                    first = scaled[0][0]
                    variants.append(
                        Variant(
                            str(target),
                            _encode(first, fmt, icc=icc, frames=scaled, loop=loop),
                            first.width,
                            first.height,
                        )
                    )
            return fmt, variants
        header.load()
        upright = ImageOps.exif_transpose(header) or header
        upright = _for_format(upright, fmt)
        width, height = upright.size
        variants = [Variant(ORIGINAL, _encode(upright.copy(), fmt, icc=icc), width, height)]
        for target in WIDTHS:
            if width > target:
                smaller = _for_format(_resized(upright, target), fmt)
                variants.append(
                    Variant(
                        str(target), _encode(smaller, fmt, icc=icc), smaller.width, smaller.height
                    )
                )
        return fmt, variants
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as error:
        raise _refuse(name, "it is damaged or cut short") from error
    except PILImage.DecompressionBombError as error:  # the pixel limit is checked first
        raise _refuse(name, "it has too many pixels") from error


def image_upload(*, account: Account, actor: User | None, file: IO[bytes]) -> Image:
    """Check, clean and store an uploaded image; ImageRefused says why one cannot be used
    (QuotaExceeded when the account's library is full)."""
    name = clean_name(getattr(file, "name", None))
    data = _read_limited(file, name)
    fmt, variants = _variants(name, data)
    total = sum(len(variant.data) for variant in variants)
    image = Image(
        account=account,
        name=name,
        format=fmt,
        width=variants[0].width,
        height=variants[0].height,
        size=total,
        variants={
            v.name: {"width": v.width, "height": v.height, "size": len(v.data)} for v in variants
        },
        created_by=actor if actor and actor.pk else None,
    )
    written: list[str] = []
    try:
        with transaction.atomic():
            # One upload at a time per account, so two at once cannot both fit the quota.
            Account.objects.select_for_update().only("pk").get(pk=account.pk)
            _check_quota(account, total)
            for variant in variants:
                path = image.storage_name(variant.name)
                storage.save(path, variant.data)
                written.append(path)
            image.full_clean()
            image.save()
            audit_log(
                account=account,
                actor=actor,
                action="image.uploaded",
                name=name,
                format=fmt,
                width=image.width,
                height=image.height,
                size=total,
            )
    except BaseException:
        storage.delete(written)
        raise
    return image


def _check_quota(account: Account, adding: int) -> None:
    quota = settings.MISSIVE_IMAGE_QUOTA_BYTES
    used = bytes_used(account)
    if used + adding > quota:
        raise QuotaExceeded(
            f"The image library is full: used {_mb(used)} of {_mb(quota)}, and this image "
            f"needs {_mb(adding)}. Delete images you no longer use to make room."
        )


@transaction.atomic
def image_delete(*, image: Image, actor: User | None) -> None:
    """Delete the image; its files go once the deletion commits. Emails already sent
    with it show a broken image from then on."""
    names = image.storage_names()
    audit_log(
        account=image.account,
        actor=actor,
        action="image.deleted",
        name=image.name,
        size=image.size,
    )
    image.delete()
    transaction.on_commit(lambda: storage.delete(names))


def images_purge(account: Account) -> int:
    """Every image of the account and its files (a closed account's data purge). Returns
    the number of images deleted. Runs in the caller's transaction; the files go when it
    commits."""
    names: list[str] = []
    images = Image.objects.for_account(account)
    for image in images.only("key", "format", "variants"):
        names.extend(image.storage_names())
    deleted, _ = images.delete()
    transaction.on_commit(lambda: storage.delete(names))
    return deleted
