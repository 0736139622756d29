"""CSV imports: the file's problems refused up front, each bad row reported, the merge
exact, suppressions and unsubscribes honoured."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import importing, services
from contacts.models import Contact, ImportJob, ImportReject, Subscription


def _upload(world, content: bytes, name: str = "contacts.csv") -> ImportJob:
    return importing.import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile(name, content, content_type="text/csv"),
    )


def _start(world, job: ImportJob) -> None:
    """Queue the job with its suggested mapping (the tests run it themselves)."""
    importing.import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=False,
    )


def _run(world, content: bytes, *, mapping=None, update_existing=False) -> ImportJob:
    job = _upload(world, content)
    importing.import_configure(
        job=job,
        actor=world.alice,
        mapping=mapping or job.mapping,
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=update_existing,
    )
    return importing.run_import(job.pk)


def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_it_imports_a_thousand_rows_and_reports_the_three_bad_ones(world):
    # given a declared date attribute and a file of 1,000 rows, 3 of them bad
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="birthday", type="date"
    )
    rows = [["Email", "First name", "Last name", "birthday"]]
    for n in range(1000):
        rows.append([f"person{n}@example.com", f"First{n}", f"Last{n}", "1990-01-15"])
    rows[101][0] = "not-an-email"  # row 102 of the file
    rows[501][3] = "31/12/1990"  # row 502
    rows[901][0] = ""  # row 902

    # when it is imported with the suggested mapping
    job = _run(world, _csv(rows).encode())

    # then 997 contacts are created and subscribed, and 3 rows are rejected with where and why
    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.subscribed_count, job.invalid_count) == (997, 997, 3)
    rejects = list(job.rejects.values_list("row_number", "column", "reason"))
    assert [r[:2] for r in rejects] == [(102, "Email"), (502, "birthday"), (902, "Email")]
    assert "not a valid email" in rejects[0][2]
    assert "YYYY-MM-DD" in rejects[1][2]
    assert "empty" in rejects[2][2]
    contact = Contact.objects.get(account=world.account_a, email="person7@example.com")
    assert (contact.first_name, contact.attributes) == ("First7", {"birthday": "1990-01-15"})
    subscription = contact.subscriptions.get()
    assert subscription.source == "import"
    assert subscription.consent_text == "Signed up on our website"
    # and the uploaded file is gone
    assert not Path(job.file_path).exists()


def test_it_refuses_a_file_without_an_email_column_and_changes_nothing(world):
    before = Contact.objects.count()

    with pytest.raises(importing.ImportFileError, match="No column holds email addresses"):
        _upload(world, b"name,city\nAnn,Paris\nBob,Lyon\n")

    assert Contact.objects.count() == before
    assert not ImportJob.objects.filter(original_name="contacts.csv").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"PK\x03\x04\x00\x00binary", "not a CSV file"),
        (b"email\n", "no contacts"),
        ("email\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_it_refuses_a_broken_file_with_a_message_saying_what_to_fix(world, content, message):
    with pytest.raises(importing.ImportFileError, match=message):
        _upload(world, content)


def test_it_refuses_a_file_over_the_size_limit(world, settings):
    settings.MISSIVE_IMPORT_MAX_BYTES = 100

    with pytest.raises(importing.ImportFileError, match="limit"):
        _upload(world, b"email\n" + b"a@example.com\n" * 20)


def test_it_never_resubscribes_the_unsubscribed_nor_adds_the_suppressed(world):
    newsletter = world.extras["list"]
    gone = services.contact_create(
        account=world.account_a, actor=world.alice, email="gone@example.com", lists=[newsletter]
    )
    services.contacts_unsubscribe(account=world.account_a, actor=world.alice, contact_ids=[gone.pk])
    services.suppression_add(account=world.account_a, email="blocked@example.com")
    services.suppression_add(account=None, email="nobody@example.com", reason="do_not_contact")

    job = _run(
        world,
        b"email\ngone@example.com\nblocked@example.com\nnobody@example.com\nnew@example.com\n",
    )

    assert gone.subscriptions.get().status == Subscription.Status.UNSUBSCRIBED
    assert not Contact.objects.filter(
        email__in=["blocked@example.com", "nobody@example.com"]
    ).exists()
    assert (job.unsubscribed_count, job.suppressed_count, job.created_count) == (1, 2, 1)


def test_it_keeps_one_row_per_address_and_counts_the_duplicates(world):
    job = _run(
        world, b"email,first name\nA@example.com,First\na@example.com,Second\nb@example.com,B\n"
    )

    assert (job.created_count, job.duplicate_count) == (2, 1)
    assert Contact.objects.get(email="a@example.com").first_name == "First"


def test_it_updates_existing_contacts_only_when_asked(world):
    erin = world.extras["contact"]  # erin@alpha.test, first name Erin, on the list

    kept = _run(world, b"email,first name\nerin@alpha.test,Changed\n")
    erin.refresh_from_db()
    assert erin.first_name == "Erin"
    assert (kept.updated_count, kept.already_subscribed_count) == (0, 1)

    updated = _run(world, b"email,first name\nerin@alpha.test,Changed\n", update_existing=True)
    erin.refresh_from_db()
    assert erin.first_name == "Changed"
    assert updated.updated_count == 1


@pytest.mark.parametrize(
    ("content", "encoding", "delimiter"),
    [
        ("\ufeffemail;prénom\nzoe@example.com;Zoé\n".encode(), "utf-8-sig", ";"),
        ("email;prénom\nzoe@example.com;Zoé\n".encode("cp1252"), "cp1252", ";"),
        ("email\tprénom\nzoe@example.com\tZoé\n".encode(), "utf-8", "\t"),
    ],
)
def test_it_detects_encoding_and_delimiter(world, content, encoding, delimiter):
    job = _upload(world, content)

    assert (job.encoding, job.delimiter) == (encoding, delimiter)
    assert job.mapping == {"0": "email", "1": "first_name"}
    _start(world, job)
    importing.run_import(job.pk)
    assert Contact.objects.get(email="zoe@example.com").first_name == "Zoé"


def test_it_reads_quoted_cells_with_commas_and_line_breaks(world):
    job = _run(world, b'email,first name\n"q@example.com","Mary, ""Q""\nJones"\n')

    assert job.created_count == 1
    assert Contact.objects.get(email="q@example.com").first_name == 'Mary, "Q"\nJones'


def test_it_needs_exactly_one_email_column(world):
    job = _upload(world, b"email,other\na@example.com,b@example.com\n")

    with pytest.raises(Exception, match="exactly one column"):
        importing.import_configure(
            job=job,
            actor=world.alice,
            mapping={"0": "ignore", "1": "ignore"},
            legal_basis="consent",
            consent_text="x",
            update_existing=False,
        )
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED


def test_it_creates_a_new_attribute_from_a_column(world):
    job = _upload(world, b"email,loyalty tier\na@example.com,gold\n")

    importing.import_configure(
        job=job,
        actor=world.alice,
        mapping={"0": "email", "1": "new:loyalty_tier"},
        legal_basis="consent",
        consent_text="x",
        update_existing=False,
    )
    importing.run_import(job.pk)

    assert Contact.objects.get(email="a@example.com").attributes == {"loyalty_tier": "gold"}


def test_it_cancels_before_anything_is_saved(world):
    job = _upload(world, b"email\na@example.com\n")
    _start(world, job)

    importing.import_cancel(job=job, actor=world.alice)
    assert importing.run_import(job.pk) is None  # a cancelled job never starts

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    assert not Contact.objects.filter(email="a@example.com").exists()
    assert not Path(job.file_path).exists()


def test_it_fails_cleanly_on_a_file_whose_encoding_breaks_midway(world):
    good = b"email,first name\n" + b"a@example.com,Ann\n" * 4000
    job = _upload(world, good + b"b@example.com,\xff\xfe\xfa\n")  # sniffed as UTF-8
    _start(world, job)

    job = importing.run_import(job.pk)

    assert job.status == ImportJob.Status.FAILED
    assert "CSV UTF-8" in job.error
    assert not Contact.objects.filter(email="a@example.com").exists()


def test_it_downloads_the_rejects_as_csv(alice_client, world):
    job = _run(world, b"email\nbad\ngood@example.com\n")

    response = alice_client.get(f"/imports/{job.pk}/rejects.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1][:3] == ["2", "email", "bad"]
    assert ImportReject.objects.filter(job=job).count() == 1


def test_it_suggests_new_attributes_typed_by_their_values(world):
    job = _upload(world, b"email,birthday,points,vip,notes\na@example.com,1990-01-15,12,yes,hi\n")

    assert job.mapping == {
        "0": "email",
        "1": "new:date:birthday",
        "2": "new:number:points",
        "3": "new:boolean:vip",
        "4": "new:text:notes",
    }


def test_it_rejects_a_bad_date_in_a_date_column_declared_while_mapping(world):
    job = _run(
        world,
        b"email,birthday\na@example.com,1990-01-15\nb@example.com,15/01/1990\n"
        b"c@example.com,2001-12-01\nd@example.com,1985-06-30\n",
    )

    assert (job.created_count, job.invalid_count) == (3, 1)
    reject = job.rejects.get()
    assert (reject.row_number, reject.column) == (3, "birthday")
    assert Contact.objects.get(email="a@example.com").attributes == {"birthday": "1990-01-15"}


def test_it_sweeps_imports_whose_worker_died_and_uploads_never_mapped(world):
    from datetime import timedelta

    from django.utils import timezone

    dead = _upload(world, b"email\na@example.com\n")
    ImportJob.objects.filter(pk=dead.pk).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now() - timedelta(hours=1)
    )
    forgotten = _upload(world, b"email\nb@example.com\n")
    ImportJob.objects.filter(pk=forgotten.pk).update(created_at=timezone.now() - timedelta(days=2))
    fresh = _upload(world, b"email\nc@example.com\n")

    assert importing.imports_sweep() == {"stale": 1, "abandoned": 1}

    dead.refresh_from_db()
    forgotten.refresh_from_db()
    fresh.refresh_from_db()
    assert dead.status == ImportJob.Status.FAILED
    assert "Upload the file again" in dead.error
    assert forgotten.status == ImportJob.Status.CANCELLED
    assert not Path(forgotten.file_path).exists()
    assert fresh.status == ImportJob.Status.UPLOADED
    assert Path(fresh.file_path).exists()


def test_it_refuses_a_header_of_ten_thousand_columns(world):
    header = ",".join(["email"] + [f"c{n}" for n in range(10_000)])

    with pytest.raises(importing.ImportFileError, match="at most 200"):
        _upload(world, f"{header}\na@example.com\n".encode())


def test_it_rejects_a_row_of_ten_thousand_cells_and_keeps_the_others(world):
    wide = "b@example.com," + ",".join("x" for _ in range(10_000))
    job = _run(world, f"email,first name\na@example.com,Ann\n{wide}\nc@example.com,Cy\n".encode())

    assert (job.created_count, job.invalid_count) == (2, 1)
    reject = job.rejects.get()
    assert (reject.row_number, reject.reason) == (3, "too many cells in this row")


def test_it_fails_cleanly_on_a_stray_quote_that_swallows_the_file(world):
    # an opening quote never closed: the rest of the file becomes one huge cell
    body = b'email,first name\na@example.com,"Ann\n' + b"b@example.com,Bob\n" * 20_000
    job = _upload(world, body)
    _start(world, job)

    job = importing.run_import(job.pk)

    assert job.status == ImportJob.Status.FAILED
    assert "not valid CSV from row 2" in job.error
    assert "never closed" in job.error
    assert not Contact.objects.filter(email="a@example.com").exists()


def test_it_stores_formula_cells_as_text_and_exports_them_defused(alice_client, world):
    job = _run(world, b'email,first name\nf@example.com,"=HYPERLINK(""http://x"")"\n')

    assert job.created_count == 1
    assert Contact.objects.get(email="f@example.com").first_name == '=HYPERLINK("http://x")'
    export = b"".join(alice_client.get("/contacts/export.csv").streaming_content).decode()
    assert '\'=HYPERLINK(""http://x"")' in export
