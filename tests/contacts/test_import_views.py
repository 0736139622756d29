"""The import screens, and an import carried out by a real Celery worker."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.importing.jobs import run_import
from contacts.models import Contact, ImportJob
from tests.workers import wait_until


def _post_file(client, list_id: int, content: bytes):
    return client.post(
        f"/lists/{list_id}/import/",
        {"file": SimpleUploadedFile("people.csv", content, content_type="text/csv")},
    )


def _refreshed(job: ImportJob) -> ImportJob:
    job.refresh_from_db()
    return job


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
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED

    # mapping: the import is queued and the page shows progress
    response = alice_client.post(f"/imports/{job.pk}/", _mapping_data(job, col_1="first_name"))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED
    progress = alice_client.get(f"/imports/{job.pk}/").content.decode()
    assert 'id="import-progress"' in progress
    assert 'hx-trigger="every 1s"' in progress

    # when it has run, the summary and the rejects show
    run_import(job.pk)
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


def test_it_keeps_imports_from_viewers(world, vera_client):
    response = _post_file(vera_client, world.extras["list"].pk, b"email\na@example.com\n")

    assert response.status_code == 403
    assert not ImportJob.objects.filter(original_name="people.csv").exists()


def test_it_cancels_a_queued_import_after_confirmation(alice_client, world):
    _post_file(alice_client, world.extras["list"].pk, b"email\na@example.com\n")
    job = ImportJob.objects.get(original_name="people.csv")
    alice_client.post(f"/imports/{job.pk}/", _mapping_data(job))

    assert "Cancel the import" in alice_client.get(f"/imports/{job.pk}/cancel/").content.decode()
    alice_client.post(f"/imports/{job.pk}/cancel/")

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED


def test_it_imports_in_a_celery_worker(world, celery_worker, alice_client):
    rows = "email,first name\n" + "".join(f"w{n}@example.com,W{n}\n" for n in range(2000))
    _post_file(alice_client, world.extras["list"].pk, rows.encode())
    job = ImportJob.objects.get(original_name="people.csv")

    alice_client.post(f"/imports/{job.pk}/", _mapping_data(job))

    wait_until(lambda: _refreshed(job).is_finished, timeout=30, message="the import to finish")
    assert job.status == ImportJob.Status.DONE
    assert job.created_count == 2000
    assert Contact.objects.filter(account=world.account_a, email__startswith="w").count() == 2000


def test_it_says_what_will_fail_on_the_mapping_screen_before_starting(alice_client, world):
    # given a file whose second column holds dates in some rows only
    rows = "email,OPTIN_TIME\n" + "".join(
        f"p{n}@example.com,{'x' if n < 12 else '2024-03-01 10:22:33'}\n" for n in range(20)
    )
    _post_file(alice_client, world.extras["list"].pk, rows.encode())
    job = ImportJob.objects.get(original_name="people.csv")

    # when the customer maps it to a new date attribute and checks the mapping
    data = _mapping_data(job, col_1="new:date:optin_time", check="1")
    page = alice_client.post(f"/imports/{job.pk}/", data).content.decode()

    # then the screen says what will fail, and nothing has started nor been declared
    assert "12 of 20 sample rows have a value that is not a date in column OPTIN_TIME" in page
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    assert not world.account_a.attributes.filter(name="optin_time").exists()

    # and once mapped as text, the check finds nothing wrong
    page = alice_client.post(f"/imports/{job.pk}/", {**data, "col_1": "new:text:optin_time"})
    assert "The first rows of the file all fit this mapping" in page.content.decode()


def test_it_offers_to_fix_the_mapping_of_an_import_that_rejected_every_row(alice_client, world):
    # given a file whose email column was mapped to the names
    _post_file(alice_client, world.extras["list"].pk, b"name,email\nAnn,ann@example.com\n")
    job = ImportJob.objects.get(original_name="people.csv")
    alice_client.post(f"/imports/{job.pk}/", _mapping_data(job, col_0="email", col_1="ignore"))
    run_import(job.pk)

    # when the customer opens the outcome
    page = alice_client.get(f"/imports/{job.pk}/").content.decode()

    # then it says plainly that nothing was imported, and links to the same file's mapping
    retry = job.retries.get()
    assert "Every row was rejected (1): nothing was imported." in page
    assert f'href="/imports/{retry.pk}/">Fix the mapping' in page
    mapping = alice_client.get(f"/imports/{retry.pk}/").content.decode()
    assert "Match the columns of people.csv" in mapping
    assert "ann@example.com" in mapping


def test_it_imports_a_mailchimp_export_with_its_optin_time_as_a_date_in_a_worker(
    world, celery_worker, alice_client
):
    # given a Mailchimp export of 2,001 people, in its real layout
    fixture = (Path(__file__).parent / "fixtures" / "mailchimp_subscribed.csv").read_text()
    header, first = fixture.splitlines()[:2]
    rows = [header] + [first.replace("ann.lee@", f"ann.lee{n}@") for n in range(2001)]
    _post_file(alice_client, world.extras["list"].pk, ("\n".join(rows) + "\n").encode())
    job = ImportJob.objects.get(original_name="people.csv")

    # when OPTIN_TIME is mapped to a new date attribute, and the import runs in a worker
    optin = job.columns.index("OPTIN_TIME")
    alice_client.post(
        f"/imports/{job.pk}/", _mapping_data(job, **{f"col_{optin}": "new:date:optin_time"})
    )
    wait_until(lambda: _refreshed(job).is_finished, timeout=30, message="the import to finish")

    # then all 2,001 people are in, each with the date
    assert (job.status, job.created_count, job.invalid_count) == ("done", 2001, 0)
    contact = Contact.objects.get(account=world.account_a, email="ann.lee7@example.com")
    assert contact.attributes["optin_time"] == "2021-03-02"
    assert world.account_a.attributes.get(name="optin_time").type == "date"


def test_it_explains_the_mapping_it_suggests_for_a_known_export(alice_client, world):
    fixture = Path(__file__).parent / "fixtures" / "mailchimp_subscribed.csv"
    _post_file(alice_client, world.extras["list"].pk, fixture.read_bytes())
    job = ImportJob.objects.get(original_name="people.csv")

    page = alice_client.get(f"/imports/{job.pk}/").content.decode()

    assert "This looks like a Mailchimp export" in page
    assert "Imported as tags: each name becomes a tag, created as needed." in page
    assert 'value="tags" selected' in page
    assert "Mailchimp&#x27;s own bookkeeping: ignored." in page
    assert "Kept with each subscription as proof of consent." in page
    assert 'value="consent_at" selected' in page
    assert 'value="confirmed_at" selected' in page
    assert "Kept with each subscription as proof of consent: when they confirmed it." in page


def test_it_offers_no_new_attribute_named_as_a_built_in_field(alice_client, world):
    # given a file whose headers name built-in fields of a contact
    _post_file(
        alice_client,
        world.extras["list"].pk,
        b"email,Full Name,unsubscribe_url,Loyalty Points\na@example.com,Ann Lee,x,12\n",
    )
    job = ImportJob.objects.get(original_name="people.csv")

    # when the customer opens the mapping screen
    page = alice_client.get(f"/imports/{job.pk}/").content.decode()

    # then those columns are offered as the fields themselves, never as new attributes
    assert 'value="full_name" selected' in page
    assert "new:text:full_name" not in page
    assert "new:text:unsubscribe_url" not in page
    assert 'value="new:number:loyalty_points" selected' in page


def test_it_refuses_a_built_in_field_as_a_new_attribute_when_checking(alice_client, world):
    # given an upload with a column of full names
    _post_file(alice_client, world.extras["list"].pk, b"email,Who\na@example.com,Ann Lee\n")
    job = ImportJob.objects.get(original_name="people.csv")
    suggested = job.mapping

    # when the customer checks a mapping making it a new attribute named full_name
    data = _mapping_data(job, col_1="new:text:full_name", check="1")
    response = alice_client.post(f"/imports/{job.pk}/", data)

    # then the check refuses it, naming the column, and nothing is declared nor started
    page = response.content.decode()
    assert response.status_code == 400
    assert (
        "Column “Who”: full_name is a built-in field of every contact, not a new attribute. "
        "Import the column as the full name, or ignore it." in page
    )
    assert "all fit this mapping" not in page
    job.refresh_from_db()
    assert (job.status, job.mapping) == (ImportJob.Status.UPLOADED, suggested)
    assert not world.account_a.attributes.filter(name="full_name").exists()

    # and so does starting the import
    del data["check"]
    response = alice_client.post(f"/imports/{job.pk}/", data)
    assert response.status_code == 400
    assert "Column “Who”: full_name is a built-in field" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    assert not world.account_a.attributes.filter(name="full_name").exists()
