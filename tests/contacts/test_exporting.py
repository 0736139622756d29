"""Exports: streamed from PostgreSQL, exact, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

from accounts.models import AuditEntry
from contacts import services, tagging
from contacts.models import Contact, Subscription

TRICKY = [
    ("Ana, María", 'O"Brien', "ana@example.com"),
    ("Line\nbreak", "Çà\r\nvà", "line@example.com"),
    ("Дмитрий", "山田 太郎", "intl@example.com"),
    ('=HYPERLINK("http://x")', "+33 6 00", "formula@example.com"),
    ("@SUM(A1)", "-2", "at@example.com"),
]


def _download(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response
    assert response.streaming
    return b"".join(response.streaming_content)


def _make(world):
    newsletter = world.extras["list"]
    for first, last, email in TRICKY:
        services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=email,
            first_name=first,
            last_name=last,
            attributes={
                "city": "=cmd|' /C calc'!A0" if email.startswith("formula") else "Lyon, FR"
            },
            lists=[newsletter],
            consent_text="Signed the paper form, “shop” 2026",
        )
    return newsletter


def test_it_round_trips_names_exactly_through_csv(alice_client, world):
    newsletter = _make(world)

    raw = _download(alice_client, f"/lists/{newsletter.pk}/export.csv")

    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))}
    for first, last, email in TRICKY[:3]:
        assert rows[email]["first_name"] == first
        assert rows[email]["last_name"] == last
        assert rows[email]["status"] == "subscribed"
        assert rows[email]["consent_text"] == "Signed the paper form, “shop” 2026"
        assert rows[email]["attributes.city"] == "Lyon, FR"


def test_it_defuses_spreadsheet_formulas_in_csv(alice_client, world):
    newsletter = _make(world)

    raw = _download(alice_client, f"/lists/{newsletter.pk}/export.csv")

    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))}
    assert rows["formula@example.com"]["first_name"] == '\'=HYPERLINK("http://x")'
    assert rows["formula@example.com"]["last_name"] == "'+33 6 00"
    assert rows["formula@example.com"]["attributes.city"] == "'=cmd|' /C calc'!A0"
    assert rows["at@example.com"]["first_name"] == "'@SUM(A1)"
    assert rows["at@example.com"]["last_name"] == "'-2"


def test_it_exports_the_same_data_unescaped_as_json_lines(alice_client, world):
    newsletter = _make(world)

    raw = _download(alice_client, f"/lists/{newsletter.pk}/export.ndjson")

    records = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    by_email = {r["email"]: r for r in records}
    assert by_email["formula@example.com"]["first_name"] == '=HYPERLINK("http://x")'
    assert by_email["line@example.com"]["last_name"] == "Çà\r\nvà"
    assert by_email["intl@example.com"]["first_name"] == "Дмитрий"
    assert by_email["ana@example.com"]["list"] == newsletter.name


def test_it_exports_every_contact_even_those_on_no_list(alice_client, world):
    services.contact_create(account=world.account_a, actor=world.alice, email="loner@example.com")

    raw = _download(alice_client, "/contacts/export.csv")

    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    emails = [r["email"] for r in rows]
    assert "loner@example.com" in emails
    assert "erin@alpha.test" in emails
    assert "charlie@bravo.test" not in emails


def test_it_writes_each_export_to_the_activity_log(alice_client, world):
    _download(alice_client, "/contacts/export.ndjson")

    entry = AuditEntry.objects.get(account=world.account_a, action="contacts.exported")
    assert entry.detail == {"list": "all contacts", "format": "ndjson"}
    assert entry.actor == world.alice


def test_it_refuses_exports_to_a_viewer(vera_client):
    assert vera_client.get("/contacts/export.csv").status_code == 403
    assert not AuditEntry.objects.filter(action="contacts.exported").exists()


def test_it_keeps_the_unsubscribed_in_the_export_with_their_status(alice_client, world):
    contact = world.extras["contact"]
    services.contacts_unsubscribe(
        account=world.account_a, actor=world.alice, contact_ids=[contact.pk]
    )

    raw = _download(alice_client, f"/lists/{world.extras['list'].pk}/export.csv")

    row = next(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert row["status"] == Subscription.Status.UNSUBSCRIBED
    assert row["unsubscribed_at"]


def test_it_exports_tags_as_an_import_reads_them_back(alice_client, world):
    # given a contact with two tags, one of them a would-be formula
    newsletter = _make(world)
    ana = Contact.objects.get(account=world.account_a, email="ana@example.com")
    for name in ("vip", "=1+1"):
        tagging.tag_contacts(
            account=world.account_a,
            actor=None,
            tag=name,
            contacts=Contact.objects.filter(pk=ana.pk),
        )

    # when the list is exported as CSV and as JSON lines
    raw = _download(alice_client, f"/lists/{newsletter.pk}/export.csv")
    lines = _download(alice_client, f"/lists/{newsletter.pk}/export.ndjson")

    # then the CSV cell holds the names by name, separated by commas, defused; the JSON a list
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))}
    assert rows["ana@example.com"]["tags"] == "'=1+1, vip"
    assert tagging.split_tag_names("=1+1, vip") == ["=1+1", "vip"]
    assert rows["line@example.com"]["tags"] == ""
    records = {r["email"]: r for r in map(json.loads, lines.decode("utf-8").splitlines())}
    assert records["ana@example.com"]["tags"] == ["=1+1", "vip"]
    assert records["line@example.com"]["tags"] == []
