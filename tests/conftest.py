from __future__ import annotations

from functools import partial

import pytest
from celery import current_app
from celery.exceptions import Retry
from django.core.cache import cache
from django.test import Client

from accounts import tasking
from accounts.roles import Role
from config.devdns import LoopbackDNS
from domains import pacing
from tests.factories import World, build_world, make_api_key

# Real workers and a real SMTP server (tests/workers.py), for every test module.
from tests.workers import celery_worker, smtp_sink, start_smtp_server, workers  # noqa: F401
from tests.workers import free_port as _free_port


@pytest.fixture(autouse=True)
def _clean_cache():
    """Redis is shared across tests: each starts with an empty cache (allauth's rate
    limits and axes keep counters there)."""
    cache.clear()
    _clear_pacing()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _events_go_with_the_data(request, django_db_blocker):
    """A test that commits (real workers, a live server) has its rows flushed after it,
    but Django flushes only the tables it manages: the event table is partitioned and
    unmanaged, so its rows are emptied here, lest the next test count them."""
    yield
    marker = request.node.get_closest_marker("django_db")
    committed = {"transactional_db", "live_server", "celery_worker", "workers"} & set(
        request.fixturenames
    ) or (marker is not None and marker.kwargs.get("transaction"))
    if committed:
        from django.db import connection

        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE stats_event")


def _clear_pacing() -> None:
    """Pacing keeps its counters (warm-up days, connection slots, deferrals) in Redis
    under its own prefix, keyed by ids a new test database gives out again."""
    client = pacing._client()
    keys = list(client.scan_iter("missive:pacing:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _images_storage(settings, tmp_path_factory):
    """Each test's images go to a directory of its own, never under var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path_factory.mktemp("images"))},
        },
    }


@pytest.fixture(scope="session")
def _dns_server():
    server = LoopbackDNS()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns(_dns_server: LoopbackDNS, settings) -> LoopbackDNS:
    """A real authoritative DNS server on loopback, empty at the start of each test, that
    Missive's resolver asks (sending domains are checked over the wire)."""
    _dns_server.clear()
    settings.MISSIVE_DNS_SERVERS = [_dns_server.address]
    settings.MISSIVE_DNS_TIMEOUT = 2
    return _dns_server


@pytest.fixture
def world(db) -> World:
    return build_world()


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    return client


@pytest.fixture
def alice_client(world: World) -> Client:
    return _client_for(world.alice)


@pytest.fixture
def bob_client(world: World) -> Client:
    return _client_for(world.bob)


@pytest.fixture
def vera_client(world: World) -> Client:
    """The viewer of account A, logged in."""
    return _client_for(world.vera)


@pytest.fixture
def charlie_client(world: World) -> Client:
    return _client_for(world.charlie)


@pytest.fixture
def viewer_api(world: World) -> Client:
    """The API with a read-only key of account A."""
    _key, secret = make_api_key(world.account_a, role=Role.VIEWER, name="read-only key")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, list, dict]]:
    """The tasks handed to the workers (accounts.tasking.enqueue), kept here instead:
    (name, args, options) each, once the transaction that asked for them commits."""
    kept: list[tuple[str, list, dict]] = []
    monkeypatch.setattr(
        tasking, "_send", lambda name, args, options: kept.append((name, args, options))
    )
    return kept


@pytest.fixture
def tasks_inline(monkeypatch) -> list[str]:
    """Enqueued tasks run here, at once, in this process: for tests whose subject is
    what a task does, not how it travels (the ``celery_worker`` and ``workers`` fixtures of
    tests/workers.py run them in real workers).
    A task that asks to be retried runs again at once, its countdown not waited for.
    Returns the names of the tasks run."""
    current_app.loader.import_default_modules()
    ran: list[str] = []

    def run(name: str, args: list, options: dict) -> None:
        ran.append(name)
        attempt = partial(current_app.tasks[name].apply, args=args, throw=True)
        while True:
            try:
                attempt()
                return
            except Retry as retry:
                attempt = partial(retry.sig.apply, throw=True)

    monkeypatch.setattr(tasking, "_send", run)
    return ran
