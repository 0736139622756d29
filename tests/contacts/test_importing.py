"""CSV imports: the file's problems refused up front, each bad row reported, the merge
exact, suppressions and unsubscribes honoured."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction
from psycopg.errors import LockNotAvailable

from contacts import selectors, services
from contacts.importing import jobs, merge
from contacts.importing.attributes import forget_declared, lock_definitions
from contacts.importing.jobs import (
    import_cancel,
    import_configure,
    import_upload,
    imports_sweep,
    run_import,
)
from contacts.importing.mapping import check_email, check_mapping, mapping_problems
from contacts.importing.sniff import ImportFileError, column_notes
from contacts.models import Contact, ImportJob, ImportReject, Subscription


def _upload(world, content: bytes, name: str = "contacts.csv") -> ImportJob:
    return import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile(name, content, content_type="text/csv"),
    )


def _start(world, job: ImportJob) -> None:
    """Queue the job with its suggested mapping (the tests run it themselves)."""
    import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=False,
    )


def _run(world, content: bytes, *, mapping=None, update_existing=False) -> ImportJob:
    job = _upload(world, content)
    import_configure(
        job=job,
        actor=world.alice,
        mapping=mapping or job.mapping,
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=update_existing,
    )
    return run_import(job.pk)


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
    rows[501][3] = "someday"  # row 502
    rows[901][0] = ""  # row 902

    # when it is imported with the suggested mapping
    job = _run(world, _csv(rows).encode())

    # then the two rows without an address are rejected with where and why, and the row
    # with a bad birthday is imported without it, with a warning
    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.subscribed_count, job.invalid_count) == (998, 998, 2)
    assert job.warning_count == 1
    rejects = list(job.rejects.filter(warning=False).values_list("row_number", "column", "reason"))
    assert [r[:2] for r in rejects] == [(102, "Email"), (902, "Email")]
    assert "not a valid email" in rejects[0][2]
    assert "empty" in rejects[1][2]
    warning = job.rejects.get(warning=True)
    assert (warning.row_number, warning.column, warning.value) == (502, "birthday", "someday")
    assert "YYYY-MM-DD" in warning.reason
    assert Contact.objects.get(email="person500@example.com").attributes == {}
    contact = Contact.objects.get(account=world.account_a, email="person7@example.com")
    assert (contact.first_name, contact.attributes) == ("First7", {"birthday": "1990-01-15"})
    subscription = contact.subscriptions.get()
    assert subscription.source == "import"
    assert subscription.consent_text == "Signed up on our website"
    # and the uploaded file is gone
    assert not Path(job.file_path).exists()


def test_it_refuses_a_file_without_an_email_column_and_changes_nothing(world):
    before = Contact.objects.count()

    with pytest.raises(ImportFileError, match="No column holds email addresses"):
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
    with pytest.raises(ImportFileError, match=message):
        _upload(world, content)


def test_it_refuses_a_file_over_the_size_limit(world, settings):
    settings.MISSIVE_IMPORT_MAX_BYTES = 100

    with pytest.raises(ImportFileError, match="limit"):
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
    run_import(job.pk)
    assert Contact.objects.get(email="zoe@example.com").first_name == "Zoé"


def test_it_reads_quoted_cells_with_commas_and_line_breaks(world):
    job = _run(world, b'email,first name\n"q@example.com","Mary, ""Q""\nJones"\n')

    assert job.created_count == 1
    assert Contact.objects.get(email="q@example.com").first_name == 'Mary, "Q"\nJones'


def test_it_needs_exactly_one_email_column(world):
    job = _upload(world, b"email,other\na@example.com,b@example.com\n")

    with pytest.raises(Exception, match="exactly one column"):
        import_configure(
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

    import_configure(
        job=job,
        actor=world.alice,
        mapping={"0": "email", "1": "new:loyalty_tier"},
        legal_basis="consent",
        consent_text="x",
        update_existing=False,
    )
    run_import(job.pk)

    assert Contact.objects.get(email="a@example.com").attributes == {"loyalty_tier": "gold"}


def test_it_cancels_before_anything_is_saved(world):
    job = _upload(world, b"email\na@example.com\n")
    _start(world, job)

    import_cancel(job=job, actor=world.alice)
    assert run_import(job.pk) is None  # a cancelled job never starts

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    assert not Contact.objects.filter(email="a@example.com").exists()
    assert not Path(job.file_path).exists()


def test_it_fails_cleanly_on_a_file_whose_encoding_breaks_midway(world):
    good = b"email,first name\n" + b"a@example.com,Ann\n" * 4000
    job = _upload(world, good + b"b@example.com,\xff\xfe\xfa\n")  # sniffed as UTF-8
    _start(world, job)

    job = run_import(job.pk)

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


def test_it_drops_a_bad_date_in_a_date_column_declared_while_mapping(world):
    job = _run(
        world,
        b"email,birthday\na@example.com,1990-01-15\nb@example.com,the 15th\n"
        b"c@example.com,2001-12-01\nd@example.com,1985-06-30\n",
    )

    # the row is imported without its birthday, with a warning saying where
    assert (job.created_count, job.invalid_count, job.warning_count) == (4, 0, 1)
    warning = job.rejects.get(warning=True)
    assert (warning.row_number, warning.column) == (3, "birthday")
    assert Contact.objects.get(email="a@example.com").attributes == {"birthday": "1990-01-15"}
    assert Contact.objects.get(email="b@example.com").attributes == {}


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

    assert imports_sweep() == {"stale": 1, "abandoned": 1}

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

    with pytest.raises(ImportFileError, match="at most 200"):
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

    job = run_import(job.pk)

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


def test_it_takes_addresses_as_check_email_does(world):
    long_local = "l" * 64
    job = _run(
        world,
        (
            "email\n"
            "  Mixed.Case@Example.COM \n"
            "user@exämple.com\n"
            f"{long_local}@example.com\n"
            f"{long_local}x@example.com\n"
            f"a@{'d' * 62}.{'e' * 62}.{'f' * 62}.{'g' * 62}.com\n"  # 257 characters
            "two@@example.com\n"
        ).encode(),
    )

    stored = set(
        Contact.objects.filter(account=world.account_a)
        .exclude(email="erin@alpha.test")
        .values_list("email", flat=True)
    )
    assert stored == {
        "mixed.case@example.com",
        "user@xn--exmple-cua.com",
        f"{long_local}@example.com",
    }
    assert [r.row_number for r in job.rejects.all()] == [5, 6, 7]
    for reject in job.rejects.all():
        assert reject.reason == check_email(reject.value)[1][:255]


def test_it_stores_attributes_of_every_type_as_they_were_declared(world):
    for name, kind in (("points", "number"), ("vip", "boolean"), ("birthday", "date")):
        services.attribute_define(account=world.account_a, actor=world.alice, name=name, type=kind)
    rows = [
        ["email", "city", "points", "vip", "birthday"],
        ["a@example.com", 'Saint-"Quoted"\\ \tÉtienne', "12", "yes", "1990-01-15"],
        ["b@example.com", "", "1,5", "no", ""],
        ["c@example.com", "Lyon", "1e3", "", "2001-12-01"],
    ]

    job = _run(world, _csv(rows).encode())

    assert (job.created_count, job.invalid_count) == (3, 0)
    attributes = dict(
        Contact.objects.filter(account=world.account_a, email__endswith="@example.com").values_list(
            "email", "attributes"
        )
    )
    assert attributes == {
        "a@example.com": {
            "city": 'Saint-"Quoted"\\ \tÉtienne',
            "points": 12,
            "vip": True,
            "birthday": "1990-01-15",
        },
        "b@example.com": {"points": 1.5, "vip": False},
        "c@example.com": {"city": "Lyon", "points": 1000, "birthday": "2001-12-01"},
    }


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_it_drops_a_number_json_cannot_hold_and_imports_the_rest(world, value):
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="number"
    )

    job = _run(world, f"email,points\na@example.com,{value}\nb@example.com,7\n".encode())

    assert (job.status, job.created_count, job.invalid_count) == (ImportJob.Status.DONE, 2, 0)
    assert Contact.objects.get(email="a@example.com").attributes == {}
    reject = job.rejects.get(warning=True)
    assert (reject.row_number, reject.column, reject.reason) == (
        2,
        "points",
        f"{value!r} is not a number.",
    )


def test_it_reports_the_address_of_a_row_with_two_problems(world):
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="birthday", type="date"
    )

    job = _run(world, b"email,birthday\nnot-an-email,31/12/1990\n")

    assert job.rejects.get().column == "email"


def test_it_imports_into_an_account_without_contacts(world):
    newsletter = services.list_create(account=world.account_b, actor=world.charlie, name="News")
    job = import_upload(
        account=world.account_b,
        actor=world.charlie,
        contact_list=newsletter,
        upload=SimpleUploadedFile(
            "c.csv", b"email,first name\nann@example.com,Ann\nANN@example.com,Again\n"
        ),
    )
    import_configure(
        job=job,
        actor=world.charlie,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up",
        update_existing=False,
    )

    job = run_import(job.pk)

    assert (job.created_count, job.subscribed_count, job.duplicate_count) == (1, 1, 1)
    ann = Contact.objects.get(account=world.account_b)
    assert (ann.email, ann.first_name) == ("ann@example.com", "Ann")
    assert ann.subscriptions.get().contact_list == newsletter


@pytest.mark.parametrize("update_existing", [False, True])
def test_it_takes_an_address_added_meanwhile_as_a_contact_already_stored(
    world, monkeypatch, update_existing
):
    # erin@alpha.test is stored and on the list; the first lookup misses her, as it
    # would miss a contact added by someone else between the lookup and the insert
    monkeypatch.setattr(merge, "_has_contacts", lambda cursor, params: False)

    job = _run(
        world,
        b"email,first name\nerin@alpha.test,Changed\nnew@example.com,New\n",
        update_existing=update_existing,
    )

    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.already_subscribed_count) == (1, 1)
    assert job.updated_count == int(update_existing)
    erin = world.extras["contact"]
    erin.refresh_from_db()
    assert erin.first_name == ("Changed" if update_existing else "Erin")
    assert erin.subscriptions.count() == 1
    assert Contact.objects.get(email="new@example.com").subscriptions.count() == 1


def _import_people(world) -> ImportJob:
    services.contact_create(
        account=world.account_a, actor=world.alice, email="known@example.com", lists=[]
    )
    return _run(
        world,
        b"email,first name\nknown@example.com,K\nerin@alpha.test,E\n"
        b"p1@example.com,P1\np2@example.com,P2\np1@example.com,Dup\nbad\n",
    )


def _outcome(job: ImportJob) -> tuple:
    people = Contact.objects.filter(account=job.account).order_by("email")
    return (
        job.status,
        job.created_count,
        job.subscribed_count,
        job.already_subscribed_count,
        job.duplicate_count,
        job.invalid_count,
        [
            (c.email, c.first_name, sorted(c.subscriptions.values_list("status", flat=True)))
            for c in people
        ],
    )


def test_it_imports_the_same_with_the_row_by_row_checks(world, monkeypatch):
    # (the database role of the tests may skip them; one in production may not)
    fast = _outcome(_import_people(world))
    Contact.objects.filter(account=world.account_a).exclude(email="erin@alpha.test").delete()
    monkeypatch.setattr(merge, "_skip_row_checks", lambda cursor, params: False)

    slow = _outcome(_import_people(world))

    assert slow == fast
    assert fast[:6] == (ImportJob.Status.DONE, 2, 3, 1, 1, 1)


def test_it_lets_the_tables_own_triggers_run(world):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_shout() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.first_name := upper(NEW.first_name); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_shout BEFORE INSERT ON contacts_contact "
            "FOR EACH ROW EXECUTE FUNCTION test_shout()"
        )

    _run(world, b"email,first name\nann@example.com,Ann\n")

    assert Contact.objects.get(email="ann@example.com").first_name == "ANN"


def test_it_leaves_the_row_by_row_checks_on_after_the_import(world):
    from django.db import connection

    _run(world, b"email\nann@example.com\n")

    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


def test_it_stops_when_the_list_is_gone_before_the_checks_are_skipped(world):
    from django.db import connection

    params = {"account": world.account_a.pk, "list": 0}
    with connection.cursor() as wrapper:
        with pytest.raises(ImportFileError, match="deleted during the import"):
            merge._skip_row_checks(wrapper.cursor, params)
        wrapper.execute("SHOW session_replication_role")
        assert wrapper.fetchone()[0] == "origin"


def test_it_imports_as_a_role_that_may_not_skip_the_checks(world):
    # what a database role of a managed PostgreSQL would see: the switch is refused
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE test_import_limited")  # rolled back with the test
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO test_import_limited")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO test_import_limited")
        cursor.execute("SET ROLE test_import_limited")
        assert merge._skip_row_checks(cursor.cursor, {"account": 0, "list": 0}) is False

    job = _run(world, b"email,first name\nann@example.com,Ann\nerin@alpha.test,E\n")

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user <> session_user")
        assert cursor.fetchone()[0]  # still the limited role
        cursor.execute("RESET ROLE")
    assert (job.status, job.created_count, job.subscribed_count, job.already_subscribed_count) == (
        ImportJob.Status.DONE,
        1,
        1,
        1,
    )


def test_it_keeps_a_subscription_added_meanwhile_to_a_contact_already_stored(world):
    # the conflict a form or the API would cause during the import, made here by the
    # same contact twice in the rows being subscribed
    from django.db import connection, transaction
    from django.utils import timezone

    known = services.contact_create(
        account=world.account_a, actor=world.alice, email="known@example.com", lists=[]
    )
    newsletter = world.extras["list"]
    params = {
        **merge.SUBSCRIPTION_VALUES,
        "list": newsletter.pk,
        "now": timezone.now(),
        "legal_basis": "consent",
        "consent_text": "Signed up",
    }
    with transaction.atomic(), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute(
            "CREATE TEMPORARY TABLE import_rows (contact_id bigint NOT NULL, "
            "consent_at timestamptz, consent_ip inet, confirmed_at timestamptz) ON COMMIT DROP"
        )
        cursor.execute(
            "INSERT INTO import_rows (contact_id) VALUES (%s), (%s)", [known.pk, known.pk]
        )

        assert merge._subscribe_known(cursor, params) == 1
        cursor.execute("DROP TABLE import_rows")

    assert known.subscriptions.get().contact_list == newsletter


def test_it_keeps_the_row_by_row_checks_of_a_foreign_key_it_does_not_know(world):
    from django.db import connection

    with connection.cursor() as wrapper:
        params = {"account": world.account_a.pk, "list": world.extras["list"].pk}
        assert merge._skip_row_checks(wrapper.cursor, params) is True
        wrapper.execute("SET LOCAL session_replication_role = DEFAULT")
        wrapper.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (the world's checks, pending)
        wrapper.execute(
            "ALTER TABLE contacts_contact ADD COLUMN test_owner_id bigint "
            "REFERENCES accounts_user (id) DEFERRABLE INITIALLY DEFERRED"
        )  # rolled back with the test

        assert merge._skip_row_checks(wrapper.cursor, params) is False


# --- Exports of other tools, dates as they write them, warnings, failures that leave nothing

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(world, name: str) -> ImportJob:
    return _upload(world, (FIXTURES / name).read_bytes(), name=name)


def test_it_recognizes_a_mailchimp_export_and_keeps_its_opt_in_as_consent_proof(world):
    # given Mailchimp's export of an audience, in its own column layout
    job = _fixture(world, "mailchimp_subscribed.csv")
    columns = dict(zip(job.columns, job.mapping.values(), strict=True))

    # then its bookkeeping columns are ignored, its tags are tags, its opt-in time and IP
    # and the time the opt-in was confirmed become the consent proof
    assert columns["Email Address"] == "email"
    assert (columns["First Name"], columns["Last Name"]) == ("first_name", "last_name")
    assert (columns["OPTIN_TIME"], columns["OPTIN_IP"]) == ("consent_at", "consent_ip")
    assert columns["CONFIRM_TIME"] == "confirmed_at"
    for internal in (
        "MEMBER_RATING",
        "LEID",
        "EUID",
        "GMTOFF",
        "DSTOFF",
        "LATITUDE",
        "LONGITUDE",
        "CC",
        "REGION",
        "LAST_CHANGED",
        "CONFIRM_IP",
    ):
        assert columns[internal] == "ignore", internal
    assert columns["TAGS"] == "tags"
    notes = column_notes(job.columns)
    assert "Imported as tags" in notes[str(job.columns.index("TAGS"))]
    assert "when they confirmed" in notes[str(job.columns.index("CONFIRM_TIME"))]

    # when it is imported as suggested
    _start(world, job)
    job = run_import(job.pk)

    # then everyone is in, each subscription with their own opt-in time and IP, and the
    # time they confirmed it
    assert (job.status, job.created_count, job.invalid_count) == ("done", 3, 0)
    assert job.warning_count == 0
    ann = Contact.objects.get(account=world.account_a, email="ann.lee@example.com")
    assert (ann.first_name, ann.last_name) == ("Ann", "Lee")
    assert "leid" not in ann.attributes
    assert "member_rating" not in ann.attributes
    assert "confirm_time" not in ann.attributes
    subscription = ann.subscriptions.get()
    assert subscription.consent_at.isoformat() == "2021-03-02T10:22:33+00:00"
    assert subscription.consent_ip == "203.0.113.7"
    assert subscription.confirmed_at.isoformat() == "2021-03-02T10:23:01+00:00"
    assert selectors.tag_names_of(ann) == ["Customer", "VIP"]
    chen = Contact.objects.get(account=world.account_a, email="chen.wei@example.net")
    assert chen.subscriptions.get().consent_ip is None
    assert chen.subscriptions.get().confirmed_at.isoformat() == "2020-06-01T07:00:00+00:00"


def test_it_imports_mailchimps_optin_time_into_a_new_date_attribute(world):
    # given the export with OPTIN_TIME mapped to a new date attribute, as a customer would
    job = _fixture(world, "mailchimp_subscribed.csv")
    mapping = {**job.mapping, str(job.columns.index("OPTIN_TIME")): "new:date:optin_time"}

    job = _run_mapped(world, job, mapping)

    # then no row is rejected: the date-times are dates
    assert (job.created_count, job.invalid_count, job.warning_count) == (3, 0, 0)
    bruno = Contact.objects.get(account=world.account_a, email="bruno.silva@example.org")
    assert bruno.attributes["optin_time"] == "2022-11-20"


def test_it_recognizes_a_brevo_export_with_its_day_first_dates(world):
    # given Brevo's export: semicolons, DD-MM-YYYY dates, and a declared date attribute
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="birthday", type="date"
    )
    job = _fixture(world, "brevo_contacts.csv")
    columns = dict(zip(job.columns, job.mapping.values(), strict=True))
    assert job.delimiter == ";"
    assert (columns["EMAIL"], columns["FIRSTNAME"], columns["LASTNAME"]) == (
        "email",
        "first_name",
        "last_name",
    )
    assert columns["ADDED_TIME"] == "consent_at"
    assert columns["BIRTHDAY"] == "attribute:birthday"
    for internal in ("CONTACT ID", "MODIFIED_TIME", "EMAIL_BLACKLISTED", "DOUBLE_OPT-IN"):
        assert columns[internal] == "ignore", internal

    # when it is imported
    _start(world, job)
    job = run_import(job.pk)

    # then the dates are read day first, and the time it was added is the consent time
    assert (job.created_count, job.invalid_count, job.warning_count) == (3, 0, 0)
    marie = Contact.objects.get(account=world.account_a, email="marie.dupont@example.fr")
    assert marie.attributes["birthday"] == "1988-07-23"
    assert marie.subscriptions.get().consent_at.isoformat() == "2024-01-15T09:30:00+00:00"


def test_it_recognizes_a_listmonk_export_and_splits_its_name(world):
    job = _fixture(world, "listmonk_subscribers.csv")
    columns = dict(zip(job.columns, job.mapping.values(), strict=True))
    assert columns == {
        "uuid": "ignore",
        "email": "email",
        "name": "full_name",
        "attributes": "ignore",
        "status": "ignore",
        "created_at": "consent_at",
        "updated_at": "ignore",
    }

    _start(world, job)
    job = run_import(job.pk)

    assert (job.created_count, job.invalid_count, job.warning_count) == (3, 0, 0)
    maria = Contact.objects.get(account=world.account_a, email="maria.garcia.lopez@example.es")
    assert (maria.first_name, maria.last_name, maria.attributes) == ("María", "García López", {})
    tom = Contact.objects.get(account=world.account_a, email="tom@example.com")
    assert (tom.first_name, tom.last_name) == ("Tom", "")
    consent = maria.subscriptions.get().consent_at
    assert consent.isoformat() == "2022-03-09T11:11:11.000001+00:00"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2024-03-01", "2024-03-01"),
        ("2024-03-01 10:22:33", "2024-03-01"),
        ("2024-03-01T10:22:33Z", "2024-03-01"),
        ("2024-03-01T10:22:33+02:00", "2024-03-01"),
        ("2024-01-15 09:30:00.123456+00", "2024-01-15"),
        ("01-03-2024", "2024-03-01"),
        ("01.03.2024", "2024-03-01"),
        ("31/12/1990", "1990-12-31"),
        ("12/31/1990", "1990-12-31"),
    ],
)
def test_it_reads_dates_as_spreadsheets_and_exports_write_them(world, value, stored):
    services.attribute_define(account=world.account_a, actor=world.alice, name="day", type="date")

    job = _run(world, f"email,day\na@example.com,{value}\n".encode())

    assert (job.invalid_count, job.warning_count) == (0, 0)
    assert Contact.objects.get(email="a@example.com").attributes == {"day": stored}


def test_it_reads_a_column_of_month_first_dates_month_first(world):
    # given American dates, where only one of them cannot be day first
    services.attribute_define(account=world.account_a, actor=world.alice, name="day", type="date")

    job = _run(world, b"email,day\na@example.com,03/04/2024\nb@example.com,12/25/2023\n")

    # then the ambiguous one is read as the column's others are
    assert job.warning_count == 0
    assert Contact.objects.get(email="a@example.com").attributes == {"day": "2024-03-04"}
    assert Contact.objects.get(email="b@example.com").attributes == {"day": "2023-12-25"}


def test_it_says_what_the_mapping_will_do_to_the_sample_rows(world):
    # given a file whose OPTIN_TIME holds something else than dates in 12 of 20 rows
    rows = [["email", "OPTIN_TIME"]]
    for n in range(20):
        rows.append([f"p{n}@example.com", "x" if n < 12 else "2024-03-01 10:22:33"])
    rows[5][0] = "nobody"
    job = _upload(world, _csv(rows).encode())

    # when the mapping puts it in a new date attribute
    problems = mapping_problems(job, {"0": "email", "1": "new:date:optin_time"})

    # then each failing column is named with its count, an example and the outcome
    assert problems == [
        "1 of 20 sample rows have no valid email address in column email, e.g. 'nobody': "
        "those rows will be rejected.",
        "12 of 20 sample rows have a value that is not a date in column OPTIN_TIME, e.g. "
        "'x': those values will be left out (the rows are imported).",
    ]
    assert mapping_problems(job, {"0": "email", "1": "new:text:optin_time"}) == [problems[0]]


def _run_mapped(world, job: ImportJob, mapping: dict[str, str]) -> ImportJob:
    import_configure(
        job=job,
        actor=world.alice,
        mapping=mapping,
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=False,
    )
    return run_import(job.pk)


def test_it_keeps_nothing_of_an_import_that_rejects_every_row(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    # given a file mapped wrongly: the names taken as the email, a new attribute declared
    job = _upload(world, b"name,email,plan\nAnn,ann@example.com,gold\nBob,bob@example.com,pro\n")

    job = _run_mapped(world, job, {"0": "email", "1": "ignore", "2": "new:text:plan"})

    # then it says so plainly, no contact and no attribute is left
    assert job.status == ImportJob.Status.FAILED
    assert job.error.startswith("Every row was rejected (2)")
    assert job.invalid_count == 2
    assert not Contact.objects.filter(email__in=["ann@example.com", "bob@example.com"]).exists()
    assert not world.account_a.attributes.filter(name="plan").exists()
    # and the same file waits as a new upload, mapped as before, for a better mapping
    retry = job.retries.get()
    assert retry.status == ImportJob.Status.UPLOADED
    assert retry.mapping == {"0": "email", "1": "ignore", "2": "new:text:plan"}
    assert Path(retry.file_path).exists()

    # when the mapping is fixed
    retried = _run_mapped(world, retry, {"0": "first_name", "1": "email", "2": "new:text:plan"})

    # then the import goes through
    assert (retried.status, retried.created_count) == (ImportJob.Status.DONE, 2)
    assert Contact.objects.get(email="ann@example.com").attributes == {"plan": "gold"}
    assert not Path(retried.file_path).exists()


def test_it_removes_the_attributes_declared_for_a_cancelled_import(world):
    job = _upload(world, b"email,plan\na@example.com,gold\n")
    import_configure(
        job=job,
        actor=world.alice,
        mapping={"0": "email", "1": "new:text:plan"},
        legal_basis="consent",
        consent_text="x",
        update_existing=False,
    )
    assert world.account_a.attributes.filter(name="plan").exists()

    import_cancel(job=job, actor=world.alice)

    assert not world.account_a.attributes.filter(name="plan").exists()


def test_it_removes_the_attributes_declared_for_a_failed_import(world):
    good = b"email,plan\n" + b"a@example.com,gold\n" * 4000
    job = _upload(world, good + b"b@example.com,\xff\xfe\n")

    job = _run_mapped(world, job, {"0": "email", "1": "new:text:plan"})

    assert job.status == ImportJob.Status.FAILED
    assert not world.account_a.attributes.filter(name="plan").exists()


def test_it_rejects_the_row_with_a_nul_byte_not_the_file(world):
    # given a file with one NUL byte in a cell
    content = b"email,first name\na@example.com,Ann\nb@example.com,B\x00b\nc@example.com,Cy\n"

    job = _run(world, content)

    # then that row is rejected, by row and column, and the others are imported
    assert (job.status, job.created_count, job.invalid_count) == ("done", 2, 1)
    reject = job.rejects.get()
    assert (reject.row_number, reject.column) == (3, "first name")
    assert "NUL" in reject.reason


def test_it_names_a_field_too_long_instead_of_failing_the_file(world):
    # given a 2 MB value in a text attribute
    services.attribute_define(account=world.account_a, actor=world.alice, name="notes", type="text")
    huge = "x" * 2_097_152
    content = f"email,notes\na@example.com,short\nb@example.com,{huge}\n".encode()

    job = _run(world, content)

    # then the row is imported without it, and the warning names row, column and length
    assert (job.status, job.created_count, job.invalid_count) == ("done", 2, 0)
    warning = job.rejects.get(warning=True)
    assert (warning.row_number, warning.column) == (3, "notes")
    assert warning.reason == "field too long (2,097,152 characters; the limit is 131,072)"
    assert Contact.objects.get(email="b@example.com").attributes == {}


def test_it_downloads_the_values_it_left_out(alice_client, world):
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="number"
    )
    job = _run(world, b"email,points\na@example.com,many\n")

    response = alice_client.get(f"/imports/{job.pk}/warnings.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["row", "column", "value", "reason"],
        ["2", "points", "many", "'many' is not a number."],
    ]
    assert alice_client.get(f"/imports/{job.pk}/rejects.csv").status_code == 200


# --- The attributes an import declared, after it fails: what the retry maps to ------------


def test_it_maps_the_retry_to_the_attributes_that_still_exist_after_a_failure(
    world, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    # given an import declaring two attributes, with its email mapped to the names
    job = _upload(world, b"name,email,plan,tier\nAnn,ann@example.com,gold,1\n")
    import_configure(
        job=job,
        actor=world.alice,
        mapping={"0": "email", "1": "ignore", "2": "new:text:plan", "3": "new:number:tier"},
        legal_basis="consent",
        consent_text="Signed up on our website",
        update_existing=False,
    )
    # and, before it runs, a value of one of them set on a contact by hand
    services.contact_update(
        contact=world.extras["contact"], actor=world.alice, attributes={"plan": "silver"}
    )

    # when it runs and rejects every row
    job = run_import(job.pk)

    # then the attribute in use is kept and the other removed, and the retry maps the
    # columns to what exists: the kept one as it is, the removed one to declare again
    assert job.status == ImportJob.Status.FAILED
    assert set(world.account_a.attributes.values_list("name", flat=True)) == {"city", "plan"}
    retry = job.retries.get()
    assert retry.mapping == {
        "0": "email",
        "1": "ignore",
        "2": "attribute:plan",
        "3": "new:number:tier",
    }

    # and once its email column is fixed, the retry goes through with that mapping
    retried = _run_mapped(world, retry, {**retry.mapping, "0": "first_name", "1": "email"})
    assert (retried.status, retried.created_count) == (ImportJob.Status.DONE, 1)
    ann = Contact.objects.get(account=world.account_a, email="ann@example.com")
    assert ann.attributes == {"plan": "gold", "tier": 1}


def test_it_keeps_an_attribute_another_unfinished_import_maps_to(world):
    # given an import that declared "plan", and a second one mapping a column to it
    first = _upload(world, b"email,plan\na@example.com,gold\n")
    _start(world, first)
    assert first.declared_attributes == ["plan"]
    second = _upload(world, b"email,plan\nb@example.com,pro\n")
    assert second.mapping == {"0": "email", "1": "attribute:plan"}
    _start(world, second)

    # when the first is cancelled
    import_cancel(job=first, actor=world.alice)

    # then "plan" stays, and the second import runs with it
    assert world.account_a.attributes.filter(name="plan").exists()
    second = run_import(second.pk)
    assert (second.status, second.created_count) == (ImportJob.Status.DONE, 1)
    assert Contact.objects.get(email="b@example.com").attributes == {"plan": "pro"}


def test_it_keeps_an_attribute_an_upload_waiting_for_its_mapping_maps_to(world):
    # given an import that declared "plan", and a file since uploaded with a plan column
    first = _upload(world, b"email,plan\na@example.com,gold\n")
    _start(world, first)
    waiting = _upload(world, b"email,plan\nb@example.com,pro\n")

    # when the first fails
    ImportJob.objects.filter(pk=first.pk).update(status=ImportJob.Status.FAILED)
    first.refresh_from_db()
    forget_declared(first)

    # then "plan" stays while the upload waits, and goes once that is cancelled too
    assert world.account_a.attributes.filter(name="plan").exists()
    import_cancel(job=waiting, actor=world.alice)
    forget_declared(first)
    assert not world.account_a.attributes.filter(name="plan").exists()


def test_it_removes_an_attribute_only_another_accounts_import_maps_to(world):
    # given an import of account A that declared "plan", and one of account B mapping
    # a column to its own "plan"
    first = _upload(world, b"email,plan\na@example.com,gold\n")
    _start(world, first)
    services.attribute_define(
        account=world.account_b, actor=world.charlie, name="plan", type="text"
    )
    other = import_upload(
        account=world.account_b,
        actor=world.charlie,
        contact_list=services.list_create(
            account=world.account_b, actor=world.charlie, name="Bravo news"
        ),
        upload=SimpleUploadedFile("b.csv", b"email,plan\nb@example.com,pro\n"),
    )
    assert other.mapping["1"] == "attribute:plan"

    # when the first is cancelled
    import_cancel(job=first, actor=world.alice)

    # then A's "plan" goes, B's stays
    assert not world.account_a.attributes.filter(name="plan").exists()
    assert world.account_b.attributes.filter(name="plan").exists()


def _in_another_transaction(sql: str, params: list) -> Exception | None:
    """Run ``sql`` in a transaction of another connection, as a concurrent request would;
    the database error it raised, if any."""
    outcome: dict[str, Exception] = {}

    def run() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
        except OperationalError as error:
            outcome["error"] = error.__cause__
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome.get("error")


# The row locks a rename (an UPDATE) and a deletion take, and a reader's, without waiting.
LOCKS = {
    "NO KEY UPDATE": "SELECT 1 FROM contacts_attributedefinition WHERE id = %s "
    "FOR NO KEY UPDATE NOWAIT",
    "UPDATE": "SELECT 1 FROM contacts_attributedefinition WHERE id = %s FOR UPDATE NOWAIT",
}
SHARE = "SELECT 1 FROM contacts_attributedefinition WHERE id = %s FOR SHARE NOWAIT"


def test_it_holds_the_attributes_it_maps_to_while_it_merges(transactional_db, world, monkeypatch):
    # given an import mapping a column to a declared attribute
    plan = services.attribute_define(
        account=world.account_a, actor=world.alice, name="plan", type="text"
    )
    job = _upload(world, b"email,plan\na@example.com,gold\n")
    _start(world, job)
    assert job.mapping["1"] == "attribute:plan"
    city = world.extras["attribute"]
    tried: dict[str, Exception | None] = {}
    merge_rows = jobs.merge_rows

    def merging(job, cursor):
        # when, while it merges, another transaction would rename or delete attributes
        for name, definition in (("plan", plan), ("city", city)):
            for lock, statement in LOCKS.items():
                tried[f"{name} {lock}"] = _in_another_transaction(statement, [definition.pk])
        tried["plan SHARE"] = _in_another_transaction(SHARE, [plan.pk])
        return merge_rows(job, cursor)

    monkeypatch.setattr(jobs, "merge_rows", merging)
    job = run_import(job.pk)

    # then the one it maps to would wait for it (a rename takes the first lock, a
    # deletion the second), another would not, and reading it is not held up
    assert job.status == ImportJob.Status.DONE
    assert isinstance(tried["plan NO KEY UPDATE"], LockNotAvailable)
    assert isinstance(tried["plan UPDATE"], LockNotAvailable)
    assert tried["city NO KEY UPDATE"] is None
    assert tried["city UPDATE"] is None
    assert tried["plan SHARE"] is None


def test_it_keeps_an_attribute_an_import_being_configured_holds(transactional_db, world):
    # given an import that declared "plan" and failed
    first = _upload(world, b"email,plan\na@example.com,gold\n")
    _start(world, first)
    ImportJob.objects.filter(pk=first.pk).update(status=ImportJob.Status.FAILED)
    first.refresh_from_db()
    # and another import holding "plan" as it is configured, not yet saved
    locked, release = threading.Event(), threading.Event()

    def configuring() -> None:
        try:
            with transaction.atomic():
                lock_definitions(world.account_a.pk, ["plan"])
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=configuring)
    thread.start()
    try:
        assert locked.wait(60)

        # when the first import's attributes are forgotten meanwhile
        forget_declared(first)

        # then "plan" is kept, without waiting
        assert world.account_a.attributes.filter(name="plan").exists()
    finally:
        release.set()
        thread.join()

    # and once nothing holds it, it goes
    forget_declared(first)
    assert not world.account_a.attributes.filter(name="plan").exists()


# --- Built-in fields are imported into the contact, never declared as attributes -----------


def test_it_never_suggests_a_new_attribute_named_as_a_built_in_field(world):
    # given a file whose headers name built-in fields, twice for the email
    job = _upload(
        world, b"email,Full Name,unsubscribe_url,Email,City\na@example.com,Ann Lee,x,b,P\n"
    )

    # then each is the field itself or ignored, never a new attribute
    assert job.mapping == {
        "0": "email",
        "1": "full_name",
        "2": "ignore",
        "3": "ignore",
        "4": "attribute:city",
    }

    # and with first and last name columns, a full name column is not a second name
    job = _upload(world, b"email,First Name,Last Name,Full Name\na@example.com,Ann,Lee,Ann Lee\n")
    assert job.mapping == {"0": "email", "1": "first_name", "2": "last_name", "3": "ignore"}


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("full_name", "Import the column as the full name, or ignore it."),
        ("first_name", "Import the column as the first name, or ignore it."),
        ("email", "Import the column as the email address, or ignore it."),
        ("attributes", "Import the column as an attribute of another name, or ignore it."),
    ],
)
def test_it_refuses_a_new_attribute_named_as_a_built_in_field(world, name, instead):
    # given a file, and a mapping declaring a new attribute named as a built-in field
    job = _upload(world, b"email,Who,plan\na@example.com,Ann Lee,gold\n")
    mapping = {"0": "email", "1": f"new:text:{name}", "2": "new:text:plan"}

    # when it is checked, or the import started
    with pytest.raises(ValidationError) as checked:
        check_mapping(job, mapping)
    with pytest.raises(ValidationError) as started:
        import_configure(
            job=job,
            actor=world.alice,
            mapping=mapping,
            legal_basis="consent",
            consent_text="Signed up on our website",
            update_existing=False,
        )

    # then both refuse it, naming the column, and nothing is declared nor queued
    message = (
        f"Column “Who”: {name} is a built-in field of every contact, not a new attribute. "
        + instead
    )
    assert checked.value.message_dict == {"mapping": [message]}
    assert started.value.message_dict == {"mapping": [message]}
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    assert list(world.account_a.attributes.values_list("name", flat=True)) == ["city"]


# --- Mailchimp's confirmation time ------------------------------------------------------------


def test_it_keeps_mailchimps_confirm_time_for_new_and_stored_contacts(world):
    # given Mailchimp's export, where one person is a contact already (on no list) and
    # another's CONFIRM_TIME is not a time
    known = services.contact_create(
        account=world.account_a, actor=world.alice, email="bruno.silva@example.org", lists=[]
    )
    content = (FIXTURES / "mailchimp_subscribed.csv").read_text()
    content = content.replace(
        '"2020-06-01 07:00:00",,"2020-06-01 07:00:00"', '"2020-06-01 07:00:00",,"soon"'
    )
    job = _upload(world, content.encode(), name="mailchimp.csv")

    # then the check of the mapping says so before the import
    confirm = job.columns.index("CONFIRM_TIME")
    assert job.mapping[str(confirm)] == "confirmed_at"
    assert mapping_problems(job, job.mapping) == [
        "1 of 3 sample rows have a value that is not a date and time in column "
        "CONFIRM_TIME, e.g. 'soon': those values will be left out (the rows are imported)."
    ]

    # when it is imported as suggested
    _start(world, job)
    job = run_import(job.pk)

    # then the contact already stored is subscribed with its confirmation time too
    assert (job.status, job.created_count, job.subscribed_count) == ("done", 2, 3)
    bruno = known.subscriptions.get()
    assert bruno.confirmed_at.isoformat() == "2022-11-20T18:06:12+00:00"
    assert bruno.consent_at.isoformat() == "2022-11-20T18:05:00+00:00"
    # and the one that is not a time is left out with a warning: the import's time is kept
    warning = job.rejects.get(warning=True)
    assert (warning.row_number, warning.column, warning.value) == (4, "CONFIRM_TIME", "soon")
    chen = Subscription.objects.get(contact__email="chen.wei@example.net")
    assert chen.confirmed_at == chen.created_at
    assert chen.consent_at.isoformat() == "2020-06-01T07:00:00+00:00"
