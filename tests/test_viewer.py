"""The viewer: vera is a member of account A whose role may only VIEW (accounts/roles.py).
She reads every page and endpoint that shows the account; every form, action, download
and write endpoint refuses her, and a refused request leaves every row of the account,
the mail and the task queue as they were.

The lists below hold the member-side URLs of the project, named as in the URLconf; their
keywords are filled from ``tests.factories.SAMPLES`` (objects of account A).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.factories import FREE_KEYWORDS, SAMPLES, World
from tests.tenancy import project_routes, victim_fingerprint

# What a viewer reads: 200 each.
READ_PAGES = [
    "dashboard",
    "members",
    "lists",
    "list_detail",
    "list_form",
    "contacts",
    "contact_detail",
    "attributes",
    "imports",
    "import_detail",
    "import_progress",
    "import_rejects",
    "import_warnings",
    "suppressions",
    "campaigns",
    "campaign_templates",
    "campaign_detail",
    "campaign_preview",
    "campaign_preview_contacts",
    "campaign_progress",
    "campaign_report",
    "campaign_comparison",
]

# What the role does not show: the account's settings and security, its API keys, the
# data requests log, and every download (exports need the EXPORT permission).
REFUSED_PAGES = [
    "account_settings",
    "security",
    "api_keys",
    "data_requests",
    "account_export",
    "contacts_export",
    "list_export",
    "contact_export",
    "suppressions_export",
    "campaign_report_csv",
]


def _csv(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


# Every form and action a viewer is refused with 403, each with what an editor would
# post to it (so that a missing check would change something, and the test would say so).
Data = Callable[[World], dict]
WRITE_PAGES: list[tuple[str, Data]] = [
    ("list_new", lambda w: {"name": "Viewer's list", "form_consent_text": "Yes"}),
    ("list_edit", lambda w: {"name": "Renamed by the viewer", "form_consent_text": "Yes"}),
    ("list_delete", lambda w: {}),
    ("contact_new", lambda w: {"email": "new@example.com", "lists": [w.extras["list"].pk]}),
    (
        "contacts_bulk",
        lambda w: {"action": "delete", "ids": [w.extras["contact"].pk], "confirmed": "yes"},
    ),
    ("contact_delete", lambda w: {}),
    ("contact_erase", lambda w: {}),
    ("attribute_rename", lambda w: {"name": "town"}),
    ("attribute_retype", lambda w: {"type": "number", "drops": "1"}),
    ("attribute_delete", lambda w: {}),
    ("import_upload", lambda w: {"file": _csv("people.csv", "email\na@example.com\n")}),
    ("import_cancel", lambda w: {}),
    ("suppressions_add", lambda w: {"emails": "new@example.com", "reason": "manual"}),
    (
        "suppressions_import",
        lambda w: {"file": _csv("blocked.csv", "email\nnew@example.com\n"), "reason": "manual"},
    ),
    ("suppression_remove", lambda w: {}),
    ("campaign_new", lambda w: {"name": "Viewer's campaign", "lists": [w.extras["list"].pk]}),
    ("campaign_test", lambda w: {"recipients": "vera@alpha.test"}),
    ("campaign_delete", lambda w: {}),
    ("campaign_start", lambda w: {}),
    ("campaign_schedule", lambda w: {"when": "2031-07-01T09:30"}),
    ("campaign_unschedule", lambda w: {}),
    ("campaign_pause", lambda w: {}),
    ("campaign_resume", lambda w: {}),
    ("campaign_cancel", lambda w: {}),
    ("campaign_save_template", lambda w: {"name": "Viewer's template"}),
    ("campaign_duplicate", lambda w: {}),
    ("template_delete", lambda w: {}),
    ("member_invite", lambda w: {"email": "newcomer@example.com", "role": "viewer"}),
    ("member_role", lambda w: {"role": "viewer"}),  # bob's membership
    ("member_remove", lambda w: {}),  # bob's membership (leaving herself is hers to do)
    ("invitation_resend", lambda w: {}),
    ("invitation_revoke", lambda w: {}),
    ("api_keys", lambda w: {"name": "Viewer's key", "role": "viewer"}),
    ("api_key_revoke", lambda w: {}),
    ("account_settings", lambda w: {"name": "Renamed by the viewer"}),
    ("security", lambda w: {"require_mfa": "on"}),
    ("account_close", lambda w: {"confirm_name": w.account_a.name}),
]

# Pages a viewer reads whose form she may not post: refused by a redirect back to the
# page, with the reason.
REDIRECTED_WRITES: list[tuple[str, Data, str]] = [
    (
        "contact_detail",
        lambda w: {"email": "changed@alpha.test", "first_name": "Changed"},
        "Your role cannot edit contacts.",
    ),
    (
        "attributes",
        lambda w: {"name": "plan", "type": "text"},
        "Your role cannot declare attributes.",
    ),
    (
        "import_detail",  # an uploaded file waiting for its mapping
        lambda w: {
            "col_0": "email",
            "legal_basis": "consent",
            "consent_text": "They signed up at the shop.",
        },
        "Your role cannot start imports.",
    ),
    (
        "campaign_detail",
        lambda w: {"name": "Hacked", "subject": "Hacked", "html": "<p>Hacked</p>"},
        "This campaign cannot be changed.",
    ),
]

API_READS = [
    "api-account",
    "api-members",
    "api-lists",
    "api-list",
    "api-contacts",
    "api-contact",
    "api-attributes",
    "api-attribute",
    "api-suppressions",
    "api-suppression",
    "api-imports",
    "api-import",
    "api-import-rejects",
    "api-import-warnings",
    "api-import-rejects-csv",
    "api-campaigns",
    "api-campaign",
    "api-campaign-progress",
    "api-campaign-checks",
    "api-campaign-report",
    "api-templates",
    "api-template",
]

# Every write of the API, and its downloads, with what an editor's key would send.
API_WRITES: list[tuple[str, str, dict]] = [
    ("patch", "api-account", {"name": "Renamed by the viewer"}),
    ("post", "api-lists", {"name": "Viewer's list"}),
    ("patch", "api-list", {"name": "Renamed by the viewer"}),
    ("delete", "api-list", {}),
    ("post", "api-list-subscribe", {"email": "new@example.com"}),
    ("post", "api-list-unsubscribe", {"email": "erin@alpha.test"}),
    ("post", "api-contacts", {"email": "new@example.com"}),
    ("post", "api-contacts-upsert", {"email": "new@example.com"}),
    ("patch", "api-contact", {"first_name": "Changed"}),
    ("delete", "api-contact", {}),
    ("post", "api-contact-erase", {}),
    ("post", "api-attributes", {"name": "plan", "type": "text"}),
    ("patch", "api-attribute", {"name": "town"}),
    ("delete", "api-attribute", {}),
    ("post", "api-suppressions", {"email": "new@example.com"}),
    ("delete", "api-suppression", {}),
    ("post", "api-list-imports", {}),
    ("post", "api-import-start", {"mapping": {"0": "email"}}),
    ("post", "api-import-cancel", {}),
    ("post", "api-campaigns", {"name": "Viewer's campaign"}),
    ("patch", "api-campaign", {"name": "Hacked"}),
    ("delete", "api-campaign", {}),
    ("post", "api-campaign-test", {"recipients": ["vera@alpha.test"]}),
    ("post", "api-campaign-start", {}),
    ("post", "api-campaign-schedule", {"send_at": "2031-07-01T09:30:00Z"}),
    ("post", "api-campaign-unschedule", {}),
    ("post", "api-campaign-pause", {}),
    ("post", "api-campaign-resume", {}),
    ("post", "api-campaign-cancel", {}),
    ("post", "api-campaign-duplicate", {}),
    ("post", "api-templates", {"name": "Viewer's template", "html": "<p>Hi</p>"}),
    ("patch", "api-template", {"name": "Renamed by the viewer"}),
    ("delete", "api-template", {}),
    ("get", "api-contacts-export", {}),
    ("get", "api-list-export", {}),
    ("get", "api-contact-export", {}),
]


@cache
def _keywords() -> dict[str, tuple[str, ...]]:
    return {route.name: route.keywords for route in project_routes()}


def url_of(name: str, world: World) -> str:
    kwargs = {
        keyword: SAMPLES[keyword](world) if keyword in SAMPLES else FREE_KEYWORDS[keyword]
        for keyword in _keywords()[name]
    }
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def unchanged(world, enqueued, django_capture_on_commit_callbacks) -> Callable:
    """``with unchanged():`` the block changes no row of account A, hands no task to the
    workers and sends no mail (on-commit callbacks run, as after a real request)."""

    def state() -> dict[str, list]:
        rows = victim_fingerprint(world)
        # A key's use is recorded on it, refused or not: that is not a change she made.
        for key in rows.get("accounts.ApiKey", []):
            key.pop("last_used_at")
        return rows

    @contextmanager
    def check() -> Iterator[None]:
        before = state()
        with django_capture_on_commit_callbacks(execute=True):
            yield
        assert state() == before
        assert enqueued == []
        assert mail.outbox == []

    return check


@pytest.fixture(params=["session", "key"])
def viewer_api_client(request, vera_client, viewer_api) -> Client:
    """The API as the viewer: logged in, or with a read-only key."""
    return vera_client if request.param == "session" else viewer_api


@pytest.mark.parametrize("name", READ_PAGES)
def test_a_viewer_reads_every_page_of_the_account(name, world, vera_client):
    response = vera_client.get(url_of(name, world))

    assert response.status_code == 200


@pytest.mark.parametrize("name", REFUSED_PAGES)
def test_a_viewer_is_refused_settings_security_and_downloads(name, world, vera_client, unchanged):
    with unchanged():
        response = vera_client.get(url_of(name, world))

    assert response.status_code == 403


@pytest.mark.parametrize(("name", "data"), WRITE_PAGES, ids=[name for name, _ in WRITE_PAGES])
def test_a_viewer_is_refused_every_form_and_action(name, data, world, vera_client, unchanged):
    url = url_of(name, world)

    # when the viewer opens the form, then posts what an editor would
    with unchanged():
        opened = vera_client.get(url)
        posted = vera_client.post(url, data(world))

    # then both are refused, and nothing changed
    assert opened.status_code == 403
    assert posted.status_code == 403


@pytest.mark.parametrize(
    ("name", "data", "reason"), REDIRECTED_WRITES, ids=[name for name, *_ in REDIRECTED_WRITES]
)
def test_a_viewer_posting_a_form_she_reads_is_sent_back_with_the_reason(
    name, data, reason, world, vera_client, unchanged
):
    url = url_of(name, world)

    with unchanged():
        response = vera_client.post(url, data(world))

    assert (response.status_code, response["Location"]) == (302, url)
    assert reason in [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("name", API_READS)
def test_a_viewer_reads_every_api_endpoint_of_the_account(name, world, viewer_api_client):
    response = viewer_api_client.get(url_of(name, world))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "name", "payload"),
    API_WRITES,
    ids=[f"{method}-{name}" for method, name, _ in API_WRITES],
)
def test_a_viewer_is_refused_every_api_write_and_download(
    method, name, payload, world, viewer_api_client, unchanged
):
    url = url_of(name, world)

    with unchanged():
        if method == "get":
            response = viewer_api_client.get(url)
        else:
            response = getattr(viewer_api_client, method)(
                url, payload, content_type="application/json"
            )

    assert response.status_code == 403
