from __future__ import annotations

import socket
from functools import partial

import pytest
from celery import current_app
from celery.exceptions import Retry
from django.core.cache import cache
from django.test import Client

from accounts import tasking
from tests.factories import World, build_world


@pytest.fixture(autouse=True)
def _clean_cache():
    """Redis is shared across tests: each starts with an empty cache (allauth's rate
    limits and axes keep counters there)."""
    cache.clear()
    yield
    cache.clear()


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
def charlie_client(world: World) -> Client:
    return _client_for(world.charlie)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    what a task does, not how it travels (a real worker runs them in
    tests/campaigns/test_sending_worker.py and tests/contacts/test_subscribe_worker.py).
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
