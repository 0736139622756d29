"""API request cost: an authenticated API call against the bare health check."""

from __future__ import annotations

from django.test import Client

from benchmarks.harness import Figure, median, percentile, scratch_database, timings_ms

REQUESTS = 300


def run() -> list[Figure]:
    with scratch_database():
        from tests.factories import make_account, make_api_key, make_user

        owner = make_user("bench@example.com")
        account = make_account(owner, "Bench Inc")
        _key, secret = make_api_key(account)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        plain = Client()

        api_ms = timings_ms(lambda: api.get("/api/v1/account/"), REQUESTS)
        health_ms = timings_ms(lambda: plain.get("/healthz"), REQUESTS)
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
