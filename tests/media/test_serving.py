"""The public addresses of images, deletion and erasure of their files, and who may see,
upload and delete them."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import Account
from media import services
from media.models import Image
from media.services import TIMES
from media.storage import image_storage
from privacy.closure import purge_account_data
from tests.factories import World, png_bytes, sample_image


@pytest.fixture
def image(world: World) -> Image:
    return sample_image(world.account_a, world.alice, "Alpha Sentinel banner.png", width=900)


def _exists(name: str) -> bool:
    return image_storage().exists(name)


# -- the public address --------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["original", "600"])
def test_it_serves_the_bytes_with_strict_long_lived_headers(client: Client, image: Image, variant):
    # when anyone, logged in or not, fetches the address put in an email
    response = client.get(image.path(variant))

    # then the stored bytes come back, as what they are, cacheable for good, inert
    assert response.status_code == 200
    with image_storage().open(image.storage_name(variant), "rb") as file:
        assert b"".join(response.streaming_content) == file.read()
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "Set-Cookie" not in response


def test_its_address_names_only_a_random_key(image: Image, world: World):
    url = image.url()

    assert url == f"http://testserver/i/{image.key}/original.png"
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", image.key)
    assert image.key != sample_image(world.account_a, world.alice).key


@pytest.mark.parametrize(
    "path",
    [
        "/i/{key}/1200.png",  # a width not made: the image is 900 pixels wide
        "/i/{key}/original.jpg",  # not its format
        "/i/{key}/thumbnail.png",
        "/i/AAAAAAAAAAAAAAAAAAAAAAAA/original.png",  # no such key
        "/i/%2e%2e%2f%2e%2e%2fetc%2fpasswd/original.png",
        "/i/{key}x/original.png",
        "/i/short/original.png",
        "/i/{key}/original.png.png",
        "/i/%00%ff/original.png",
    ],
)
def test_it_answers_404_to_anything_but_an_existing_variant(client: Client, image: Image, path):
    response = client.get(path.format(key=image.key))

    assert response.status_code == 404


def test_it_answers_404_once_the_file_is_gone_from_storage(client: Client, image: Image):
    image_storage().delete(image.storage_name("original"))

    assert client.get(image.path()).status_code == 404


# -- the library page ----------------------------------------------------------------------


def test_it_shows_an_empty_library(charlie_client: Client, world: World):
    page = charlie_client.get("/images/").content.decode()

    assert "No images yet" in page
    assert "Alpha Sentinel" not in page


def test_it_shows_the_name_size_dimensions_and_address_of_each_image(
    alice_client: Client, image: Image
):
    page = alice_client.get("/images/").content.decode()

    assert "Alpha Sentinel banner.png" in page
    assert f"900 {TIMES} 30 px" in page
    assert f'value="{image.url()}"' in page
    assert f'src="{image.path("600")}"' in page
    assert 'enctype="multipart/form-data"' in page


def test_a_viewer_sees_the_library_but_cannot_upload_or_delete(
    vera_client: Client, image: Image, world: World
):
    page = vera_client.get("/images/").content.decode()
    assert "Alpha Sentinel banner.png" in page
    assert 'enctype="multipart/form-data"' not in page
    assert f"/images/{image.pk}/delete/" not in page

    upload = vera_client.post(
        "/images/", {"file": SimpleUploadedFile("mine.png", png_bytes())}, follow=True
    )
    assert "Your role cannot upload images." in upload.content.decode()
    assert vera_client.get(f"/images/{image.pk}/delete/").status_code == 403
    assert vera_client.post(f"/images/{image.pk}/delete/").status_code == 403
    assert not Image.objects.filter(name="mine.png").exists()
    assert Image.objects.filter(pk=image.pk).exists()


def test_a_viewer_key_cannot_upload_or_delete_through_the_api(viewer_api: Client, image: Image):
    assert viewer_api.get(f"/api/v1/images/{image.pk}/").status_code == 200
    upload = viewer_api.post(
        "/api/v1/images/", {"file": SimpleUploadedFile("mine.png", png_bytes())}
    )
    assert upload.status_code == 403
    assert viewer_api.delete(f"/api/v1/images/{image.pk}/").status_code == 403


# -- another account -----------------------------------------------------------------------


def test_another_account_cannot_list_see_or_delete_an_image(
    charlie_client: Client, world: World, image: Image
):
    charlie_api = Client(HTTP_AUTHORIZATION=f"Bearer {world.charlie_key_secret}")

    assert "Alpha Sentinel" not in charlie_client.get("/images/").content.decode()
    assert charlie_client.get(f"/images/{image.pk}/delete/").status_code == 404
    assert charlie_client.post(f"/images/{image.pk}/delete/").status_code == 404
    assert charlie_api.get("/api/v1/images/").json()["results"] == []
    assert charlie_api.get(f"/api/v1/images/{image.pk}/").status_code == 404
    assert charlie_api.delete(f"/api/v1/images/{image.pk}/").status_code == 404
    assert Image.objects.filter(pk=image.pk).exists()
    assert all(_exists(name) for name in image.storage_names())


# -- deletion and erasure ------------------------------------------------------------------


def test_the_delete_page_warns_that_sent_emails_will_show_a_broken_image(
    alice_client: Client, image: Image
):
    page = alice_client.get(f"/images/{image.pk}/delete/").content.decode()

    assert "Delete Alpha Sentinel banner.png?" in page
    assert "Emails already sent with this image will show a broken image" in page
    assert Image.objects.filter(pk=image.pk).exists()


def test_deleting_on_the_page_removes_the_files(
    alice_client: Client, image: Image, django_capture_on_commit_callbacks
):
    names = image.storage_names()
    assert len(names) == 2
    assert all(_exists(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/images/{image.pk}/delete/")

    assert response.status_code == 302
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not any(_exists(name) for name in names)


def test_deleting_through_the_api_removes_the_files(
    world: World, image: Image, django_capture_on_commit_callbacks
):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")
    names = image.storage_names()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/images/{image.pk}/")

    assert response.status_code == 204
    assert not any(_exists(name) for name in names)
    assert Client().get(image.path()).status_code == 404


def test_files_stay_when_the_deletion_does_not_commit(
    world: World, image: Image, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.image_delete(image=image, actor=world.alice)

    assert len(callbacks) == 1
    assert all(_exists(name) for name in image.storage_names())


def test_the_purge_of_a_closed_account_removes_its_images_files(
    world: World, image: Image, django_capture_on_commit_callbacks
):
    # given account A closed, with two images, and account B with one
    names = [*image.storage_names(), *world.extras["image"].storage_names()]
    other = sample_image(world.account_b, world.charlie, "bravo.png")
    Account.objects.filter(pk=world.account_a.pk).update(
        status=Account.Status.CLOSED, closed_at=timezone.now()
    )

    # when its data are purged
    with django_capture_on_commit_callbacks(execute=True):
        purge_account_data(world.account_a)

    # then its images and their files are gone; the other account's stay
    assert not Image.objects.filter(account=world.account_a).exists()
    assert not any(_exists(name) for name in names)
    assert all(_exists(name) for name in other.storage_names())


def test_the_full_export_lists_the_images_with_their_addresses(alice_client: Client, image: Image):
    response = alice_client.get("/settings/export/")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = json.loads(archive.read("images.json"))
    assert {row["name"]: row["url"] for row in rows} == {
        "Alpha Sentinel logo.png": Image.objects.get(name="Alpha Sentinel logo.png").url(),
        "Alpha Sentinel banner.png": image.url(),
    }
    assert "Alpha Sentinel banner.png" in archive.read("images.csv").decode()
