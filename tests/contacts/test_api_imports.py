"""CSV imports through the API: upload, start, progress, outcome, rejects and cancel,
through a bearer key, scoped to the key's account.

No worker runs here and the ``db`` fixture never fires on_commit callbacks: a started
import is carried out by calling ``run_import`` directly."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from contacts.importing.jobs import run_import
from contacts.models import AttributeDefinition, Contact, ImportJob, Subscription
from tests.factories import World

PEOPLE = (
    b"email,first name,plan\n"
    b"ann@example.com,Ann,gold\n"
    b"not-an-address,Bob,silver\n"
    b"ANN@example.com,Ann again,gold\n"
    b"blocked@alpha.test,Blocked,gold\n"
)
CONSENT = {"legal_basis": "consent", "consent_text": "Trade fair sign-up sheet, May 2026"}


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Uploads land in a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def api(world: World) -> Client:
    return _api(world.alice_key_secret)


@pytest.fixture
def outsider_api(world: World) -> Client:
    return _api(world.charlie_key_secret)


def _upload(client: Client, list_id: int, content: bytes = PEOPLE, name: str = "people.csv"):
    return client.post(
        f"/api/v1/lists/{list_id}/imports/",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def _start(client: Client, job_id: int, **data: object):
    return client.post(
        f"/api/v1/imports/{job_id}/start/", {**CONSENT, **data}, content_type="application/json"
    )


@pytest.fixture
def uploaded(api: Client, world: World) -> ImportJob:
    response = _upload(api, world.extras["list"].pk)
    assert response.status_code == 201
    return ImportJob.objects.get(pk=response.json()["id"])


# Upload


def test_it_uploads_a_csv_and_suggests_a_mapping(api, world, media_root):
    newsletter = world.extras["list"]

    # when a small CSV is uploaded into the list
    response = _upload(api, newsletter.pk)

    # then the job waits for its mapping, with the file's shape, a suggestion and first rows
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "uploaded"
    assert body["list"] == newsletter.pk
    assert body["original_name"] == "people.csv"
    assert body["size_bytes"] == len(PEOPLE)
    assert (body["encoding"], body["delimiter"]) == ("utf-8", ",")
    assert body["columns"] == ["email", "first name", "plan"]
    assert body["mapping"] == {"0": "email", "1": "first_name", "2": "new:text:plan"}
    assert body["preview"][0] == ["ann@example.com", "Ann", "gold"]
    assert len(body["preview"]) == 4
    assert body["progress"] is None
    job = ImportJob.objects.get(pk=body["id"])
    assert job.account == world.account_a
    assert Path(job.file_path).parent == media_root / "imports"


def test_it_refuses_a_file_without_an_email_column_and_keeps_nothing(api, world, media_root):
    # when the file has no column of addresses
    response = _upload(api, world.extras["list"].pk, b"name,city\nAnn,Paris\nBob,Lyon\n")

    # then it is refused on `file`, saying how to fix it, and neither a job nor the file stays
    assert response.status_code == 400
    assert response.json()["detail"].startswith("file: No column holds email addresses")
    assert not ImportJob.objects.filter(original_name="people.csv").exists()
    assert list((media_root / "imports").iterdir()) == []


def test_it_refuses_a_request_without_a_file(api, world):
    response = api.post(f"/api/v1/lists/{world.extras['list'].pk}/imports/", {})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("file:")
    assert list(ImportJob.objects.for_account(world.account_a)) == [world.extras["import"]]


# Start


def test_it_refuses_a_mapping_without_an_email_column(api, uploaded):
    # when every column is ignored
    response = _start(api, uploaded.pk, mapping={"0": "ignore", "1": "first_name"})

    # then the mapping is named, and the import waits as it was
    assert response.status_code == 400
    assert response.json()["detail"].startswith("mapping: Choose exactly one column")
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED


@pytest.mark.parametrize(
    "mapping",
    [
        {"0": "email", "3": "first_name"},  # the file has three columns
        {"0": "email", "01": "first_name"},
        {"0": "email", "x": "first_name"},
        {"0": "email", "1": "phone"},
        {"0": "email", "1": "attribute:"},
    ],
)
def test_it_refuses_a_mapping_that_does_not_fit_the_file(api, uploaded, mapping):
    response = _start(api, uploaded.pk, mapping=mapping)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("mapping:")
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED


def test_it_names_a_new_attribute_that_cannot_be_declared_as_a_mapping_error(api, uploaded):
    # when the mapping asks to declare an attribute the account already has
    response = _start(api, uploaded.pk, mapping={"0": "email", "2": "new:city"})

    # then the refusal names the mapping, not a field the caller never sent
    assert response.status_code == 400
    assert response.json()["detail"].startswith("mapping:")
    assert "city" in response.json()["detail"]
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"legal_basis": "legitimate_interest"}, "legal_basis"),
        ({"consent_text": "   "}, "consent_text"),
    ],
)
def test_it_names_the_consent_field_it_refuses(api, uploaded, data, field):
    response = _start(api, uploaded.pk, mapping={"0": "email"}, **data)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED


def test_it_imports_a_file_and_reports_its_outcome(api, world, uploaded):
    # when the import is started with the suggested mapping and a new attribute
    mapping = {**uploaded.mapping, "2": "new:plan"}
    response = _start(api, uploaded.pk, mapping=mapping, update_existing=False)

    # then it is queued, with the mapping it will run with and its progress
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["mapping"] == {"0": "email", "1": "first_name", "2": "attribute:plan"}
    assert body["legal_basis"] == "consent"
    assert body["progress"] == {"rows": 0, "percent": 0, "rate": 0.0, "seconds_left": None}
    assert AttributeDefinition.objects.for_account(world.account_a).filter(name="plan").exists()

    # when a worker has carried it out
    run_import(uploaded.pk)

    # then the job shows its outcome: one new contact, one duplicate, one invalid row and
    # one suppressed address
    body = api.get(f"/api/v1/imports/{uploaded.pk}/").json()
    assert body["status"] == "done"
    assert body["progress"] is None
    assert body["preview"] == []
    assert body["started_at"] is not None
    assert body["finished_at"] is not None
    assert body["counts"] == {
        "created": 1,
        "updated": 0,
        "subscribed": 1,
        "already_subscribed": 0,
        "suppressed": 1,
        "unsubscribed": 0,
        "duplicates": 1,
        "invalid": 1,
    }
    ann = Contact.objects.for_account(world.account_a).get(email="ann@example.com")
    assert (ann.first_name, ann.attributes) == ("Ann", {"plan": "gold"})
    subscription = Subscription.objects.get(contact=ann, contact_list=world.extras["list"])
    assert subscription.consent_text == CONSENT["consent_text"]

    # and the rejects list the bad row, where it is in the file and why
    rejects = api.get(f"/api/v1/imports/{uploaded.pk}/rejects/").json()["results"]
    assert len(rejects) == 1
    assert rejects[0]["row_number"] == 3
    assert rejects[0]["column"] == "email"
    assert rejects[0]["value"] == "not-an-address"
    assert "not a valid email address" in rejects[0]["reason"]

    # and so does their CSV file
    response = api.get(f"/api/v1/imports/{uploaded.pk}/rejects.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1][:3] == ["3", "email", "not-an-address"]
    assert len(rows) == 2


def test_it_refuses_to_start_an_import_twice(api, uploaded):
    assert _start(api, uploaded.pk, mapping={"0": "email"}).status_code == 202
    uploaded.refresh_from_db()
    started = (uploaded.status, uploaded.mapping)

    response = _start(api, uploaded.pk, mapping={"0": "email"})

    assert response.status_code == 409
    assert "can start only once" in response.json()["detail"]
    uploaded.refresh_from_db()
    assert (uploaded.status, uploaded.mapping) == started


def test_it_defuses_formulas_in_the_rejects_file(api, world):
    response = _upload(api, world.extras["list"].pk, b"email\nann@example.com\n=HYPERLINK(1)\n")
    job_id = response.json()["id"]
    _start(api, job_id, mapping={"0": "email"})
    run_import(job_id)

    response = api.get(f"/api/v1/imports/{job_id}/rejects.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][2] == "'=HYPERLINK(1)"


# Cancel and list


def test_it_cancels_a_queued_import(api, world, uploaded):
    # given a queued import
    _start(api, uploaded.pk, mapping={"0": "email"})

    # when it is cancelled
    response = api.post(f"/api/v1/imports/{uploaded.pk}/cancel/")

    # then it never runs, and its file is gone
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert run_import(uploaded.pk) is None
    assert not Contact.objects.for_account(world.account_a).filter(email="ann@example.com")
    assert not Path(uploaded.file_path).exists()


def test_it_lists_the_accounts_imports_newest_first(api, world, uploaded):
    response = api.get("/api/v1/imports/")

    assert response.status_code == 200
    ids = [job["id"] for job in response.json()["results"]]
    assert ids == [uploaded.pk, world.extras["import"].pk]
    assert "preview" not in response.json()["results"][0]


# Access


def test_it_answers_404_to_another_accounts_key(outsider_api, world, uploaded):
    job_url = f"/api/v1/imports/{uploaded.pk}"
    requests = [
        ("get", f"{job_url}/"),
        ("post", f"{job_url}/start/"),
        ("post", f"{job_url}/cancel/"),
        ("get", f"{job_url}/rejects/"),
        ("get", f"{job_url}/rejects.csv"),
    ]
    for method, url in requests:
        response = getattr(outsider_api, method)(url)
        assert response.status_code == 404, url

    response = _upload(outsider_api, world.extras["list"].pk)
    assert response.status_code == 404
    assert ImportJob.objects.count() == 2
    assert outsider_api.get("/api/v1/imports/").json()["results"] == []
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED


def test_it_lets_a_viewer_key_read_imports_but_not_run_them(viewer_api, world, uploaded):
    assert _upload(viewer_api, world.extras["list"].pk).status_code == 403
    assert _start(viewer_api, uploaded.pk, mapping={"0": "email"}).status_code == 403
    assert viewer_api.post(f"/api/v1/imports/{uploaded.pk}/cancel/").status_code == 403

    assert viewer_api.get(f"/api/v1/imports/{uploaded.pk}/").status_code == 200
    assert viewer_api.get(f"/api/v1/imports/{uploaded.pk}/rejects/").status_code == 200
    uploaded.refresh_from_db()
    assert uploaded.status == ImportJob.Status.UPLOADED
    assert ImportJob.objects.count() == 2


def test_it_lists_the_values_left_out_apart_from_the_rejects(api, world):
    # given a file whose number column holds a word in one row
    content = b"email,points\nann@example.com,12\ncy@example.com,7\nbob@example.com,many\n"
    job_id = _upload(api, world.extras["list"].pk, content).json()["id"]
    body = api.get(f"/api/v1/imports/{job_id}/").json()
    assert body["mapping_problems"] == [
        "1 of 3 sample rows have a value that is not a number in column points, e.g. 'many': "
        "those values will be left out (the rows are imported)."
    ]

    # when it is imported
    _start(api, job_id, mapping=body["mapping"])
    run_import(job_id)

    # then both people are in, and the word is a warning, not a rejected row
    body = api.get(f"/api/v1/imports/{job_id}/").json()
    assert (body["counts"]["created"], body["counts"]["invalid"], body["warnings"]) == (3, 0, 1)
    assert api.get(f"/api/v1/imports/{job_id}/rejects/").json()["results"] == []
    warnings = api.get(f"/api/v1/imports/{job_id}/warnings/").json()["results"]
    assert [(w["row_number"], w["column"], w["value"]) for w in warnings] == [(4, "points", "many")]
    bob = Contact.objects.for_account(world.account_a).get(email="bob@example.com")
    assert bob.attributes == {}


def test_it_points_to_the_new_upload_when_every_row_was_rejected(api, world):
    job_id = _upload(api, world.extras["list"].pk, b"name,email\nAnn,ann@example.com\n").json()[
        "id"
    ]
    _start(api, job_id, mapping={"0": "email"})
    run_import(job_id)

    body = api.get(f"/api/v1/imports/{job_id}/").json()

    assert body["status"] == "failed"
    assert body["error"].startswith("Every row was rejected (1)")
    retry = api.get(f"/api/v1/imports/{body['retry_import']}/").json()
    assert (retry["status"], retry["columns"]) == ("uploaded", ["name", "email"])
    assert retry["preview"] == [["Ann", "ann@example.com"]]
