"""Uploading images: what is kept, what is refused and why, through the service, the
media library page and the API."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http.multipartparser import MultiPartParser
from django.test import Client
from PIL import Image as PILImage

from accounts.models import AuditEntry
from campaigns.models import Campaign, Editor
from media import services
from media.models import Image
from media.services import TIMES
from media.storage import image_storage
from media.uploads import FORM_ROOM
from tests.factories import World, png_bytes
from tests.media.images import (
    HTML,
    SVG,
    gif_animation,
    huge_png_header,
    jpeg_bytes,
    jpeg_with_gps,
    webp_bytes,
)


def _stored(image: Image, variant: str = "original") -> bytes:
    with image_storage().open(image.storage_name(variant), "rb") as file:
        return file.read()


def _opened(image: Image, variant: str = "original") -> PILImage.Image:
    return PILImage.open(io.BytesIO(_stored(image, variant)))


def _upload(world: World, name: str, content: bytes, content_type: str = "image/png") -> Image:
    return services.image_upload(
        account=world.account_a,
        actor=world.alice,
        file=SimpleUploadedFile(name, content, content_type=content_type),
    )


def _refusal(world: World, name: str, content: bytes, content_type: str = "image/png") -> str:
    with pytest.raises(services.ImageRefused) as refused:
        _upload(world, name, content, content_type)
    return " ".join(refused.value.messages)


@pytest.fixture
def api(world: World) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")


# -- what is kept --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "fmt", "size"),
    [
        ("banner.png", png_bytes(640, 80), "png", (640, 80)),
        ("photo.jpg", jpeg_bytes(300, 200), "jpeg", (300, 200)),
        ("spinner.gif", gif_animation(120, 40), "gif", (120, 40)),
        ("header.webp", webp_bytes(320, 90), "webp", (320, 90)),
    ],
)
def test_it_keeps_each_accepted_format_uploaded_through_the_page(
    world: World, alice_client: Client, name, content, fmt, size
):
    # when alice uploads the file on the media library page
    response = alice_client.post("/images/", {"file": SimpleUploadedFile(name, content)})

    # then it is in the library, read for what it is, and stored in that format
    assert response.status_code == 302
    image = Image.objects.for_account(world.account_a).get(name=name)
    assert (image.format, image.width, image.height) == (fmt, *size)
    assert _opened(image).format == fmt.upper()
    page = alice_client.get("/images/").content.decode()
    assert name in page
    assert image.url() in page
    assert image.url().startswith("http://testserver/i/")


def test_it_uploads_through_the_api_and_answers_the_addresses_of_each_variant(
    world: World, api: Client
):
    # when a 1,300 pixel wide WebP is posted to the API
    response = api.post(
        "/api/v1/images/", {"file": SimpleUploadedFile("hero.webp", webp_bytes(1300, 100))}
    )

    # then it answers the image, with an address per variant
    assert response.status_code == 201, response.content
    body = response.json()
    image = Image.objects.for_account(world.account_a).get(pk=body["id"])
    assert body["name"] == "hero.webp"
    assert (body["format"], body["width"], body["height"]) == ("webp", 1300, 100)
    assert body["size"] == image.size == sum(len(_stored(image, v)) for v in image.variants)
    assert body["urls"] == {
        "original": f"http://testserver/i/{image.key}/original.webp",
        "600": f"http://testserver/i/{image.key}/600.webp",
        "1200": f"http://testserver/i/{image.key}/1200.webp",
    }
    assert body["created_at"]
    # and lists and shows it
    listed = api.get("/api/v1/images/").json()
    assert body["id"] in [item["id"] for item in listed["results"]]
    assert api.get(f"/api/v1/images/{image.pk}/").json() == body


def test_it_makes_600_and_1200_pixel_copies_only_of_wider_images(world: World):
    wide = _upload(world, "wide.png", png_bytes(1500, 300))
    middling = _upload(world, "middling.png", png_bytes(700, 140))
    narrow = _upload(world, "narrow.png", png_bytes(600, 100))

    assert {v: _opened(wide, v).size for v in wide.variants} == {
        "original": (1500, 300),
        "600": (600, 120),
        "1200": (1200, 240),
    }
    assert {v: _opened(middling, v).size for v in middling.variants} == {
        "original": (700, 140),
        "600": (600, 120),
    }
    assert set(narrow.variants) == {"original"}
    assert narrow.urls()["600"] is None
    assert wide.variants["1200"] == {
        "width": 1200,
        "height": 240,
        "size": len(_stored(wide, "1200")),
    }


def test_it_strips_exif_and_gps_after_turning_the_photo_upright(world: World):
    # given a phone photo, 80 by 40 as stored, that EXIF says to turn a quarter clockwise
    photo = jpeg_with_gps(80, 40)
    assert PILImage.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)

    # when it is uploaded
    image = _upload(world, "IMG_2041.JPG", photo, content_type="image/jpeg")

    # then it is kept upright (40 by 80), and nothing of its metadata is left
    stored = _stored(image)
    kept = _opened(image)
    assert (image.width, image.height) == kept.size == (40, 80)
    assert not kept.getexif()
    assert "exif" not in kept.info
    assert "comment" not in kept.info
    assert b"Exif" not in stored
    assert b"Phonemaker" not in stored
    assert b"shot at home" not in stored


def test_it_keeps_the_frames_of_an_animation_in_every_variant(world: World):
    image = _upload(world, "loader.gif", gif_animation(700, 70, frames=3), "image/gif")

    for variant in ("original", "600"):
        kept = _opened(image, variant)
        assert kept.format == "GIF"
        assert kept.n_frames == 3
        assert kept.info.get("comment") is None
    assert _opened(image, "600").size == (600, 60)
    assert b"secret tool" not in _stored(image)


def test_it_cleans_the_name_to_one_line_without_folders(world: World):
    image = _upload(world, "C:\\Users\\me\\../team\tphoto\nof us.png", png_bytes())

    assert image.name == "team photo of us.png"


def test_it_audits_uploads_and_deletions(world: World):
    image = _upload(world, "audited.png", png_bytes())
    services.image_delete(image=image, actor=world.alice)

    entries = AuditEntry.objects.for_account(world.account_a).filter(
        action__startswith="image.", detail__name="audited.png"
    )
    assert sorted(e.action for e in entries) == ["image.deleted", "image.uploaded"]
    assert all(e.actor == world.alice for e in entries)


# -- what is refused -----------------------------------------------------------------------


def test_it_refuses_an_svg_drawing_saying_what_it_is(world: World):
    message = _refusal(world, "photo.png", SVG)

    assert message == (
        "photo.png is not an image Missive can use: it is an SVG drawing; upload PNG, JPEG, "
        "GIF or WebP."
    )
    assert not Image.objects.for_account(world.account_a).filter(name="photo.png").exists()


def test_it_refuses_an_html_page_renamed_png_whatever_its_declared_type(world: World):
    message = _refusal(world, "invoice.png", HTML, content_type="image/png")

    assert "invoice.png is not an image Missive can use: it is an HTML page" in message


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"BM" + b"\x00" * 60, "a BMP image"),
        (b"name,email\nann,ann@example.com\n", "a text file"),
        (png_bytes(300, 300)[:120], "damaged or cut short"),
    ],
)
def test_it_refuses_other_files_naming_why(world: World, content, what):
    assert what in _refusal(world, "picture.png", content)


def test_it_refuses_a_huge_png_from_its_header_naming_its_size(world: World):
    # given a 20,000 by 20,000 PNG (400 megapixels) of a few hundred bytes
    bomb = huge_png_header(20_000, 20_000)
    assert len(bomb) < 1_000

    message = _refusal(world, "bomb.png", bomb)

    assert f"bomb.png is 20,000 {TIMES} 20,000 pixels (400 megapixels)" in message
    assert "the limit is 25 megapixels" in message


def test_it_refuses_an_image_over_the_pixel_limit_set(world: World, settings):
    settings.MISSIVE_IMAGE_MAX_PIXELS = 10_000

    message = _refusal(world, "big.png", png_bytes(200, 100))

    assert f"big.png is 200 {TIMES} 100 pixels" in message


def test_it_refuses_a_file_over_the_byte_limit(world: World, settings, api: Client):
    settings.MISSIVE_IMAGE_MAX_BYTES = 2_000
    content = png_bytes(400, 400, color="#123456") + b"\x00" * 3_000

    response = api.post("/api/v1/images/", {"file": SimpleUploadedFile("large.png", content)})

    assert response.status_code == 400
    assert "large.png is " in response.json()["errors"]["file"][0]
    assert "the limit is 2.0" in response.json()["errors"]["file"][0]


def test_it_reads_no_more_than_the_limit_of_a_stream_of_unknown_size(world: World, settings):
    # given a stream with no declared size, far longer than the limit
    settings.MISSIVE_IMAGE_MAX_BYTES = 1_000

    class Stream(io.BytesIO):
        name = "endless.png"
        read_sizes: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            self.read_sizes.append(size if size is not None else -1)
            return super().read(size)

    stream = Stream(b"\x89PNG" + b"\x00" * 100_000)

    # when it is uploaded, then it is refused having read at most one byte over the limit
    with pytest.raises(services.ImageRefused, match="larger than 1000"):
        services.image_upload(account=world.account_a, actor=world.alice, file=stream)
    assert stream.tell() <= 1_001
    assert all(0 <= size <= 1_001 for size in Stream.read_sizes)


def test_it_refuses_an_upload_past_the_quota_saying_how_much_is_used(
    world: World, settings, api: Client, alice_client: Client
):
    # given an account whose images already take most of its quota
    used = Image.objects.for_account(world.account_a).get().size
    settings.MISSIVE_IMAGE_QUOTA_BYTES = used + 100

    # when another image is uploaded through the API, and through the page
    response = api.post(
        "/api/v1/images/", {"file": SimpleUploadedFile("more.png", png_bytes(700, 700))}
    )
    page = alice_client.post(
        "/images/", {"file": SimpleUploadedFile("more.png", png_bytes(700, 700))}
    )

    # then both refuse, saying how much of the quota is used
    assert response.status_code == 409
    assert f"used {used} bytes of {used + 100} bytes" in response.json()["detail"]
    assert page.status_code == 200
    assert "The image library is full: used" in page.content.decode()
    assert not Image.objects.for_account(world.account_a).filter(name="more.png").exists()
    # and no file of theirs was left in storage
    assert _stored_names() == set(Image.objects.get(name="Alpha Sentinel logo.png").storage_names())


def _stored_names() -> set[str]:
    storage = image_storage()
    return {
        f"{directory}/{name}"
        for directory in storage.listdir("")[0]
        for name in storage.listdir(directory)[1]
    }


def test_it_refuses_a_form_without_a_file(alice_client: Client):
    response = alice_client.post("/images/", {})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_the_api_refuses_a_body_without_a_file(api: Client):
    response = api.post("/api/v1/images/", {})

    assert response.status_code == 400
    assert "file" in response.json()["errors"]


def test_it_keeps_a_cmyk_jpeg_as_rgb(world: World):
    out = io.BytesIO()
    PILImage.new("CMYK", (50, 20), (0, 255, 255, 0)).save(out, format="JPEG")

    image = _upload(world, "print.jpg", out.getvalue(), content_type="image/jpeg")

    assert image.format == "jpeg"
    assert _opened(image).mode == "RGB"


def test_the_page_shows_why_a_file_was_refused(alice_client: Client, world: World):
    response = alice_client.post(
        "/images/", {"file": SimpleUploadedFile("photo.png", SVG, content_type="image/png")}
    )

    assert response.status_code == 200
    assert (
        "photo.png is not an image Missive can use: it is an SVG drawing; upload PNG, JPEG, "
        "GIF or WebP." in response.content.decode()
    )
    assert not Image.objects.for_account(world.account_a).filter(name="photo.png").exists()


def test_the_api_says_why_a_file_was_refused(api: Client):
    response = api.post(
        "/api/v1/images/",
        {"file": SimpleUploadedFile("invoice.png", HTML, content_type="image/png")},
    )

    assert response.status_code == 400
    assert response.json()["errors"]["file"] == [
        "invoice.png is not an image Missive can use: it is an HTML page; upload PNG, JPEG, "
        "GIF or WebP."
    ]


# -- refused by the size it declares, before its body is read ------------------------------


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """How many request bodies Django's multipart parser read."""
    calls: list[int] = []
    real = MultiPartParser.parse

    def spy(self: MultiPartParser) -> object:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(MultiPartParser, "parse", spy)
    return calls


def _oversized(settings) -> SimpleUploadedFile:
    settings.MISSIVE_IMAGE_MAX_BYTES = 2_000
    return SimpleUploadedFile("poster.png", png_bytes(10, 10) + b"\x00" * (FORM_ROOM + 10_000))


def test_the_page_refuses_an_upload_declaring_too_much_without_reading_it(
    world: World, settings, parses: list[int]
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)

    response = client.post("/images/", {"file": _oversized(settings)}, follow=True)

    assert parses == []
    assert "The upload is 74.0 KB; the limit is 2.0 KB." in response.content.decode()
    assert not Image.objects.for_account(world.account_a).filter(name="poster.png").exists()


def test_the_block_editor_refuses_it_and_returns_to_the_block(
    world: World, settings, parses: list[int], alice_client: Client
):
    campaign = Campaign.objects.for_account(world.account_a).get(name="Alpha Sentinel launch")
    campaign.editor = Editor.BLOCKS
    campaign.save()

    response = alice_client.post(
        f"/campaigns/{campaign.pk}/blocks/upload/?block=b1&width=mobile",
        {"block": "b1", "file": _oversized(settings)},
    )

    assert parses == []
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/blocks/?block=b1&width=mobile"


def test_the_api_answers_413_without_reading_it(
    world: World, settings, parses: list[int], api: Client
):
    response = api.post("/api/v1/images/", {"file": _oversized(settings)})

    assert parses == []
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The upload is 74.0 KB; the limit is 2.0 KB.")


def test_uploads_within_the_size_still_need_the_csrf_token(world: World, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)

    response = client.post("/images/", {"file": SimpleUploadedFile("a.png", png_bytes(8, 8))})

    assert response.status_code == 403
    assert not Image.objects.for_account(world.account_a).filter(name="a.png").exists()


def test_a_server_answers_before_the_rest_of_a_huge_upload_is_sent(
    live_server, world: World, settings
):
    # given a browser that starts sending a 50 MB file to the media library
    settings.MISSIVE_IMAGE_MAX_BYTES = 2_000
    client = Client()
    client.force_login(world.alice)
    session = client.cookies["sessionid"].value
    host, port = live_server.url.removeprefix("http://").split(":")
    boundary = "----missive"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="huge.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    declared = len(head) + 50 * 1024 * 1024
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            (
                f"POST /images/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Cookie: sessionid={session}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            + head
            + b"\x89PNG"
            + b"\x00" * 60_000
        )
        # when only the first 60 KB were sent, then the answer is already there
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = connection.recv(4096)
            assert received, f"the server closed without an answer: {answer!r}"
            answer += received

    answer_text = answer.decode("latin-1")

    assert answer_text.startswith("HTTP/1.1 302")
    assert "Location: /images/" in answer_text
