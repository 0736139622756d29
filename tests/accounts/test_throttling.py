"""Login throttling: 10 failures within 15 minutes lock an address or a network out."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD


def _login(client: Client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def test_it_locks_an_address_out_after_ten_failures_even_with_the_right_password(world):
    client = Client()
    # given ten wrong passwords in a row
    for _ in range(10):
        response = _login(client, "alice@alpha.test", "wrong-Passw0rd!")
        assert response.status_code in (200, 429)

    # when the eleventh try is the right password
    response = _login(client, "alice@alpha.test", PASSWORD)

    # then it is refused, with a message that says why and for how long
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body
    assert "15 minutes" in body
    assert "_auth_user_id" not in client.session


def test_it_lets_the_address_in_again_after_the_cool_off(world):
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(11):
            _login(client, "alice@alpha.test", "wrong-Passw0rd!")
        assert _login(client, "alice@alpha.test", PASSWORD).status_code == 429

    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        response = _login(client, "alice@alpha.test", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_it_locks_a_network_that_tries_many_addresses(world):
    client = Client()
    for n in range(10):
        _login(client, f"guess{n}@alpha.test", "wrong-Passw0rd!", ip="198.51.100.9")

    # alice's right password from that network is refused too…
    assert _login(client, "alice@alpha.test", PASSWORD, ip="198.51.100.9").status_code == 429
    # …but not from elsewhere
    assert _login(Client(), "alice@alpha.test", PASSWORD, ip="192.0.2.1").status_code == 302


def test_it_counts_addresses_whatever_their_case(world):
    client = Client()
    for n in range(10):
        email = "ALICE@alpha.test" if n % 2 else "alice@ALPHA.test"
        _login(client, email, "wrong-Passw0rd!", ip=f"192.0.2.{n + 10}")

    assert _login(client, "alice@alpha.test", PASSWORD, ip="192.0.2.99").status_code == 429


def test_it_shows_the_owner_recent_failed_logins(world, alice_client, bob_client):
    _login(Client(), "bob@alpha.test", "wrong-Passw0rd!", ip="203.0.113.50")
    _login(Client(), "charlie@bravo.test", "wrong-Passw0rd!", ip="203.0.113.51")

    response = alice_client.get("/settings/security/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "bob@alpha.test" in body
    assert "203.0.113.50" in body
    # another account's members are not this owner's business
    assert "charlie@bravo.test" not in body
    # an editor does not see the security page
    assert bob_client.get("/settings/security/").status_code == 403


def test_it_keeps_counting_a_network_whose_attacker_logs_in_to_their_own_account(world):
    from tests.factories import make_account, make_user

    eve = make_user("eve@example.com")
    make_account(eve, "Eve Corp")
    client = Client()
    # nine guesses at alice, then eve logs in to her own account from the same place
    for _ in range(9):
        _login(client, "alice@alpha.test", "wrong-Passw0rd!", ip="198.51.100.66")
    assert _login(Client(), "eve@example.com", PASSWORD, ip="198.51.100.66").status_code == 302

    # the tenth guess still counts: the network is now locked out
    _login(client, "alice@alpha.test", "wrong-Passw0rd!", ip="198.51.100.66")
    assert _login(client, "alice@alpha.test", PASSWORD, ip="198.51.100.66").status_code == 429


def test_it_believes_only_the_hops_added_by_trusted_proxies(rf, settings):
    from accounts.throttling import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")

    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"  # not the 6.6.6.6 the client wrote itself
