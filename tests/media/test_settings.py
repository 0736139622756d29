"""Where image files are stored: the filesystem by default, any storage class by setting."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from config.env import env_json_object
from media.storage import image_storage
from tests.factories import World, sample_image


def test_it_reads_storage_options_as_a_json_object(monkeypatch):
    monkeypatch.setenv("X_OPTIONS", '{"bucket_name": "missive-images", "querystring_auth": false}')

    assert env_json_object("X_OPTIONS") == {
        "bucket_name": "missive-images",
        "querystring_auth": False,
    }
    monkeypatch.setenv("X_OPTIONS", "")
    assert env_json_object("X_OPTIONS", {"location": "/srv"}) == {"location": "/srv"}


@pytest.mark.parametrize(("raw", "why"), [("{bucket", "not valid JSON"), ("[1]", "a JSON object")])
def test_it_refuses_options_that_are_not_a_json_object(monkeypatch, raw, why):
    monkeypatch.setenv("X_OPTIONS", raw)

    with pytest.raises(ImproperlyConfigured, match=why):
        env_json_object("X_OPTIONS")


def test_it_stores_under_media_root_by_default():
    from config.settings import base

    assert base.STORAGES["images"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert base.STORAGES["images"]["OPTIONS"]["location"] == str(base.MEDIA_ROOT / "images")


def test_it_keeps_and_serves_images_through_another_storage_class(world: World, settings, client):
    # given an operator's storage of another kind (an S3 bucket would be set the same way)
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {"BACKEND": "django.core.files.storage.InMemoryStorage", "OPTIONS": {}},
    }
    assert isinstance(image_storage(), InMemoryStorage)
    assert not isinstance(image_storage(), FileSystemStorage)

    # when an image is uploaded, then it is kept there and served from there
    image = sample_image(world.account_a, world.alice, "elsewhere.png")
    assert image_storage().exists(image.storage_name("original"))
    response = client.get(image.path())
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
