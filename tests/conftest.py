from __future__ import annotations

import socket

import pytest
from django.core.cache import cache
from django.test import Client

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
