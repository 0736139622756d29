"""The outsider sweep: every URL of the project, requested by someone from another
account, must reveal and change nothing of the victim's account.

The URLs come from Django's resolver, never from a list, so a view added by any later
change is swept too. Keywords in a URL are filled from ``tests.factories.SAMPLES``
(objects of the victim's account); any other keyword gets a value that matches nothing
(a bad token), which must not cause a server error either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Account
from tests.factories import FREE_KEYWORDS, SAMPLES, VICTIM_MARKERS, World

PROJECT_APPS = settings.MISSIVE_APPS
# Status codes that tell an outsider nothing: missing, forbidden, wrong method.
REFUSALS = {403, 404, 405}
HTML_METHODS = ("get", "post")
API_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str
    keywords: tuple[str, ...]
    converters: dict
    is_api: bool


def _view_module(callback: object) -> str:
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    target = view_class or callback
    return getattr(target, "__module__", "") or ""


def project_routes(urlconf: str | None = None) -> Iterator[Route]:
    def walk(patterns: list, namespace: str, converters: dict) -> Iterator[Route]:
        for entry in patterns:
            entry_converters = {**converters, **getattr(entry.pattern, "converters", {})}
            if isinstance(entry, URLResolver):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, ns, entry_converters)
            elif isinstance(entry, URLPattern):
                module = _view_module(entry.callback)
                if not module.startswith(PROJECT_APPS) or not entry.name:
                    continue
                keywords = tuple(entry.pattern.regex.groupindex)
                yield Route(
                    name=f"{namespace}{entry.name}",
                    keywords=keywords,
                    converters=entry_converters,
                    # DRF's as_view() marks its views with the APIView class.
                    is_api=hasattr(entry.callback, "cls"),
                )

    yield from walk(get_resolver(urlconf).url_patterns, "", {})


def _fill(route: Route, world: World) -> dict:
    kwargs = {}
    for keyword in route.keywords:
        if keyword in SAMPLES:
            kwargs[keyword] = SAMPLES[keyword](world)
        elif keyword in FREE_KEYWORDS:
            kwargs[keyword] = FREE_KEYWORDS[keyword]
        elif (
            keyword.endswith("_id")
            and route.converters.get(keyword).__class__.__name__ == "IntConverter"
        ):
            raise AssertionError(
                f"URL {route.name!r} takes {keyword!r}, but tests/factories.py SAMPLES has no "
                f"object for it: add one from the victim's account."
            )
        else:
            # Tokens and other opaque keys: a value that matches nothing.
            converter = route.converters.get(keyword)
            kwargs[keyword] = (
                987654321 if converter.__class__.__name__ == "IntConverter" else "forged-0123456789"
            )
    return kwargs


def victim_fingerprint(world: World) -> dict[str, list]:
    """Every row of the victim's account, model by model."""
    fingerprint: dict[str, list] = {
        "accounts.Account": list(Account.objects.filter(pk=world.account_a.pk).values()),
    }
    for model in apps.get_models():
        manager = model._default_manager
        if model._meta.app_label in PROJECT_APPS and hasattr(manager, "for_account"):
            fingerprint[model._meta.label] = list(
                manager.for_account(world.account_a).order_by("pk").values()
            )
    return fingerprint


def sweep(
    world: World, html_client: Client, api_client: Client, urlconf: str | None = None
) -> list[str]:
    """Request every project URL as the outsider; return what went wrong (empty = safe)."""
    problems: list[str] = []
    routes = list(project_routes(urlconf))
    assert routes, "the resolver yielded no project URL"
    for route in routes:
        url = reverse(route.name, kwargs=_fill(route, world), urlconf=urlconf)
        client = api_client if route.is_api else html_client
        methods = API_METHODS if route.is_api else HTML_METHODS
        statuses = {}
        # A route with a keyword other than a free one names something: a victim's
        # object, or a token that matches nothing. The outsider must be refused.
        names_an_object = any(k not in FREE_KEYWORDS for k in route.keywords)
        for method in methods:
            response = getattr(client, method)(url)
            statuses[method] = response.status_code
            raw = b"".join(response.streaming_content) if response.streaming else response.content
            body = raw.decode(errors="replace")
            leaked = [m for m in VICTIM_MARKERS if m in body]
            if response.status_code >= 500:
                problems.append(
                    f"{method.upper()} {url} ({route.name}): server error {response.status_code}"
                )
            elif names_an_object and response.status_code not in REFUSALS:
                problems.append(
                    f"{method.upper()} {url} ({route.name}): {response.status_code} "
                    "for an outsider, expected 404 (or 403)"
                )
            if leaked:
                problems.append(
                    f"{method.upper()} {url} ({route.name}): shows the victim's {leaked}"
                )
        if names_an_object and set(statuses.values()) == {405}:
            problems.append(f"{url} ({route.name}): no method answered, the sweep proved nothing")
    return problems
