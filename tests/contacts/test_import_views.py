"""The import screens, and an import carried out by a real Celery worker."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery import app
from contacts import importing
from contacts.models import Contact, ImportJob


def _post_file(client, list_id: int, content: bytes):
    return client.post(
        f"/lists/{list_id}/import/",
        {"file": SimpleUploadedFile("people.csv", content, content_type="text/csv")},
    )


def _mapping_data(job: ImportJob, **overrides) -> dict:
    data = {f"col_{k}": v for k, v in job.mapping.items()}
    data.update(legal_basis="consent", consent_text="Trade fair sign-up sheet")
    data.update(overrides)
    return data


def test_it_walks_through_upload_mapping_and_summary(alice_client, world):
    newsletter = world.extras["list"]

    # upload: the file is kept and the mapping screen shows its columns and first rows
    response = _post_file(
        alice_client, newsletter.pk, b"E-mail,Prenom\nann@example.com,Ann\nbad,Bob\n"
    )
    job = ImportJob.objects.get(account=world.account_a, original_name="people.csv")
    assert response.url == f"/imports/{job.pk}/"
    page = alice_client.get(response.url).content.decode()
    assert "Match the columns of people.csv" in page
    assert "ann@example.com" in page

    # mapping without the consent wording is refused, saying why
    response = alice_client.post(f"/imports/{job.pk}/", _mapping_data(job, consent_text=""))
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()

    # mapping: the import is queued and the page shows progress
    response = alice_client.post(f"/imports/{job.pk}/", _mapping_data(job, col_1="first_name"))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED
    progress = alice_client.get(f"/imports/{job.pk}/").content.decode()
    assert 'id="import-progress"' in progress
    assert 'hx-trigger="every 1s"' in progress

    # when it has run, the summary and the rejects show
    importing.run_import(job.pk)
    partial = alice_client.get(f"/imports/{job.pk}/progress/")
    assert partial["HX-Refresh"] == "true"
    summary = alice_client.get(f"/imports/{job.pk}/").content.decode()
    assert "new contacts" in summary
    assert "Rejected rows" in summary
    assert "not a valid email address" in summary
    assert Contact.objects.get(email="ann@example.com").first_name == "Ann"


def test_it_refuses_a_file_without_email_on_the_upload_screen(alice_client, world):
    response = _post_file(alice_client, world.extras["list"].pk, b"name,city\nAnn,Paris\n")

    assert response.status_code == 400
    assert "No column holds email addresses" in response.content.decode()
    assert not ImportJob.objects.filter(original_name="people.csv").exists()


def test_it_keeps_imports_from_viewers(world):
    from django.test import Client

    from tests.factories import add_member, make_user

    viewer = make_user("viewer@alpha.test")
    add_member(world.account_a, viewer, "viewer")
    client = Client()
    client.force_login(viewer, backend="allauth.account.auth_backends.AuthenticationBackend")

    assert _post_file(client, world.extras["list"].pk, b"email\na@example.com\n").status_code == 403


def test_it_cancels_a_queued_import_after_confirmation(alice_client, world):
    _post_file(alice_client, world.extras["list"].pk, b"email\na@example.com\n")
    job = ImportJob.objects.get(original_name="people.csv")
    alice_client.post(f"/imports/{job.pk}/", _mapping_data(job))

    assert "Cancel the import" in alice_client.get(f"/imports/{job.pk}/cancel/").content.decode()
    alice_client.post(f"/imports/{job.pk}/cancel/")

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED


@pytest.fixture
def celery_worker(transactional_db):
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield


def test_it_imports_in_a_celery_worker(world, celery_worker, alice_client):
    rows = "email,first name\n" + "".join(f"w{n}@example.com,W{n}\n" for n in range(2000))
    _post_file(alice_client, world.extras["list"].pk, rows.encode())
    job = ImportJob.objects.get(original_name="people.csv")

    alice_client.post(f"/imports/{job.pk}/", _mapping_data(job))

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.2)
    assert job.status == ImportJob.Status.DONE
    assert job.created_count == 2000
    assert Contact.objects.filter(account=world.account_a, email__startswith="w").count() == 2000
