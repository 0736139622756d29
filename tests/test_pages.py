"""Every page and API endpoint, as their owner, with malformed query parameters.

The URLs come from Django's resolver (as in tests/tenancy.py) and the parameters from
the views themselves: a first plain GET records which query parameters each one reads,
then each of them is sent every malformed value. A malformed parameter gets the page
(the bad value ignored) or a 400, never a server error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from tests.factories import World
from tests.tenancy import _fill, project_routes

MALFORMED = ("garbage", "\x00", "²", "-1", "99999999999999999999", "'")
# Cursors with the shape of Missive's own (``<sort value>|<id>``) and a bad part.
BAD_CURSORS = ("2026-01-05T10:00:00+00:00|²", "erin@alpha.test|99999999999999999999", "\x00|1")


@contextlib.contextmanager
def _recording_reads() -> Iterator[set[str]]:
    """The query parameter names read while the block runs (request.GET, query_params,
    and templates reading ``request.GET.x``)."""
    seen: set[str] = set()
    originals = {
        name: getattr(QueryDict, name) for name in ("get", "getlist", "__getitem__", "__contains__")
    }

    def recorder(name):
        original = originals[name]

        def wrapper(self, key, *args, **kwargs):
            if isinstance(key, str):
                seen.add(key)
            return original(self, key, *args, **kwargs)

        return wrapper

    for name in originals:
        setattr(QueryDict, name, recorder(name))
    try:
        yield seen
    finally:
        for name, original in originals.items():
            setattr(QueryDict, name, original)


def _body(response) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode(errors="replace")


# Server errors come back as 500 responses, so that one sweep reports them all.
@pytest.fixture
def alice_browser(world: World) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(world.alice, backend="allauth.account.auth_backends.AuthenticationBackend")
    return client


@pytest.fixture
def alice_api(world: World) -> Client:
    return Client(
        raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}"
    )


def test_it_answers_malformed_query_parameters_without_a_server_error(
    world: World, alice_browser: Client, alice_api: Client, tmp_path
):
    # given alice's account with a list, a contact, a campaign and the rest of the world,
    # her upload among them (its file already cleaned away, as after an import)
    from contacts.models import ImportJob

    ImportJob.objects.filter(pk=world.extras["import"].pk).update(
        file_path=str(tmp_path / "alpha.test-contacts.csv")
    )
    problems: list[str] = []
    swept = 0
    for route in project_routes():
        url = reverse(route.name, kwargs=_fill(route, world))
        client = alice_api if route.is_api else alice_browser

        # when she requests it plainly, the parameters it reads are noted
        with _recording_reads() as read:
            plain = client.get(url)
        if plain.status_code >= 500:
            problems.append(f"GET {url} ({route.name}): {plain.status_code} with no parameter")
            continue
        if plain.status_code == 405:
            continue

        # and then with each malformed value in each of them
        for param in sorted(read):
            for value in MALFORMED:
                swept += 1
                query = urlencode({param: value})
                response = client.get(f"{url}?{query}")
                where = f"GET {url}?{query} ({route.name})"
                # then the answer is the page or a refusal, never a server error
                if response.status_code >= 500:
                    problems.append(f"{where}: server error {response.status_code}")
                elif route.is_api and response.status_code == 400:
                    # and the API refuses in JSON, naming what was wrong
                    if response["Content-Type"] != "application/json":
                        problems.append(f"{where}: 400 as {response['Content-Type']}")
                    elif param in read and param not in _body(response):
                        problems.append(f"{where}: 400 does not name {param!r}")

    assert swept > 100
    assert problems == [], "\n".join(problems)


def test_it_shows_the_first_page_with_a_note_for_a_malformed_cursor(alice_client: Client):
    # when alice opens the contacts page with a cursor that is not one of Missive's
    response = alice_client.get("/contacts/", {"after": "garbage", "q": "erin\x00"})

    # then she gets the first page, saying what was ignored
    assert response.status_code == 200
    assert [c.email for c in response.context["page"].contacts] == ["erin@alpha.test"]
    body = response.content.decode()
    assert "not understood" in body
    assert "“after”" in body
    assert "“q”" in body


def test_it_refuses_a_malformed_api_parameter_naming_it(alice_api: Client):
    # when a client asks for the contacts of a list id beyond any database id
    response = alice_api.get("/api/v1/contacts/", {"list": "99999999999999999999"})

    # then it is a 400 in JSON that names the parameter
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "list" in response.json()["errors"]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
@pytest.mark.parametrize("sort", ["email", "newest"])
def test_it_answers_a_cursor_with_a_bad_part(
    alice_browser: Client, alice_api: Client, cursor: str, sort: str
):
    # when a cursor looks like Missive's but one of its parts is malformed
    page = alice_browser.get("/contacts/", {"sort": sort, "after": cursor})
    api = alice_api.get("/api/v1/contacts/", {"sort": sort, "after": cursor})

    # then the page shows the first page, and the API refuses it naming "after"
    assert page.status_code == 200
    assert [c.email for c in page.context["page"].contacts] == ["erin@alpha.test"]
    assert api.status_code == 400
    assert "after" in api.json()["errors"]


@pytest.fixture
def many_contacts(world: World) -> list[str]:
    """Alice's account with 120 contacts beside erin, ann000 … ann119, on her list."""
    from contacts.models import Contact, Subscription

    contacts = Contact.objects.bulk_create(
        Contact(account=world.account_a, email=f"ann{n:03}@example.com") for n in range(120)
    )
    Subscription.objects.bulk_create(
        Subscription(contact=c, contact_list=world.extras["list"]) for c in contacts
    )
    return sorted(c.email for c in contacts)


def _emails(response) -> list[str]:
    return [c.email for c in response.context["page"].contacts]


def test_it_pages_back_with_a_previous_link_in_the_same_order(
    alice_client: Client, many_contacts: list[str]
):
    # given the third page of alice's contacts, newest address first, matching "ann"
    query = {"q": "ann", "sort": "-email"}
    first = alice_client.get("/contacts/", query)
    second = alice_client.get("/contacts/", {**query, "after": first.context["page"].next_cursor})
    third = alice_client.get("/contacts/", {**query, "after": second.context["page"].next_cursor})
    newest_first = many_contacts[::-1]
    assert _emails(third) == newest_first[100:]

    # when she follows "previous" twice
    back = third.context["page"].previous_cursor
    assert f"before={quote(back)}" in third.content.decode()
    again = alice_client.get("/contacts/", {**query, "before": back})
    start = alice_client.get(
        "/contacts/", {**query, "before": again.context["page"].previous_cursor}
    )

    # then she sees the same pages, in the same order, and the first one has no "previous"
    assert _emails(again) == _emails(second) == newest_first[50:100]
    assert _emails(start) == _emails(first) == newest_first[:50]
    assert start.context["page"].previous_cursor is None
    assert "Previous page" not in start.content.decode()
    assert again.context["page"].next_cursor == second.context["page"].next_cursor


def test_it_keeps_search_status_and_sort_in_the_paging_links(
    alice_client: Client, world: World, many_contacts: list[str]
):
    # when alice filters her list's contacts and turns a page
    url = f"/lists/{world.extras['list'].pk}/"
    first = alice_client.get(url, {"q": "ann", "status": "subscribed", "sort": "-email"})
    cursor = first.context["page"].next_cursor
    second = alice_client.get(
        url, {"q": "ann", "status": "subscribed", "sort": "-email", "after": cursor}
    )

    # then both links carry the filters, and the second page still applies them
    for response, direction in ((first, "after"), (second, "before")):
        links = re.findall(rf'href="([^"]*{direction}=[^"]*)"', response.content.decode())
        assert links, direction
        assert all("q=ann" in link and "status=subscribed" in link for link in links)
        assert all("sort=-email" in link for link in links)
    assert _emails(second) == many_contacts[::-1][50:100]


def test_it_puts_the_filters_into_the_address_and_restores_the_page_from_it(
    alice_client: Client,
):
    # given the contacts page: its filter form pushes what it asks for into the address
    page = alice_client.get("/contacts/").content.decode()
    form = re.search(r'<form class="filters"[^>]*>', page).group(0)
    assert 'hx-push-url="true"' in form

    # when htmx swaps the table, it gets the table alone
    swap = alice_client.get("/contacts/", {"q": "erin"}, HTTP_HX_REQUEST="true")
    assert swap.templates[0].name == "contacts/_contacts_table.html"
    assert "HX-Request" in swap["Vary"]

    # and when the browser goes back to that address (a history restore), the whole page
    restore = alice_client.get(
        "/contacts/",
        {"q": "erin"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert restore.templates[0].name == "contacts/contacts.html"
    assert 'value="erin"' in restore.content.decode()


def _visible_text(response) -> str:
    return re.sub(r"<[^>]+>", " ", response.content.decode())


def test_it_shows_no_stray_none_on_any_page(world: World, alice_browser: Client):
    # given alice's account; when she opens every page, and the bulk confirmation
    problems = []
    for route in project_routes():
        if route.is_api:
            continue
        url = reverse(route.name, kwargs=_fill(route, world))
        response = alice_browser.get(url)
        is_page = response.status_code == 200 and "text/html" in response["Content-Type"]
        if is_page and re.search(r"\bNone\b", _visible_text(response)):
            problems.append(f"{url} ({route.name})")
    contact = world.extras["contact"]
    for action in ("delete", "unsubscribe"):
        confirm = alice_browser.post("/contacts/bulk/", {"ids": [contact.pk], "action": action})
        assert "Cancel" in _visible_text(confirm)
        if re.search(r"\bNone\b", _visible_text(confirm)):
            problems.append(f"bulk {action}")

    # then no page says "None"
    assert problems == []


def test_it_never_writes_an_s_after_an_apostrophe_for_a_name_ending_in_s(
    world: World, client: Client
):
    # given a message sent by an account whose name ends in "s", to erin
    from campaigns import tokens
    from campaigns.models import Campaign, Delivery

    account = world.account_a
    account.name = "Roasters"
    account.save(update_fields=["name"])
    campaign = Campaign.objects.create(
        account=account, name="News", subject="News", from_email="news@alpha.test", status="sent"
    )
    delivery = Delivery.objects.create(
        campaign=campaign, contact=world.extras["contact"], status=Delivery.Status.SENT
    )
    token = tokens.recipient_token(delivery.pk)

    # when erin opens each page her message links to, unsubscribes, and looks again
    pages = [
        client.get(f"/u/{token}"),
        client.get(f"/u/{token}/stop-tracking"),
        client.get(f"/v/{token}"),
        client.post(f"/u/{token}", {"List-Unsubscribe": "One-Click"}),
        client.get(f"/u/{token}"),
        client.get(f"/u/{token}/preferences"),
    ]

    # then the account is named, never as "Roasters's"
    texts = [_visible_text(response) for response in pages]
    assert all("Roasters" in text for text in texts)
    assert not any(re.search("Roasters['\u2019]s", text) for text in texts)
