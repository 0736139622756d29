"""API request cost: an authenticated API call against the bare health check."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment

from benchmarks.harness import Figure, median, percentile, timings_ms

REQUESTS = 300


def run() -> list[Figure]:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        from tests.factories import make_account, make_api_key, make_user

        owner = make_user("bench@example.com")
        account = make_account(owner, "Bench Inc")
        _key, secret = make_api_key(account)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        plain = Client()

        api_ms = timings_ms(lambda: api.get("/api/v1/account/"), REQUESTS)
        health_ms = timings_ms(lambda: plain.get("/healthz"), REQUESTS)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return [
        Figure(
            "GET /api/v1/account/ median", median(api_ms), "GET /healthz", median(health_ms), "ms"
        ),
        Figure(
            "GET /api/v1/account/ p99",
            percentile(api_ms, 99),
            "GET /healthz",
            percentile(health_ms, 99),
            "ms",
            target="p99 under 50 ms",
        ),
    ]
