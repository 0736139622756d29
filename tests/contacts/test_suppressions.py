"""The account's suppression list: the page, adding, importing, checking, removing,
exporting; and the operators' platform-wide list in the admin."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditEntry, User
from contacts import selectors, suppressing
from contacts.models import Suppression, email_sha256

R = Suppression.Reason


def _hashes(account) -> set[str]:
    return set(Suppression.objects.for_account(account).values_list("email_sha256", flat=True))


def _upload(name: str, text: str, encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


@pytest.fixture
def staff_client(db) -> Client:
    operator = User.objects.create_superuser(email="ops@missive.test", password="Corr3ct-horse!")
    client = Client()
    client.force_login(operator, backend="allauth.account.auth_backends.AuthenticationBackend")
    return client


def test_it_lists_entries_by_hash_with_reason_and_author(alice_client, world):
    # given the account's suppression of blocked@alpha.test, added by alice
    digest = world.extras["suppression"].email_sha256

    # when alice opens the page
    response = alice_client.get("/suppressions/")

    # then the entry shows by its hash prefix, reason and author, and the address nowhere
    body = response.content.decode()
    assert response.status_code == 200
    assert f"{digest[:6]}…" in body
    assert "Added by hand" in body
    assert "Alice Alpha" in body
    assert "blocked@alpha.test" not in body


def test_it_shows_an_empty_state_to_an_account_without_entries(charlie_client):
    response = charlie_client.get("/suppressions/")

    assert response.status_code == 200
    assert "No suppressed address yet" in response.content.decode()


def test_it_does_not_call_a_list_unsubscribe_a_suppression_in_the_empty_state(charlie_client):
    # Given an account without entries
    # When its owner opens the suppression list
    page = charlie_client.get("/suppressions/").content.decode()

    # Then the empty state names what really lands there: leaving one list does not
    assert "Unsubscribes, hard bounces" not in page
    assert "stop all email" in page
    assert "one list" in page


def test_it_pages_newest_first_by_keyset(alice_client, world):
    # given 105 entries: the world's one, then 104 added in one go
    suppressing.suppressions_add_many(
        account=world.account_a,
        emails=[(n, f"p{n:03d}@example.com") for n in range(1, 105)],
        reason=R.MANUAL,
        actor=world.alice,
    )

    # when alice reads the first page, then follows its link to the next
    first = alice_client.get("/suppressions/").context["page"]
    second = alice_client.get("/suppressions/", {"after": first.next_cursor}).context["page"]

    # then 100 come first, the oldest (the world's) comes last, and none twice
    assert len(first.entries) == 100
    assert first.total == 105
    assert len(second.entries) == 5
    assert second.next_cursor is None
    assert second.entries[-1] == world.extras["suppression"]
    assert not {s.pk for s in first.entries} & {s.pk for s in second.entries}


def test_it_adds_many_and_reports_bad_lines_by_number(alice_client, world):
    # given pasted lines: two new, one blank, one repeated, two invalid, one already there
    text = "\n".join(
        [
            "one@example.com",
            "",
            "not-an-address",
            "Two@Example.com",
            "one@example.com",
            "foo@",
            "blocked@alpha.test",
        ]
    )

    # when alice adds them as complaints with a note
    response = alice_client.post(
        "/suppressions/add/", {"emails": text, "reason": R.COMPLAINT, "note": "ticket 42"}
    )

    # then the good ones are stored by hash with the reason, note and author
    assert response.status_code == 200
    added = Suppression.objects.get(
        account=world.account_a, email_sha256=email_sha256("two@example.com")
    )
    assert (added.reason, added.note, added.created_by) == (R.COMPLAINT, "ticket 42", world.alice)
    assert email_sha256("one@example.com") in _hashes(world.account_a)
    # and each bad line is reported with its number and reason, and given back to fix
    result = response.context["result"]
    assert (result.added, result.already, result.invalid) == (2, 2, 2)
    body = response.content.decode()
    assert "Line 3: &#x27;not-an-address&#x27; is not a valid email address." in body
    assert "Line 6: &#x27;foo@&#x27; is not a valid email address." in body
    assert response.context["add_form"].initial["emails"] == "not-an-address\nfoo@"
    # and the whole operation is one audit entry
    entry = AuditEntry.objects.get(account=world.account_a, action="suppressions.added")
    assert entry.detail["count"] == 2
    assert "one@example.com" not in str(entry.detail)


def test_it_redirects_with_a_summary_when_every_line_is_good(alice_client, world):
    response = alice_client.post(
        "/suppressions/add/", {"emails": "a@example.com\nb@example.com", "reason": R.MANUAL}
    )

    assert response.status_code == 302
    follow = alice_client.get(response.url)
    assert "2 added, 0 already there, 0 invalid." in follow.content.decode()
    assert len(_hashes(world.account_a)) == 3


def test_it_refuses_a_reason_customers_may_not_give(alice_client, world):
    response = alice_client.post(
        "/suppressions/add/", {"emails": "a@example.com", "reason": R.ERASURE}
    )

    assert response.status_code == 200
    assert response.context["add_form"].errors["reason"]
    assert len(_hashes(world.account_a)) == 1


def test_it_does_not_let_a_viewer_add(vera_client, world):
    # when a viewer of account A tries to add an address
    response = vera_client.post(
        "/suppressions/add/", {"emails": "a@example.com", "reason": R.MANUAL}
    )

    # then they are refused and nothing is stored
    assert response.status_code == 403
    assert _hashes(world.account_a) == {world.extras["suppression"].email_sha256}


def test_it_lets_a_viewer_see_the_list_without_the_forms(vera_client):
    response = vera_client.get("/suppressions/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Add addresses" not in body
    assert "Remove…" not in body


def test_it_removes_an_entry_only_on_post(alice_client, world):
    # given the account's entry
    suppression = world.extras["suppression"]
    url = f"/suppressions/{suppression.pk}/remove/"

    # when alice opens the removal link, the entry is still there
    response = alice_client.get(url)
    assert response.status_code == 200
    assert "Remove from the list" in response.content.decode()
    assert Suppression.objects.filter(pk=suppression.pk).exists()

    # when she confirms
    response = alice_client.post(url)

    # then it is gone, and the removal is in the activity log
    assert response.status_code == 302
    assert not Suppression.objects.filter(pk=suppression.pk).exists()
    assert AuditEntry.objects.filter(account=world.account_a, action="suppression.removed").exists()


def test_it_gives_an_outsider_404_on_another_accounts_entry(charlie_client, world):
    suppression = world.extras["suppression"]
    url = f"/suppressions/{suppression.pk}/remove/"

    assert charlie_client.get(url).status_code == 404
    assert charlie_client.post(url).status_code == 404
    assert Suppression.objects.filter(pk=suppression.pk).exists()


def test_it_imports_a_csv_by_its_email_column(alice_client, world):
    # given a semicolon file whose second column is the address, with a bad row and a
    # blank one
    text = (
        "Name;E-mail address\n"
        "Ann;ann@example.com\n"
        "Bob;bob@\n"
        ";\n"
        "Cid;blocked@alpha.test\n"
        "Dee;dee@example.com\n"
    )

    # when alice imports it
    response = alice_client.post(
        "/suppressions/import/",
        {"file": _upload("list.csv", text), "reason": R.UNSUBSCRIBE, "note": "old tool"},
    )

    # then the counts and the bad row (by its number, the header being row 1) are reported
    result = response.context["result"]
    assert (result.added, result.already, result.invalid) == (2, 1, 1)
    assert "Row 3: &#x27;bob@&#x27; is not a valid email address." in response.content.decode()
    stored = Suppression.objects.get(
        account=world.account_a, email_sha256=email_sha256("dee@example.com")
    )
    assert stored.reason == R.UNSUBSCRIBE
    entry = AuditEntry.objects.get(account=world.account_a, action="suppressions.added")
    assert entry.detail["source"] == "import"


def test_it_imports_a_plain_text_file_of_addresses(alice_client, world):
    text = "x@example.com\r\ny@example.com\r\n"

    response = alice_client.post(
        "/suppressions/import/",
        {"file": _upload("export.txt", text, "cp1252"), "reason": R.HARD_BOUNCE},
    )

    assert response.status_code == 302
    assert {email_sha256("x@example.com"), email_sha256("y@example.com")} <= _hashes(
        world.account_a
    )


def test_it_refuses_a_file_over_5_mb(alice_client, world):
    big = "a@example.com\n" * (5 * 1024 * 1024 // 14 + 10)

    response = alice_client.post(
        "/suppressions/import/", {"file": _upload("big.csv", big), "reason": R.MANUAL}
    )

    assert response.status_code == 200
    assert "larger than 5 MB" in response.content.decode()
    assert len(_hashes(world.account_a)) == 1


def test_it_exports_hashes_as_csv_with_no_address(alice_client, world):
    # given an entry with a note a spreadsheet would run
    suppressing.suppressions_add_many(
        account=world.account_a,
        emails=[(1, "zoe@example.com")],
        reason=R.HARD_BOUNCE,
        actor=world.alice,
        note="=HYPERLINK(1)",
    )

    # when alice exports the list
    response = alice_client.get("/suppressions/export.csv")

    # then it is a CSV of hashes, newest first, defused, with no address in it
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["email_sha256", "reason", "note", "created_at"]
    assert rows[1][:3] == [email_sha256("zoe@example.com"), "hard_bounce", "'=HYPERLINK(1)"]
    assert rows[2][0] == world.extras["suppression"].email_sha256
    assert "@" not in body
    assert AuditEntry.objects.filter(account=world.account_a, action="suppressions.exported")


def test_it_finds_a_platform_entry_with_the_check_box(alice_client, world):
    # given an address on the platform-wide list only
    suppressing.platform_suppression_add(email="never@example.com", actor=None)
    before = Suppression.objects.count()

    # when alice checks it, then an address on the account's list, then a free one
    platform = alice_client.post("/suppressions/check/", {"email": " Never@Example.com "})
    own = alice_client.post("/suppressions/check/", {"email": "blocked@alpha.test"})
    free = alice_client.post("/suppressions/check/", {"email": "free@example.com"})

    # then each answer says which list stops it, and nothing was stored
    assert "platform-wide “do not contact” list" in platform.content.decode()
    assert "your suppression list" in own.content.decode()
    assert "is on neither list" in free.content.decode()
    assert Suppression.objects.count() == before


def test_it_answers_a_check_from_htmx_with_the_box_only(vera_client, world):
    response = vera_client.post(
        "/suppressions/check/", {"email": "blocked@alpha.test"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="suppression-check">')
    assert "your suppression list" in body


def test_it_keeps_a_suppressed_contact_out_of_the_audience(alice_client, world):
    # given erin, subscribed to the newsletter
    newsletter = world.extras["list"]
    assert selectors.sendable_subscriptions(world.account_a, [newsletter.pk]).count() == 1

    # when alice adds her address to the list
    alice_client.post("/suppressions/add/", {"emails": "ERIN@alpha.test", "reason": R.MANUAL})

    # then the audience no longer has her
    assert selectors.sendable_subscriptions(world.account_a, [newsletter.pk]).count() == 0


def test_it_lets_an_operator_add_an_address_platform_wide_in_the_admin(staff_client):
    # when an operator types an address in the admin's add form
    response = staff_client.post(
        "/admin/contacts/suppression/add/",
        {"email": "Someone@Example.com", "reason": R.DO_NOT_CONTACT, "note": "by phone"},
    )

    # then its hash, and nothing else of it, is on the platform-wide list
    assert response.status_code == 302
    entry = Suppression.objects.platform().get()
    assert entry.email_sha256 == email_sha256("someone@example.com")
    assert (entry.reason, entry.note) == (R.DO_NOT_CONTACT, "by phone")

    # and a second time is refused, not duplicated
    again = staff_client.post(
        "/admin/contacts/suppression/add/",
        {"email": "someone@example.com", "reason": R.DO_NOT_CONTACT},
    )
    assert "already on the platform-wide list" in again.content.decode()
    assert Suppression.objects.platform().count() == 1


def test_it_searches_the_admin_by_exact_address_and_filters_by_list(staff_client, world):
    suppressing.platform_suppression_add(email="never@example.com", actor=None)

    found = staff_client.get("/admin/contacts/suppression/", {"q": "NEVER@example.com"})
    missed = staff_client.get("/admin/contacts/suppression/", {"q": "never"})
    platform = staff_client.get("/admin/contacts/suppression/", {"scope": "platform"})

    assert [s.account_id for s in found.context["cl"].result_list] == [None]
    assert list(missed.context["cl"].result_list) == []
    assert all(s.account_id is None for s in platform.context["cl"].result_list)
    assert platform.context["cl"].result_count == 1


def test_it_records_an_operators_removal_in_the_accounts_log(staff_client, world):
    # given account A's entry, open in the admin
    suppression = world.extras["suppression"]
    url = f"/admin/contacts/suppression/{suppression.pk}/"
    assert staff_client.get(url + "change/").status_code == 200

    # when an operator deletes it there
    response = staff_client.post(url + "delete/", {"post": "yes"})

    # then it is gone through the service, which tells the account
    assert response.status_code == 302
    assert not Suppression.objects.filter(pk=suppression.pk).exists()
    assert AuditEntry.objects.filter(account=world.account_a, action="suppression.removed")
