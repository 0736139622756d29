"""Closing an account: export first, the owner's confirmation, sending stopped, members
and keys shut out, reopening until the data are deleted."""

from __future__ import annotations

import io
import zipfile

from django.test import Client

from accounts.models import Account
from campaigns.models import Campaign
from campaigns.states import State
from tests.factories import PASSWORD


def _close(client: Client, account: Account, password: str = PASSWORD, name: str | None = None):
    return client.post(
        "/settings/close/", {"password": password, "confirm_name": name or account.name}
    )


def test_the_owner_must_give_the_password_and_the_exact_name(alice_client, world):
    wrong_password = _close(alice_client, world.account_a, password="nope")
    wrong_name = _close(alice_client, world.account_a, name="Alpha")

    assert b"This is not your password." in wrong_password.content
    assert b"Type the account name exactly" in wrong_name.content
    world.account_a.refresh_from_db()
    assert world.account_a.is_active


def test_an_editor_cannot_close_the_account(bob_client, world):
    assert _close(bob_client, world.account_a).status_code == 403

    world.account_a.refresh_from_db()
    assert world.account_a.is_active


def test_closing_stops_sending_and_shuts_members_and_keys_out(alice_client, bob_client, world):
    campaign = world.extras["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENDING)

    response = _close(alice_client, world.account_a)

    assert response.status_code == 302
    assert response.url == "/account/closed/"
    world.account_a.refresh_from_db()
    assert world.account_a.status == Account.Status.CLOSED
    campaign.refresh_from_db()
    assert campaign.status == State.CANCELLED
    page = bob_client.get("/contacts/", follow=True)
    assert page.redirect_chain[-1][0] == "/account/closed/"
    assert b"Its data will be deleted on" in page.content
    assert b"Reopen" not in page.content  # bob is an editor
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")
    assert api.get("/api/v1/account/").status_code == 401


def test_the_owner_can_reopen_and_download_until_the_data_are_deleted(alice_client, world):
    _close(alice_client, world.account_a)
    account = world.account_a

    export = alice_client.get(f"/account/closed/{account.pk}/export/")
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content))).namelist()
    assert {"contacts.csv", "contacts.ndjson", "lists.csv", "campaigns.json"} <= set(names)

    response = alice_client.post(f"/account/closed/{account.pk}/reopen/")
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.is_active
    assert alice_client.get("/contacts/").status_code == 200


def test_the_full_export_holds_contacts_with_consent_proof(alice_client, world):
    response = alice_client.get("/settings/export/")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    contacts = archive.read("contacts.csv").decode()
    assert "erin@alpha.test" in contacts
    assert "consent_at" in contacts
    assert "Alpha Sentinel launch" in archive.read("campaigns.json").decode()


def test_the_full_export_gives_each_campaigns_statistics(alice_client, world):
    from django.utils import timezone

    from campaigns.models import Delivery

    campaign = world.extras["campaign"]
    contact = world.extras["contact"]
    Delivery.objects.create(
        campaign=campaign, contact=contact, status="sent", first_opened_at=timezone.now()
    )

    response = alice_client.get("/settings/export/")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    import json

    (row,) = json.loads(archive.read("campaigns.json"))
    assert (row["opened"], row["clicked"], row["bounced"]) == (1, 0, 0)
