"""The API: bearer keys, the account endpoint, errors that name the field."""

from __future__ import annotations

import json

from django.test import Client

from accounts.models import Account, ApiKey, AuditEntry
from contacts.models import ImportJob
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
    stored = Account.objects.get(pk=world.account_a.pk)
    assert stored.default_from_email == world.account_a.default_from_email

    response = client.patch(
        "/api/v1/account/", {"postal_address": "2 Side Street"}, content_type="application/json"
    )
    assert response.status_code == 200
    world.account_a.refresh_from_db()
    assert world.account_a.postal_address == "2 Side Street"
    entry = AuditEntry.objects.get(account=world.account_a, action="account.updated")
    assert entry.actor_label.startswith("API key Alpha Sentinel key")


def test_it_lets_a_viewer_key_read_but_not_write(world, viewer_api):
    client = viewer_api

    assert client.get("/api/v1/account/").status_code == 200
    response = client.patch("/api/v1/account/", {"name": "Hacked"}, content_type="application/json")
    assert response.status_code == 403
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"


def test_it_lists_the_members(world):
    response = _api(world.alice_key_secret).get("/api/v1/account/members/")

    emails = {m["email"] for m in response.json()}
    assert emails == {"alice@alpha.test", "bob@alpha.test", "vera@alpha.test"}


def test_it_serves_the_schema_and_the_docs(db):
    schema = Client().get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/account/" in schema.content
    assert Client().get("/api/v1/docs/").status_code == 200


def test_it_creates_a_key_shown_once_and_stored_hashed(alice_client, world):
    response = alice_client.post(
        "/settings/api-keys/", {"name": "CRM sync", "role": "editor"}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain == [("/settings/api-keys/", 302)]
    assert "no-store" in response["Cache-Control"]
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


def test_it_answers_unknown_api_paths_in_json(db):
    response = Client().get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert "No API endpoint" in response.json()["detail"]


def test_it_holds_the_accounts_two_factor_rule_in_the_api_too(bob_client, world):
    world.account_a.require_mfa = True
    world.account_a.save()

    response = bob_client.get("/api/v1/account/")

    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]


def test_it_revokes_the_keys_of_a_member_who_leaves_or_is_demoted(alice_client, world):
    from accounts import services
    from accounts.models import Membership

    bob = Membership.objects.get(user=world.bob, account=world.account_a)
    bob.role = "admin"
    bob.save()
    _admin_key, admin_secret = services.api_key_create(by=bob, name="bob admin", role="admin")
    _editor_key, editor_secret = services.api_key_create(by=bob, name="bob editor", role="editor")

    # demoted to editor: the admin key goes, the editor key stays
    alice_client.post(f"/team/members/{bob.pk}/role/", {"role": "editor"})
    assert _api(admin_secret).get("/api/v1/account/").status_code == 401
    assert _api(editor_secret).get("/api/v1/account/").status_code == 200

    # removed: every key of his goes
    alice_client.post(f"/team/members/{bob.pk}/remove/")
    assert _api(editor_secret).get("/api/v1/account/").status_code == 401


def test_it_refuses_line_breaks_in_the_account_name(world):
    response = _api(world.alice_key_secret).patch(
        "/api/v1/account/",
        {"name": "Acme\nBcc: victim@example.com"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("name:")
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"


def test_it_answers_unknown_api_paths_in_json_for_every_method(alice_client, world):
    # given a browser session that sends no CSRF token, as an API client would not
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice, backend="allauth.account.auth_backends.AuthenticationBackend")

    for method in ("post", "put", "patch", "delete", "get"):
        for path in ("/api/v1/nothing-here/", "/api/v2/lists/", "/api/"):
            # when it calls a path that is no endpoint
            response = getattr(client, method)(path)

            # then the answer is the API's JSON 404, never the CSRF page
            assert response.status_code == 404, (method, path)
            assert response["Content-Type"] == "application/json"
            assert "No API endpoint" in response.json()["detail"]


def test_it_answers_a_csrf_refusal_under_the_api_in_json(world):
    # given a logged-in session without its CSRF token
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice, backend="allauth.account.auth_backends.AuthenticationBackend")

    # when it writes through the API
    response = client.patch("/api/v1/account/", {"name": "Hacked"}, content_type="application/json")

    # then it is refused in JSON, and nothing changed
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"


def test_it_gives_csrf_failures_of_django_json_under_the_api_only(rf):
    from accounts.api.errors import csrf_failure

    # when Django's CSRF check refuses a request under /api/, and one elsewhere
    api = csrf_failure(rf.post("/api/v1/lists/"), reason="CSRF cookie not set.")
    page = csrf_failure(rf.post("/lists/new/"), reason="CSRF cookie not set.")

    # then the API's is JSON, the page's stays Django's HTML page
    assert api.status_code == 403
    assert json.loads(api.content) == {"detail": "CSRF Failed: CSRF cookie not set."}
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


def test_it_answers_a_body_that_is_not_json_in_the_error_shape(world):
    response = _api(world.alice_key_secret).patch(
        "/api/v1/account/", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    data = response.json()
    assert data["detail"].startswith("JSON parse error")
    assert data["errors"] == {"non_field_errors": [data["detail"]]}


def test_it_reads_json_bodies_only(world):
    # when a form body is sent, which has no types, no null and no nesting
    response = _api(world.alice_key_secret).patch(
        "/api/v1/account/",
        "name=Renamed",
        content_type="application/x-www-form-urlencoded",
    )

    # then it is refused as a media type the API does not read, and nothing changed
    assert response.status_code == 415
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"


def test_it_refuses_values_of_the_wrong_json_type(world):
    client = _api(world.alice_key_secret)

    # when a number comes where the schema says a string, a string for a boolean
    name = client.patch("/api/v1/account/", {"name": 42}, content_type="application/json")
    opt_in = client.post(
        "/api/v1/lists/",
        {"name": "Weekly", "double_opt_in": "yes"},
        content_type="application/json",
    )

    # then each is a 400 naming the field, and nothing is stored
    assert name.status_code == 400
    assert name.json()["errors"] == {"name": ["Expected a string, got int."]}
    assert opt_in.status_code == 400
    assert opt_in.json()["detail"] == "double_opt_in: Expected a boolean, got str."
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"
    assert not world.account_a.contact_lists.filter(name="Weekly").exists()


def test_it_refuses_a_query_parameter_given_twice(world):
    response = _api(world.alice_key_secret).get("/api/v1/campaigns/?status=draft&status=sent")

    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["Give this parameter once."]}


def test_it_answers_a_too_large_body_with_413_in_json(world, settings):
    # given a limit on what a request may hold beside its files
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    list_id = world.extras["list"].pk

    # when an upload carries more than that in its fields
    response = _api(world.alice_key_secret).post(
        f"/api/v1/lists/{list_id}/imports/", {"note": "x" * 5000}
    )

    # then it is refused as too large, in JSON, and no import was made
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large."}
    assert list(ImportJob.objects.for_account(world.account_a)) == [world.extras["import"]]


def test_it_documents_the_errors_of_every_operation(db):
    schema = Client().get("/api/v1/schema/?format=json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            # every operation: no key, a key whose role does not allow it
            assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert "400" in codes, (method, path)
    account = schema["paths"]["/api/v1/account/"]["patch"]["responses"]["400"]
    assert account["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationError"
    }
    upload = schema["paths"]["/api/v1/lists/{list_id}/imports/"]["post"]["responses"]
    assert "413" in upload


def test_every_list_answers_a_cursor_it_did_not_give_with_400_naming_it(world):
    # given every paginated list of the API, from the URL resolver
    from django.urls import resolve, reverse

    from accounts.api.pagination import CursorPage
    from tests.tenancy import project_routes

    _key, secret = make_api_key(world.account_a)
    client = _api(secret)
    paginated = []
    for route in project_routes():
        if not route.is_api or route.keywords:
            continue
        path = reverse(route.name)
        pagination = getattr(resolve(path).func.cls, "pagination_class", None)
        if pagination and issubclass(pagination, CursorPage):
            paginated.append((path, pagination.cursor_query_param))
    assert len(paginated) >= 6, paginated

    for path, name in paginated:
        # when one is asked for a page with a forged cursor
        response = client.get(path, {name: "forged"})

        # then it answers 400 in the error shape, naming the cursor
        assert response.status_code == 400, path
        assert name in response.json()["errors"], path
