"""Recipients' data requests: a person, with no login, proves from an emailed link that
they read a mailbox, then sees, downloads, corrects, unsubscribes, objects to tracking or
erases their data at every customer that holds it; each customer is told by mail and in
its Data requests log."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import Account, AuditEntry, User
from accounts.roles import Role
from contacts import services
from contacts.importing.jobs import import_configure, import_upload, run_import
from contacts.models import Contact, DataRequest, Subscription, Suppression, email_sha256
from contacts.tokens import make_token
from privacy import data_requests
from tests.contacts.test_erasure import events_of, give_history
from tests.factories import World, add_member, make_user
from tests.workers import wait_until

URL = "/your-data/"
ERIN = "erin@alpha.test"
LINK = re.compile(r"http://testserver(/your-data/[^/\s\"]+/)")
ERASE_LINK = re.compile(r"http://testserver(/your-data/erase/[^/\s\"]+/)")
K = DataRequest.Kind


@pytest.fixture
def person(tasks_inline, django_capture_on_commit_callbacks) -> Client:
    """A person on the web. The mails are Celery tasks; here their logic is the subject,
    so they run in place when the transaction commits."""
    client = Client(REMOTE_ADDR="198.51.100.4")
    for method in ("get", "post"):
        plain = getattr(client, method)

        def committed(*args, _plain=plain, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return _plain(*args, **kwargs)

        setattr(client, method, committed)
    return client


def link_path(message: mail.EmailMessage) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def ask(person: Client, email: str = ERIN) -> str:
    """Ask for the link and return its path, as found in the mail."""
    response = person.post(URL, {"email": email, "website": ""})
    assert response.status_code == 200
    [message] = [m for m in mail.outbox if m.to == [email]]
    mail.outbox.clear()
    return link_path(message)


def erase_link(person: Client, path: str, account_id: int) -> str:
    """Press "erase" on the overview, and return the path of the one-time link mailed."""
    response = person.post(f"{path}{account_id}/erase/")
    assert response.status_code == 200, response.content
    [message] = [m for m in mail.outbox if ERASE_LINK.search(m.body)]
    mail.outbox.remove(message)
    return ERASE_LINK.search(message.body).group(1)


def erase(person: Client, path: str, account_id: int):
    """The whole erasure: the button, the link in the mail, the confirmation."""
    return person.post(erase_link(person, path, account_id))


def page(response) -> str:
    """The page as the person sees it, without its per-visitor CSRF token."""
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", response.content.decode())


@pytest.fixture
def erin(world: World) -> Contact:
    return world.extras["contact"]


@pytest.fixture
def erin_at_bravo(world: World) -> Contact:
    """The same person on a list of account B."""
    bravo_news = services.list_create(account=world.account_b, actor=world.charlie, name="Bravo")
    return services.contact_create(
        account=world.account_b, actor=world.charlie, email=ERIN, lists=[bravo_news]
    )


# --- Asking for the link ------------------------------------------------------------------


def test_it_shows_the_form_with_a_honeypot(client, db):
    response = client.get(URL)

    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="email"' in body
    assert 'type="text" name="website"' in body


def test_it_mails_a_signed_link_that_expires_in_a_day(person, db):
    response = person.post(URL, {"email": " Erin@Alpha.test ", "website": ""})

    assert response.status_code == 200
    assert "a link is on its way" in response.content.decode()
    [message] = mail.outbox
    assert message.to == [ERIN]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.alternatives[0][1] == "text/html"
    assert link_path(message) in message.alternatives[0][0]
    assert "24 hours" in message.body


def test_it_answers_the_same_for_known_and_unknown_addresses(person, world):
    known = person.post(URL, {"email": ERIN})
    unknown = person.post(URL, {"email": "nobody@nowhere.test"})

    assert known.status_code == unknown.status_code == 200
    assert page(known) == page(unknown)
    assert sorted(m.to[0] for m in mail.outbox) == [ERIN, "nobody@nowhere.test"]


def test_it_pretends_and_sends_nothing_when_the_honeypot_is_filled(person, db):
    response = person.post(URL, {"email": ERIN, "website": "http://spam.test"})

    assert response.status_code == 200
    assert "a link is on its way" in response.content.decode()
    assert mail.outbox == []


def test_it_limits_each_ip_to_five_requests_an_hour(person, db):
    for n in range(5):
        assert person.post(URL, {"email": f"p{n}@example.com"}).status_code == 200

    response = person.post(URL, {"email": "p5@example.com"})

    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == 5
    # and another client address is still served
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.post(URL, {"email": "p6@example.com"}).status_code == 200


# --- The whole way, to an erasure ---------------------------------------------------------


def test_the_person_erases_their_data_and_the_customer_is_told(person, world, erin, erin_at_bravo):
    # given erin, on a list of account A with a campaign she opened, and on a list of B
    deliveries = give_history(erin, 2)

    # when she asks for her data and opens the link in the mail
    path = ask(person)
    overview = person.get(path)

    # then the page names both customers, and nothing has changed or been told
    body = overview.content.decode()
    assert overview.status_code == 200
    assert "Alpha Sentinel Corp" in body
    assert "Bravo Ltd" in body
    assert DataRequest.objects.count() == 0
    assert mail.outbox == []

    # when she opens the erase page for A (as a mail scanner could)
    button = f"{path}{world.account_a.pk}/erase/"
    explained = person.get(button)

    # then it says a confirmation link will be mailed, and nothing has changed
    assert explained.status_code == 200
    assert "Email me the link to erase my data" in explained.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()

    # when she presses the button, and opens the link mailed to her (as a scanner could)
    confirm_path = erase_link(person, path, world.account_a.pk)
    confirm = person.get(confirm_path)

    # then it asks for confirmation, and still nothing has changed
    assert confirm.status_code == 200
    assert "Erase my data" in confirm.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()
    assert mail.outbox == []

    # when she confirms
    done = person.post(confirm_path)

    # then, before the page answers, her data at A is gone and only a hash remains
    assert done.status_code == 200
    assert "erased" in done.content.decode()
    assert not Contact.objects.filter(pk=erin.pk).exists()
    assert events_of(deliveries) == 0
    suppression = Suppression.objects.for_account(world.account_a).get(
        email_sha256=email_sha256(ERIN)
    )
    assert suppression.reason == Suppression.Reason.ERASURE
    # and B keeps its contact
    assert Contact.objects.filter(pk=erin_at_bravo.pk).exists()

    # and A is told: a log row with the hash, an audit entry naming the person, a mail
    entry = DataRequest.objects.for_account(world.account_a).get()
    assert (entry.kind, entry.email_sha256, entry.contact) == (K.ERASURE, email_sha256(ERIN), None)
    assert entry.outcome.startswith("Erased")
    audit = AuditEntry.objects.for_account(world.account_a).get(action="contact.erased")
    assert audit.detail["reason"] == "data_request"
    assert audit.actor_label == data_requests.PERSON
    [notice] = mail.outbox
    assert notice.to == ["alice@alpha.test"]
    assert "Erasure" in notice.subject
    assert "/data-requests/" in notice.body
    assert ERIN not in notice.body
    assert not DataRequest.objects.for_account(world.account_b).exists()

    # and the overview now lists B only
    body = person.get(path).content.decode()
    assert "Alpha Sentinel Corp" not in body
    assert "Bravo Ltd" in body


def test_after_an_erasure_the_customer_sees_the_log_and_cannot_mail_the_address(
    person, world, erin, alice_client
):
    path = ask(person)
    erase(person, path, world.account_a.pk)

    # the Data requests log shows the erasure, with the hash and not the address
    log = alice_client.get("/data-requests/")
    body = log.content.decode()
    assert log.status_code == 200
    assert "Erasure" in body
    assert email_sha256(ERIN)[:6] in body
    assert ERIN not in body
    # she is gone from the contacts and the exports
    assert ERIN not in alice_client.get("/contacts/").content.decode()
    export = alice_client.get("/contacts/export.csv")
    assert ERIN not in b"".join(export.streaming_content).decode()
    # and a re-import skips her address as suppressed
    job = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile("back.csv", f"email\n{ERIN}\n".encode()),
    )
    import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Old customer file",
        update_existing=False,
    )
    job = run_import(job.pk)
    assert (job.created_count, job.suppressed_count) == (0, 1)
    assert not Contact.objects.filter(email=ERIN).exists()


def test_a_second_press_of_the_erase_button_changes_nothing_more(person, world, erin):
    path = ask(person)
    confirm_path = erase_link(person, path, world.account_a.pk)
    person.post(confirm_path)

    again = person.post(confirm_path)

    assert again.status_code == 404
    assert "This link is not valid" in again.content.decode()
    assert DataRequest.objects.count() == 1
    # and the overview's erase page now finds nothing to erase
    assert "Nothing held here" in person.get(f"{path}{world.account_a.pk}/erase/").content.decode()


# --- The other rights ---------------------------------------------------------------------


def test_the_person_downloads_their_data_as_json(person, world, erin):
    give_history(erin, 1)
    path = ask(person)

    response = person.post(f"{path}{world.account_a.pk}/download/")

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["contact"]["email"] == ERIN
    assert data["controller"]["name"] == "Alpha Sentinel Corp"
    assert data["subscriptions"][0]["consent_at"]
    assert len(data["deliveries"]) == 1
    assert len(data["events"]) == 3
    entry = DataRequest.objects.for_account(world.account_a).get()
    assert (entry.kind, entry.contact) == (K.EXPORT, erin)
    [notice] = mail.outbox
    assert "Export" in notice.subject


def test_the_person_sees_their_data_on_a_page(person, world, erin):
    path = ask(person)

    response = person.post(f"{path}{world.account_a.pk}/show/")

    body = response.content.decode()
    assert response.status_code == 200
    assert ERIN in body
    assert "Alpha Sentinel News" in body
    assert DataRequest.objects.for_account(world.account_a).get().kind == K.ACCESS


def test_the_person_corrects_their_name(person, world, erin):
    path = ask(person)

    response = person.post(
        f"{path}{world.account_a.pk}/correct/", {"first_name": " Erine ", "last_name": "Ames"}
    )

    assert response.status_code == 200
    erin.refresh_from_db()
    assert (erin.first_name, erin.last_name) == ("Erine", "Ames")
    entry = DataRequest.objects.for_account(world.account_a).get()
    assert entry.kind == K.CORRECTION
    assert entry.outcome == "Corrected their first name and last name."


def test_a_name_too_long_is_refused(person, world, erin):
    path = ask(person)

    response = person.post(f"{path}{world.account_a.pk}/correct/", {"first_name": "x" * 151})

    assert response.status_code == 400
    erin.refresh_from_db()
    assert erin.first_name == "Erin"
    assert not DataRequest.objects.exists()


def test_the_person_unsubscribes_from_everything(person, world, erin):
    second = services.list_create(account=world.account_a, actor=world.alice, name="Offers")
    services.subscription_subscribe(contact=erin, contact_list=second)
    path = ask(person)

    response = person.post(f"{path}{world.account_a.pk}/unsubscribe/")

    assert response.status_code == 200
    statuses = set(Subscription.objects.filter(contact=erin).values_list("status", flat=True))
    assert statuses == {Subscription.Status.UNSUBSCRIBED}
    suppression = Suppression.objects.for_account(world.account_a).get(
        email_sha256=email_sha256(ERIN)
    )
    assert suppression.reason == Suppression.Reason.UNSUBSCRIBE
    entry = DataRequest.objects.for_account(world.account_a).get()
    assert entry.kind == K.UNSUBSCRIBE
    assert "2 lists" in entry.outcome


def test_the_person_objects_to_tracking_once(person, world, erin):
    path = ask(person)

    person.post(f"{path}{world.account_a.pk}/object/")
    erin.refresh_from_db()
    first = erin.tracking_objected_at
    person.post(f"{path}{world.account_a.pk}/object/")

    erin.refresh_from_db()
    assert first is not None
    assert erin.tracking_objected_at == first
    assert list(DataRequest.objects.values_list("kind", flat=True)) == [K.OBJECTION] * 2


def test_a_customer_hears_of_the_same_request_once_an_hour(person, world, erin):
    path = ask(person)

    for _ in range(3):
        person.post(f"{path}{world.account_a.pk}/download/")

    assert DataRequest.objects.count() == 3
    assert len(mail.outbox) == 1


def test_owners_and_admins_are_told_and_editors_not(person, world, erin):
    admin = make_user("ada@alpha.test")
    add_member(world.account_a, admin, Role.ADMIN)
    path = ask(person)

    person.post(f"{path}{world.account_a.pk}/object/")

    [notice] = mail.outbox
    assert sorted(notice.to) == ["ada@alpha.test", "alice@alpha.test"]


@pytest.mark.parametrize("act", ["show", "download", "correct", "unsubscribe", "object"])
def test_a_get_of_an_act_changes_nothing(person, world, erin, act):
    path = ask(person)

    response = person.get(f"{path}{world.account_a.pk}/{act}/")

    assert response.status_code == 302
    assert response["Location"] == path
    assert not DataRequest.objects.exists()
    assert mail.outbox == []


# --- Links that open nothing --------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("suffix", ["", "{account}/erase/", "{account}/download/"])
def test_an_altered_link_is_a_friendly_404(person, world, erin, method, suffix):
    path = ask(person)
    token = path.rstrip("/").rsplit("/", 1)[1]
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]

    url = f"/your-data/{altered}/" + suffix.format(account=world.account_a.pk)
    response = getattr(person, method)(url)

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_an_expired_link_is_a_friendly_404(person, world, erin):
    path = ask(person)

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = person.post(f"{path}{world.account_a.pk}/erase/")

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_a_link_made_for_another_purpose_opens_nothing(person, world, erin):
    token = make_token("do-not-contact", {"email": ERIN})

    response = person.post(f"/your-data/{token}/{world.account_a.pk}/erase/")

    assert response.status_code == 404
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_a_link_opens_only_the_accounts_holding_its_address(person, world, erin):
    # given a link for an address account B does not hold, and a closed account
    path = ask(person)
    closed = Account.objects.create(name="Gone Inc", status=Account.Status.CLOSED)
    services.contact_create(account=closed, actor=None, email=ERIN)

    for account_id in (world.account_b.pk, closed.pk, 987654321):
        response = person.post(f"{path}{account_id}/erase/")
        assert response.status_code == 404
        assert "Nothing held here" in response.content.decode()
    assert "Gone Inc" not in person.get(path).content.decode()
    assert Contact.objects.filter(email=ERIN).count() == 2


def test_a_link_for_an_address_nobody_holds_says_so(person, db):
    path = ask(person, "nobody@nowhere.test")

    response = person.get(path)

    assert response.status_code == 200
    assert "No organisation" in response.content.decode()


def test_the_link_does_not_carry_the_address(person, db):
    from tests.contacts.test_tokens import readable

    path = ask(person)

    assert "erin" not in readable(path.strip("/").rsplit("/", 1)[1])


def test_the_your_data_link_alone_cannot_erase(person, world, erin):
    # given someone holding erin's "your data" link (forwarded, or from her history)
    path = ask(person)

    # when they press the erase button
    response = person.post(f"{path}{world.account_a.pk}/erase/")

    # then nothing is erased: a one-time link goes to erin's mailbox instead
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()
    [message] = mail.outbox
    assert message.to == [ERIN]
    assert message.subject == "[Missive] Confirm the erasure of your data"
    assert "works once, for 60 minutes" in message.body


def test_the_erase_link_expires_within_the_hour(person, world, erin):
    path = ask(person)
    confirm_path = erase_link(person, path, world.account_a.pk)

    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        response = person.post(confirm_path)

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_the_erase_link_erases_at_its_own_account_only(person, world, erin, erin_at_bravo):
    path = ask(person)
    confirm_path = erase_link(person, path, world.account_b.pk)

    person.post(confirm_path)

    assert Contact.objects.filter(pk=erin.pk).exists()
    assert not Contact.objects.filter(pk=erin_at_bravo.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("suffix", ["", "{account}/erase/", "{account}/show/"])
def test_a_link_of_the_old_format_is_a_friendly_404(person, world, erin, method, suffix):
    # given a link made before links stopped carrying the address
    token = make_token("your-data", {"email": ERIN})

    url = f"/your-data/{token}/" + suffix.format(account=world.account_a.pk)
    response = getattr(person, method)(url)

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()
    assert not DataRequest.objects.exists()


def test_a_forged_erase_link_is_a_friendly_404(person, world, erin):
    for token in ("not-a-token", make_token("your-data", {"email": ERIN}), "x" * 2000):
        response = person.post(f"/your-data/erase/{token}/")
        assert response.status_code == 404
        assert "This link is not valid" in response.content.decode()
    assert Contact.objects.filter(pk=erin.pk).exists()


# --- The customer's log -------------------------------------------------------------------


def test_the_log_is_for_owners_and_admins(world, alice_client, bob_client, person, erin):
    path = ask(person)
    person.post(f"{path}{world.account_a.pk}/object/")

    owner_page = alice_client.get("/data-requests/")
    assert owner_page.status_code == 200
    assert "Objection to tracking" in owner_page.content.decode()
    assert f"/contacts/{erin.pk}/" in owner_page.content.decode()
    assert 'href="/data-requests/"' in alice_client.get("/contacts/").content.decode()
    assert bob_client.get("/data-requests/").status_code == 403
    assert 'href="/data-requests/"' not in bob_client.get("/contacts/").content.decode()


def test_the_log_shows_only_the_accounts_own_requests(world, charlie_client, person, erin):
    path = ask(person)
    person.post(f"{path}{world.account_a.pk}/object/")

    response = charlie_client.get("/data-requests/")

    assert response.status_code == 200
    assert "No data request yet" in response.content.decode()


def test_operators_find_requests_by_address_in_the_admin_and_change_nothing(person, world, erin):
    path = ask(person)
    erase(person, path, world.account_a.pk)
    operator = User.objects.create_superuser(email="ops@missive.test", password="Corr3ct-horse!")
    staff = Client()
    staff.force_login(operator, backend="allauth.account.auth_backends.AuthenticationBackend")

    found = staff.get("/admin/contacts/datarequest/", {"q": "Erin@Alpha.test"})
    other = staff.get("/admin/contacts/datarequest/", {"q": "someone@else.test"})

    assert found.status_code == 200
    assert email_sha256(ERIN)[:12] in found.content.decode()
    assert email_sha256(ERIN)[:12] not in other.content.decode()
    entry = DataRequest.objects.get()
    assert staff.get(f"/admin/contacts/datarequest/{entry.pk}/delete/").status_code == 403


# --- Through a real worker ----------------------------------------------------------------


def _wait_for_mail(count: int) -> None:
    wait_until(lambda: len(mail.outbox) >= count, timeout=15, message=f"{count} mails sent")


def test_a_worker_mails_the_link_and_the_customers_notice(world, celery_worker):
    # when the person asks, with no test shortcut for the tasks
    client = Client()
    response = client.post(URL, {"email": ERIN, "website": ""})

    # then a worker mails the link
    assert response.status_code == 200
    _wait_for_mail(1)
    [message] = mail.outbox
    path = link_path(message)

    # and after the erasure, a worker mails the customer
    assert client.post(f"{path}{world.account_a.pk}/erase/").status_code == 200
    _wait_for_mail(2)
    confirm_path = ERASE_LINK.search(mail.outbox[1].body).group(1)
    assert client.post(confirm_path).status_code == 200
    _wait_for_mail(3)
    assert [m.to for m in mail.outbox] == [[ERIN], [ERIN], ["alice@alpha.test"]]
    assert not Contact.objects.filter(email=ERIN, account=world.account_a).exists()
