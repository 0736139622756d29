"""One form of an address everywhere: ``ANA@BÜCHER.DE``, ``ana@bücher.de`` and
``ana@xn--bcher-kva.de`` are one person, stored once, suppressed by one hash, whichever
door they came in by (forms, API, import, suppression lists, the public pages, the
providers' reports), and the suppression of any form stops mail to every form."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import re
from types import SimpleNamespace

import idna
import pytest
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Account, normalize_email
from accounts.throttling import login_identifier
from campaigns import forms as campaign_forms
from campaigns import sending
from campaigns import services as campaign_services
from campaigns.models import Campaign, Delivery
from contacts import selectors, services
from contacts.importing.jobs import import_configure, import_upload, run_import
from contacts.importing.mapping import check_email
from contacts.models import (
    Contact,
    DataRequest,
    ImportJob,
    Subscription,
    Suppression,
    email_sha256,
)
from privacy import erasure
from stats import bounces
from stats.bounces import Result
from tests.factories import World
from tests.stats.feedback_helpers import SECRET, basic_auth, send, with_esp_id

ANA_UNICODE = "ana@bücher.de"
ANA_UPPER = "ANA@BÜCHER.DE"
ANA = "ana@xn--bcher-kva.de"
HTML = "<p>Hi {{ first_name }}</p>"

# Database-backed properties: enough examples to meet the odd domains, few enough to keep
# the suite quick.
DB_PROPERTY = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _api(world: World) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")


def _json(client: Client, method: str, url: str, data: dict | None = None):
    return getattr(client, method)(url, data or {}, content_type="application/json")


def _import(world: World, emails: list[str], contact_list=None) -> ImportJob:
    """A CSV of ``emails`` through the real importer, into ``contact_list``."""
    content = "email,first name\n" + "".join(f"{email},Ana\n" for email in emails)
    job = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=contact_list or world.extras["list"],
        upload=SimpleUploadedFile("people.csv", content.encode(), content_type="text/csv"),
    )
    import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up at the fair",
        update_existing=False,
    )
    return run_import(job.pk)


def _suppress_on_page(client: Client, email: str) -> None:
    response = client.post("/suppressions/add/", {"emails": email, "reason": "manual"})
    assert response.status_code in (200, 302), response.content


def _contacts_of(world: World, expected: str) -> list[Contact]:
    return list(Contact.objects.for_account(world.account_a).filter(email__iexact=expected))


def _start(campaign: Campaign, django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=False):
        campaign_services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def _campaign(world: World, contact_list) -> Campaign:
    world.account_a.postal_address = "1 Alpha Road, Lisbon"
    world.account_a.save()
    return campaign_services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Autumn",
        subject="Autumn",
        from_email="news@alpha.test",
        html=HTML,
        lists=[contact_list],
    )


# --- The one normalization --------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", [ANA_UNICODE, ANA_UPPER, ANA, "Ana@XN--BCHER-KVA.DE", f"  {ANA_UNICODE}\t"]
)
def test_it_normalizes_every_form_of_a_unicode_domain_to_its_a_labels(typed):
    # when any form of ana's address is normalized or hashed
    normalized = normalize_email(typed)

    # then it is the one form: trimmed, lower-case, domain in A-labels; one hash
    assert normalized == ANA
    assert email_sha256(typed) == _sha256(ANA)
    assert services.clean_email(typed) == ANA
    assert check_email(typed) == (ANA, "")


def test_it_keeps_the_local_part_and_an_ascii_domain_as_missive_always_did():
    # the local part is only lower-cased (its meaning is the receiving server's); an
    # ASCII domain is only lower-cased
    assert normalize_email(" Ana.Maria+News@Bücher.DE ") == "ana.maria+news@xn--bcher-kva.de"
    assert normalize_email("Frank@Example.COM") == "frank@example.com"
    # IDNA 2008 with the UTS 46 mapping: full-width letters and ideographic dots fold
    assert normalize_email("ana@\uff42ücher\u3002de") == ANA


@pytest.mark.parametrize("typed", ["ana@bü cher.de", "ana@xn--zz.de", "ana@" + "ü" * 70 + ".de"])
def test_it_refuses_a_domain_that_has_no_a_label_form_saying_so(typed):
    # when an address whose domain cannot be written in A-labels is normalized
    with pytest.raises(ValidationError) as refused:
        normalize_email(typed)

    # then the message says what is wrong; every entry point refuses it the same way
    assert "not a valid internet domain name" in refused.value.messages[0]
    with pytest.raises(ValidationError):
        services.clean_email(typed)
    email, reason = check_email(typed)
    assert email is None
    assert "invalid domain" in reason


def test_an_import_rejects_an_a_label_that_stands_for_no_domain(world):
    # when a file has an address whose A-label is not valid punycode, and ana's
    job = _import(world, ["ana@xn--zz.de", "Ana@XN--BCHER-KVA.DE"])

    # then that row is rejected saying why, and ana is imported in the one form
    [reject] = job.rejects.all()
    assert "invalid domain" in reject.reason
    assert job.created_count == 1
    assert [c.email for c in _contacts_of(world, ANA)] == [ANA]


def test_a_login_attempt_with_an_impossible_domain_is_still_counted(rf):
    # given a login form posted with an address no domain can have
    request = rf.post("/accounts/login/", {"login": "Mallory@bü cher.de"})

    # then the throttle counts it under what was typed, instead of failing
    assert login_identifier(request, None) == "mallory@bü cher.de"
    assert login_identifier(request, {"email": ANA_UPPER}) == ANA


def test_a_test_send_goes_to_the_normalized_addresses():
    # when alice asks for a test to a Unicode domain in capitals
    form = campaign_forms.TestSendForm(
        {"recipients": f"{ANA_UPPER}, Bob@Example.com"}, account=Account(name="Unsaved")
    )

    # then the addresses are the ones Missive mails and checks suppressions with
    assert form.is_valid(), form.errors
    assert form.cleaned_data["recipients"] == [ANA, "bob@example.com"]


@pytest.mark.parametrize("search", ["bücher", "BÜCHER.DE", ANA_UPPER, "xn--bcher"])
def test_a_contact_is_found_by_the_domain_as_people_write_it(world, alice_client, search):
    # given ana, stored with her domain in A-labels
    services.contact_create(account=world.account_a, actor=world.alice, email=ANA_UNICODE)

    # when alice searches the contacts page as she would write the domain
    response = alice_client.get("/contacts/", {"q": search})

    # then ana is found, and erin is not
    body = response.content.decode()
    assert response.status_code == 200
    assert ANA in body
    assert "erin@alpha.test" not in body


# --- A suppressed Unicode address: never imported, never mailed ------------------------------


def test_a_suppressed_unicode_address_cannot_be_imported_in_either_form(world, alice_client):
    # given ana's address suppressed as she wrote it, with its Unicode domain
    _suppress_on_page(alice_client, ANA_UNICODE)

    # when a file names her in A-labels and in capitals
    job = _import(world, [ANA, ANA_UPPER, "zoe@example.com"])

    # then she is one row, suppressed, and no contact; zoe is imported
    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.suppressed_count, job.duplicate_count) == (1, 1, 1)
    assert _contacts_of(world, ANA) == []
    assert not Contact.objects.filter(email__icontains="bücher").exists()


def test_a_suppressed_punycode_address_cannot_be_imported_or_added_in_unicode_form(
    world, alice_client
):
    # given ana's address suppressed in A-labels
    _suppress_on_page(alice_client, ANA)
    newsletter = world.extras["list"]

    # when a file names her with the Unicode domain, and alice adds her by hand
    job = _import(world, [ANA_UNICODE])
    response = alice_client.post(
        "/contacts/new/",
        {
            "email": ANA_UPPER,
            "first_name": "Ana",
            "lists": [newsletter.pk],
            "legal_basis": "consent",
            "consent_text": "Asked at the counter",
        },
    )

    # then neither way makes her a contact
    assert (job.created_count, job.suppressed_count) == (0, 1)
    assert response.status_code == 200
    assert "suppression list" in response.content.decode()
    assert Contact.objects.filter(account=world.account_a).count() == 1  # erin


@pytest.mark.parametrize(
    ("contact_form", "suppressed_form"),
    [(ANA_UNICODE, "ANA@XN--BCHER-KVA.DE"), (ANA, ANA_UPPER)],
    ids=["contact-unicode-suppressed-alabel", "contact-alabel-suppressed-unicode"],
)
def test_the_snapshot_leaves_out_a_contact_suppressed_in_the_other_form(
    world, django_capture_on_commit_callbacks, contact_form, suppressed_form
):
    # given ana on the newsletter, added in one form, and suppressed in the other
    newsletter = world.extras["list"]
    services.contact_create(
        account=world.account_a, actor=world.alice, email=contact_form, lists=[newsletter]
    )
    response = _json(_api(world), "post", "/api/v1/suppressions/", {"email": suppressed_form})
    assert response.status_code == 201

    # when a campaign to the newsletter starts
    campaign = _start(_campaign(world, newsletter), django_capture_on_commit_callbacks)

    # then its snapshot has erin only, and ana is counted as excluded
    assert campaign.recipients_count == 1
    assert campaign.excluded_count == 1
    assert list(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", flat=True)
    ) == ["erin@alpha.test"]


def test_the_send_claim_skips_a_contact_suppressed_in_the_other_form_after_the_snapshot(
    world, alice_client, django_capture_on_commit_callbacks
):
    # given ana on the newsletter, added with the Unicode domain, and a started campaign
    newsletter = world.extras["list"]
    services.contact_create(
        account=world.account_a, actor=world.alice, email=ANA_UPPER, lists=[newsletter]
    )
    campaign = _start(_campaign(world, newsletter), django_capture_on_commit_callbacks)
    assert campaign.recipients_count == 2

    # when, before its batch is sent, her A-label form is suppressed
    _suppress_on_page(alice_client, ANA)
    sending.send_batch(campaign.pk)

    # then only erin receives the campaign, and ana's delivery is skipped
    assert [m.to for m in mail.outbox] == [["erin@alpha.test"]]
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.skipped_count) == (1, 1)


def test_a_bounce_naming_the_other_form_finds_the_delivery_and_suppresses_her(world):
    # given a campaign sent to ana, who signed up with her Unicode domain
    newsletter = services.list_create(account=world.account_a, actor=world.alice, name="Ana's")
    services.contact_create(
        account=world.account_a, actor=world.alice, email=ANA_UNICODE, lists=[newsletter]
    )
    delivery = send(world, lists=[newsletter])
    support = f"{delivery.campaign.account_id}-{delivery.campaign_id}-{delivery.pk}"

    # when a mail server's failure notice names her in A-labels, quoting only the support
    # header of the message
    raw = (
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mail.example.org\r\nTo: news@alpha.test\r\n"
        "Subject: failure notice\r\n\r\n"
        "Hi. This is the qmail-send program at mail.example.org.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{ANA}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        f"Message-ID: <rewritten@relay.example.net>\r\nX-Missive-Campaign: {support}\r\n"
    ).encode()

    # then it is her bounce, and her one hash is suppressed
    assert bounces.process_message(raw) == Result.BOUNCE
    assert selectors.is_suppressed(world.account_a, ANA_UPPER)
    assert Suppression.objects.get(account=world.account_a, reason="hard_bounce").email_sha256 == (
        _sha256(ANA)
    )


# --- Rows stored before there was one normalization ------------------------------------------


def _migrate_addresses() -> None:
    module = importlib.import_module("contacts.migrations.0005_normalize_addresses")
    module.normalize_addresses(apps, SimpleNamespace(connection=connection))


def _legacy(contact: Contact, email: str, **fields: object) -> Contact:
    """As an older version stored it: written past today's normalization."""
    Contact.objects.filter(pk=contact.pk).update(email=email, **fields)
    contact.refresh_from_db()
    return contact


def test_the_migration_merges_the_two_forms_of_one_person_into_the_older_contact(
    world, django_capture_on_commit_callbacks
):
    # given ana twice in account A: first added by hand with the Unicode domain (on the
    # newsletter), later imported in A-labels (on "Fair", unsubscribed from the newsletter)
    newsletter = world.extras["list"]
    fair = services.list_create(account=world.account_a, actor=world.alice, name="Fair")
    older = services.contact_create(
        account=world.account_a, actor=world.alice, email="old1@example.com", lists=[newsletter]
    )
    older = _legacy(older, ANA_UNICODE, created_at=timezone.now() - timezone.timedelta(days=30))
    newer = services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email=ANA,
        last_name="Silva",
        lists=[newsletter, fair],
    )
    Subscription.objects.filter(contact=newer, contact_list=newsletter).update(
        status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=timezone.now()
    )
    # and a campaign already sent to the newer one, and her data request on record
    campaign = _start(_campaign(world, fair), django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(campaign=campaign)
    request = DataRequest.objects.create(
        account=world.account_a, contact=newer, kind="access", email_sha256=_sha256(ANA)
    )

    # when the migration runs
    _migrate_addresses()

    # then ana is one contact, the older one, in the one form, with the newer one's data
    [ana] = _contacts_of(world, ANA)
    assert (ana.pk, ana.email, ana.last_name) == (older.pk, ANA, "Silva")
    assert not Contact.objects.filter(pk=newer.pk).exists()
    statuses = dict(ana.subscriptions.values_list("contact_list__name", "status"))
    assert statuses == {"Alpha Sentinel News": "unsubscribed", "Fair": "subscribed"}
    delivery.refresh_from_db()
    request.refresh_from_db()
    assert (delivery.contact_id, request.contact_id) == (ana.pk, ana.pk)


def test_the_migration_gives_suppressions_hashed_in_the_unicode_form_their_a_label_twin(
    world, django_capture_on_commit_callbacks
):
    # given contacts stored in each form, and suppressions an older version hashed from
    # the other form: ana's by account A, zoe's on the platform-wide list
    newsletter = world.extras["list"]
    ana = services.contact_create(
        account=world.account_a, actor=world.alice, email="old2@example.com", lists=[newsletter]
    )
    _legacy(ana, ANA_UNICODE)
    zoe = services.contact_create(
        account=world.account_a, actor=world.alice, email="zoe@xn--bcher-kva.de", lists=[newsletter]
    )
    Suppression.objects.create(account=world.account_a, email_sha256=_sha256(ANA_UNICODE))
    Suppression.objects.create(
        account=None, email_sha256=_sha256("zoe@bücher.de"), reason="do_not_contact"
    )

    # when the migration runs
    _migrate_addresses()

    # then each suppression also stands under the hash of the one form, in its own scope
    assert Suppression.objects.filter(account=world.account_a, email_sha256=_sha256(ANA)).exists()
    twin = Suppression.objects.get(account=None, email_sha256=email_sha256(zoe.email))
    assert twin.reason == "do_not_contact"
    # and a campaign to the newsletter, whose snapshot hashes stored addresses in SQL,
    # reaches erin only
    campaign = _start(_campaign(world, newsletter), django_capture_on_commit_callbacks)
    assert (campaign.recipients_count, campaign.excluded_count) == (1, 2)


def test_an_address_known_only_by_its_unicode_hash_is_still_found_by_any_form(world):
    # given a suppression an older version hashed from the Unicode form, of an address
    # no contact has (so no migration could give it a twin)
    Suppression.objects.create(account=None, email_sha256=_sha256(ANA_UNICODE))

    # then every lookup by address finds it, whatever form is asked about
    for form in (ANA, ANA_UPPER, ANA_UNICODE):
        assert selectors.is_suppressed(world.account_a, form)
    # and nobody can be added to a list under it
    with pytest.raises(ValidationError):
        services.contact_create(
            account=world.account_a, actor=world.alice, email=ANA, lists=[world.extras["list"]]
        )


def _suppress_unicode_hash_only(world: World, scope: str) -> Suppression:
    """An entry an older version hashed from ana's Unicode form, with no twin under the
    A-label hash (she had no contact when the migration ran): the platform's "do not
    contact" list or account A's own list."""
    return Suppression.objects.create(
        account=None if scope == "platform" else world.account_a,
        email_sha256=_sha256(ANA_UNICODE),
        reason="do_not_contact" if scope == "platform" else "erasure",
    )


SCOPES = ["platform", "account"]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("form", [ANA_UNICODE, ANA, ANA_UPPER])
def test_an_import_keeps_out_an_address_suppressed_only_under_its_unicode_hash(world, scope, form):
    # given ana suppressed only under the hash of her Unicode form
    _suppress_unicode_hash_only(world, scope)

    # when a file names her, in any form, beside zoe
    job = _import(world, [form, "zoe@example.com"])

    # then she is counted as suppressed and is neither a contact nor subscribed; zoe is
    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.suppressed_count) == (1, 1)
    assert _contacts_of(world, ANA) == []
    assert not Subscription.objects.filter(contact__email=ANA).exists()
    subscribed = Subscription.objects.filter(contact_list=world.extras["list"])
    assert set(subscribed.values_list("contact__email", flat=True)) == {
        "erin@alpha.test",
        "zoe@example.com",
    }


def _ana_on_the_newsletter(world: World) -> Contact:
    return services.contact_create(
        account=world.account_a, actor=world.alice, email=ANA, lists=[world.extras["list"]]
    )


@pytest.mark.parametrize("scope", SCOPES)
def test_the_snapshot_leaves_out_a_contact_suppressed_only_under_her_unicode_hash(
    world, django_capture_on_commit_callbacks, scope
):
    # given ana subscribed in A-labels, then suppressed only under her Unicode form's hash
    _ana_on_the_newsletter(world)
    _suppress_unicode_hash_only(world, scope)

    # when a campaign to the newsletter starts
    campaign = _start(_campaign(world, world.extras["list"]), django_capture_on_commit_callbacks)

    # then its snapshot has erin only, and ana is counted as excluded
    assert (campaign.recipients_count, campaign.excluded_count) == (1, 1)
    assert list(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", flat=True)
    ) == ["erin@alpha.test"]


@pytest.mark.parametrize("scope", SCOPES)
def test_the_send_claim_skips_a_contact_suppressed_only_under_her_unicode_hash(
    world, django_capture_on_commit_callbacks, scope
):
    # given ana subscribed in A-labels and in the snapshot of a started campaign
    ana = _ana_on_the_newsletter(world)
    campaign = _start(_campaign(world, world.extras["list"]), django_capture_on_commit_callbacks)
    assert campaign.recipients_count == 2

    # when, before its batch is claimed, she is suppressed under her Unicode form's hash
    _suppress_unicode_hash_only(world, scope)
    claimed = sending.claim_batch(campaign, [world.extras["list"].pk], 10)

    # then the claim leaves her out, for erin only
    assert [r.email for r in claimed.recipients] == ["erin@alpha.test"]
    assert claimed.skipped == [Delivery.objects.get(campaign=campaign, contact=ana).pk]


@pytest.mark.parametrize("scope", SCOPES)
def test_a_batch_never_mails_a_contact_suppressed_only_under_her_unicode_hash(
    world, django_capture_on_commit_callbacks, scope
):
    # given ana subscribed in A-labels and in the snapshot of a started campaign
    ana = _ana_on_the_newsletter(world)
    campaign = _start(_campaign(world, world.extras["list"]), django_capture_on_commit_callbacks)

    # when she is suppressed under her Unicode form's hash and the batch is sent
    _suppress_unicode_hash_only(world, scope)
    sending.send_batch(campaign.pk)

    # then only erin receives the campaign, and ana's delivery is skipped
    assert [m.to for m in mail.outbox] == [["erin@alpha.test"]]
    delivery = Delivery.objects.get(campaign=campaign, contact=ana)
    assert delivery.status == Delivery.Status.SKIPPED
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.skipped_count) == (1, 1)


# --- Addresses an older version accepted with a domain that has no A-label form --------------

NO_IDNA = "ana@i❤.ws"


def test_a_contact_whose_domain_has_no_a_label_form_can_still_be_erased(world):
    # given a contact stored by an older version with a domain IDNA 2008 refuses
    contact = services.contact_create(
        account=world.account_a, actor=world.alice, email="old3@example.com"
    )
    contact = _legacy(contact, NO_IDNA)

    # when alice erases her
    erased = erasure.erase_contact(contact=contact, actor=world.alice, reason="customer")

    # then she is gone, and suppressed under the hash older versions kept for her
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert erased.email_sha256 == _sha256(NO_IDNA)
    assert Suppression.objects.filter(
        account=world.account_a, email_sha256=_sha256(NO_IDNA), reason="erasure"
    ).exists()
    # and every lookup by that address finds the suppression
    assert selectors.is_suppressed(world.account_a, NO_IDNA.upper())


# --- Every entry point agrees (properties) ---------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Letters whose upper case lower-cases back to themselves (not ß, not the dotless i).
_ACCENTED = "äöüéèçñøåíóúâêœ"
_unicode_label = st.text(alphabet=_LETTERS + _ACCENTED, min_size=1, max_size=12).filter(
    lambda label: not label.isascii()
)
_addresses = st.tuples(
    st.text(alphabet=_LETTERS + _LETTERS.upper(), min_size=1, max_size=10),
    st.lists(_unicode_label | st.text(alphabet=_LETTERS, min_size=2, max_size=8), max_size=1),
    _unicode_label,
    st.sampled_from(["de", "fr", "com", "org", "pt"]),
)
_serial = itertools.count()


def _forms(parts: tuple[str, list[str], str, str]) -> tuple[str, list[str]]:
    """The one normalized address, and four ways people and systems write it. A serial
    number keeps the examples of one run apart, in one database."""
    local, sub, label, tld = parts
    local = f"{local}{next(_serial)}"
    domain = ".".join([*sub, label, tld])
    alabels = idna.encode(domain, uts46=True).decode()
    expected = f"{local.lower()}@{alabels}"
    return expected, [
        f"{local}@{domain}",
        f"{local.upper()}@{domain.upper()}",
        f"{local}@{alabels}",
        f" {local}@{alabels.upper()} ",
    ]


@DB_PROPERTY
@given(parts=_addresses)
def test_every_way_in_makes_one_person_one_contact_in_one_form(world, alice_client, parts):
    expected, (typed, upper, alabel, spaced) = _forms(parts)
    api = _api(world)
    newsletter = world.extras["list"]
    other = services.list_create(
        account=world.account_a, actor=world.alice, name=f"Other {next(_serial)}"
    )

    # when the person is added on the contact page in one form
    response = alice_client.post(
        "/contacts/new/",
        {
            "email": typed,
            "first_name": "Ana",
            "lists": [newsletter.pk],
            "legal_basis": "consent",
            "consent_text": "At the counter",
        },
    )
    assert response.status_code == 302, response.content
    [contact] = _contacts_of(world, expected)
    assert contact.email == expected

    # and then reached through the API, and an import, in every other form
    upserted = _json(api, "post", "/api/v1/contacts/upsert/", {"email": upper, "last_name": "S"})
    subscribed = _json(api, "post", f"/api/v1/lists/{other.pk}/subscriptions/", {"email": alabel})
    created = _json(api, "post", "/api/v1/contacts/", {"email": spaced})
    found = api.get("/api/v1/contacts/", {"email": upper}).json()["results"]
    job = _import(world, [alabel, upper, spaced], contact_list=other)

    # then every one of them found the same contact, and nothing made a second one
    assert upserted.status_code == 200, upserted.json()
    assert upserted.json()["id"] == contact.pk
    assert subscribed.status_code == 201, subscribed.json()
    assert subscribed.json()["email"] == expected
    assert created.status_code in (400, 409)  # refused as already a contact
    assert [c["id"] for c in found] == [contact.pk]
    assert job.created_count == 0
    assert _contacts_of(world, expected) == [contact]
    assert set(contact.subscriptions.values_list("contact_list_id", flat=True)) == {
        newsletter.pk,
        other.pk,
    }


@DB_PROPERTY
@given(parts=_addresses)
@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_every_way_to_suppress_an_address_stores_one_hash_that_stops_every_form(
    world, alice_client, client, django_capture_on_commit_callbacks, tasks_inline, parts
):
    expected, (typed, upper, alabel, spaced) = _forms(parts)
    api = _api(world)
    cache.clear()  # the public pages count requests per IP
    mail.outbox.clear()
    digest = _sha256(expected)

    # when alice suppresses the address on the suppressions page in one form
    _suppress_on_page(alice_client, typed)
    # and her API key suppresses, and looks up, the other forms
    again = _json(api, "post", "/api/v1/suppressions/", {"email": upper})
    looked_up = api.get("/api/v1/suppressions/", {"email": spaced}).json()["results"]
    # and a file names the person in A-labels
    job = _import(world, [alabel])

    # then there is one entry, under the hash of the one form, and it stopped the import
    [entry] = Suppression.objects.filter(account=world.account_a, email_sha256=digest)
    assert again.status_code == 200
    assert again.json()["id"] == entry.pk
    assert [e["id"] for e in looked_up] == [entry.pk]
    assert (job.created_count, job.suppressed_count) == (0, 1)

    # when the person asks, on the public page, never to be contacted, in capitals
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/do-not-contact/", {"email": upper, "website": ""})
    assert response.status_code == 200
    [message] = mail.outbox
    link = re.search(r"http\S+/do-not-contact/confirm/\S+/", message.body).group(0)
    client.post(link.removeprefix(settings.MISSIVE_BASE_URL))

    # then the mail went to the one form, and the platform-wide entry is its hash
    assert message.to == [expected]
    assert Suppression.objects.platform().filter(email_sha256=digest).count() == 1
    for form in (typed, upper, alabel, spaced):
        assert selectors.is_suppressed(world.account_b, form)


@DB_PROPERTY
@given(parts=_addresses)
@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_the_providers_reports_and_the_persons_requests_find_them_in_any_form(
    world, client, monkeypatch, django_capture_on_commit_callbacks, tasks_inline, parts
):
    expected, (typed, upper, _alabel, spaced) = _forms(parts)
    cache.clear()
    mail.outbox.clear()
    serial = next(_serial)

    # given the person subscribed through the API in one form, and a campaign sent to them
    own_list = services.list_create(
        account=world.account_a, actor=world.alice, name=f"Own {serial}"
    )
    response = _json(
        _api(world), "post", f"/api/v1/lists/{own_list.pk}/subscriptions/", {"email": upper}
    )
    assert response.status_code == 201, response.json()
    delivery = with_esp_id(send(world, name=f"Offer {serial}", lists=[own_list]), f"pm-{serial}")
    assert delivery.contact.email == expected

    # when the provider reports a hard bounce naming the address in another form
    bounce = {
        "RecordType": "Bounce",
        "ID": 900000000 + serial,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": f"pm-{serial}",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": typed,
        "BouncedAt": timezone.now().isoformat(),
    }
    reply = client.post(
        reverse("anymail:postmark_tracking_webhook"),
        data=bounce,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(),
    )

    # then the person's one hash is suppressed for the account
    assert reply.status_code == 200, reply.content
    assert Suppression.objects.filter(
        account=world.account_a, email_sha256=_sha256(expected), reason="hard_bounce"
    ).exists()

    # when the person asks for their data, writing the address in A-labels with spaces
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post("/your-data/", {"email": spaced, "website": ""})
    assert asked.status_code == 200

    # then the link goes to the one form, and opens on the account that holds them
    [message] = mail.outbox
    assert message.to == [expected]
    path = re.search(r"http://testserver(/your-data/[^/\s\"]+/)", message.body).group(1)
    assert world.account_a.name in client.get(path).content.decode()
