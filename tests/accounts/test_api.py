"""The API: bearer keys, the account endpoint, errors that name the field."""

from __future__ import annotations

from django.test import Client

from accounts.models import ApiKey, AuditEntry
from tests.factories import make_api_key


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_it_returns_the_account_of_the_key(world):
    response = _api(world.alice_key_secret).get("/api/v1/account/")

    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "Alpha Sentinel Corp"
    assert data["status"] == "active"
    world.alice_key.refresh_from_db()
    assert world.alice_key.last_used_at is not None


def test_it_refuses_a_missing_bad_or_revoked_key_with_json(world):
    assert Client().get("/api/v1/account/").status_code == 401
    bad = _api("msv_not-a-key").get("/api/v1/account/")
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Invalid or revoked API key."}

    world.alice_key.revoked_at = world.alice_key.created_at
    world.alice_key.save()
    assert _api(world.alice_key_secret).get("/api/v1/account/").status_code == 401


def test_it_updates_the_account_and_names_the_field_at_fault(world):
    client = _api(world.alice_key_secret)

    response = client.patch(
        "/api/v1/account/",
        {"default_from_email": "not-an-address"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("default_from_email:")
    assert "default_from_email" in response.json()["errors"]

    response = client.patch(
        "/api/v1/account/", {"postal_address": "2 Side Street"}, content_type="application/json"
    )
    assert response.status_code == 200
    world.account_a.refresh_from_db()
    assert world.account_a.postal_address == "2 Side Street"
    entry = AuditEntry.objects.get(account=world.account_a, action="account.updated")
    assert entry.actor_label.startswith("API key Alpha Sentinel key")


def test_it_lets_a_viewer_key_read_but_not_write(world):
    _key, secret = make_api_key(world.account_a, role="viewer")
    client = _api(secret)

    assert client.get("/api/v1/account/").status_code == 200
    response = client.patch("/api/v1/account/", {"name": "Hacked"}, content_type="application/json")
    assert response.status_code == 403
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"


def test_it_lists_the_members(world):
    response = _api(world.alice_key_secret).get("/api/v1/account/members/")

    emails = {m["email"] for m in response.json()}
    assert emails == {"alice@alpha.test", "bob@alpha.test"}


def test_it_serves_the_schema_and_the_docs(db):
    schema = Client().get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/account/" in schema.content
    assert Client().get("/api/v1/docs/").status_code == 200


def test_it_creates_a_key_shown_once_and_stored_hashed(alice_client, world):
    response = alice_client.post("/settings/api-keys/", {"name": "CRM sync", "role": "editor"})

    assert response.status_code == 200
    secret = response.context["new_key"]
    assert secret.startswith("msv_")
    key = ApiKey.objects.get(name="CRM sync")
    assert secret not in (key.key_hash, key.hint)
    assert _api(secret).get("/api/v1/account/").status_code == 200
    # not shown again
    assert secret not in alice_client.get("/settings/api-keys/").content.decode()


def test_it_revokes_a_key_after_confirmation(alice_client, world):
    url = f"/settings/api-keys/{world.alice_key.pk}/revoke/"
    assert "Revoke the API key" in alice_client.get(url).content.decode()

    alice_client.post(url)

    assert _api(world.alice_key_secret).get("/api/v1/account/").status_code == 401


def test_it_keeps_api_keys_from_editors(bob_client, world):
    assert bob_client.get("/settings/api-keys/").status_code == 403


def test_it_accepts_a_logged_in_session_too(alice_client, world):
    response = alice_client.get("/api/v1/account/")

    assert response.status_code == 200
    assert response.json()["name"] == "Alpha Sentinel Corp"
