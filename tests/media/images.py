"""Real image files, made by Pillow (or by hand, byte by byte, where Pillow would refuse
to make them), for the upload tests."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image as PILImage


def jpeg_bytes(width: int = 80, height: int = 40) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), "#c2410c").save(out, format="JPEG")
    return out.getvalue()


def jpeg_with_gps(width: int = 80, height: int = 40) -> bytes:
    """A photo as a phone takes it: EXIF with the camera, a GPS position, and an
    orientation saying "turn 90° clockwise to show"."""
    image = PILImage.new("RGB", (width, height), "#0f766e")
    image.paste((255, 255, 0), (0, 0, width // 4, height))  # a band to tell up from down
    exif = PILImage.Exif()
    exif[0x010F] = "Phonemaker"  # Make
    exif[0x0110] = "Phone 12 Secret Edition"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=b"shot at home")
    return out.getvalue()


def gif_animation(width: int = 700, height: int = 70, frames: int = 3) -> bytes:
    colors = ["#dc2626", "#16a34a", "#2563eb", "#ca8a04"]
    images = [PILImage.new("RGB", (width, height), colors[i % len(colors)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[120, 240, 360][:frames],
        loop=0,
        comment=b"made by a secret tool",
    )
    return out.getvalue()


def webp_bytes(width: int = 1300, height: int = 100) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGBA", (width, height), (67, 56, 202, 200)).save(out, format="WEBP")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG whose header says ``width`` by ``height`` (grey, 8 bits) with a tiny
    body: what a decompression bomb looks like before it is decoded. A few hundred
    bytes, made in no time."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    chunks = _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>\n'
)
HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Log in</title></head>"
    b"<body><script>fetch('/api/v1/contacts/')</script></body></html>\n"
)
