"""Subscribe forms: the hosted page, the embeddable snippet, the double opt-in, and what
bots and strangers can learn or change through them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import MailFailure
from contacts import services
from contacts.models import Contact, ContactList, Subscription
from contacts.subscribing import RATE_LIMIT, form_key

S = Subscription.Status
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
VISITOR_IP = "203.0.113.7"
CONFIRM_LINK = re.compile(r"http://testserver(/subscribe/confirm/[^/\s\"]+/)")


@pytest.fixture
def newsletter(world) -> ContactList:
    return world.extras["list"]


@pytest.fixture
def visitor() -> Client:
    """A person on the web, checked for CSRF as a real browser would be: the embedded
    snippet posts from another site, without a token."""
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=VISITOR_IP)


@pytest.fixture
def submit(visitor, django_capture_on_commit_callbacks, tasks_inline):
    # The confirmation mail is a Celery task; here its logic is the subject, so it runs
    # in place (tests/contacts/test_subscribe_worker.py sends it through a real worker).

    def send(contact_list: ContactList, client: Client | None = None, **fields: str):
        data = {"email": "nia@example.com", "first_name": "Nia", "consent": "on", "website": ""}
        with django_capture_on_commit_callbacks(execute=True):
            return (client or visitor).post(f"/subscribe/{form_key(contact_list)}/", data | fields)

    return send


def confirmation_path(message: mail.EmailMessage) -> str:
    match = CONFIRM_LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def press_confirm(client: Client, path: str):
    """Open the confirmation page and press its button, as the person does."""
    page = client.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    return client.post(path, {"csrfmiddlewaretoken": token.group(1)})


def visible(response) -> str:
    """The page as the person sees it, without its per-visitor CSRF token."""
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", response.content.decode())


def subscription_of(email: str, contact_list: ContactList) -> Subscription | None:
    return Subscription.objects.filter(contact__email=email, contact_list=contact_list).first()


# --- The hosted page and the snippet ------------------------------------------------


def test_it_shows_the_hosted_form_with_the_consent_wording(visitor, world, newsletter):
    newsletter.description = "News from the watchtower, monthly."
    newsletter.save()

    response = visitor.get(f"/subscribe/{form_key(newsletter)}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Sentinel Corp" in page
    assert "Subscribe to Alpha Sentinel News" in page
    assert "News from the watchtower, monthly." in page
    assert newsletter.form_consent_text in page
    assert re.search(r'class="visually-hidden" aria-hidden="true">\s*<label', page)
    assert re.search(r'<input type="text" name="website"[^>]*tabindex="-1"', page)


def test_it_shows_the_snippet_to_a_member_and_nothing_to_an_outsider(
    alice_client, charlie_client, newsletter
):
    # given the list's form page
    url = f"/lists/{newsletter.pk}/form/"

    # when the outsider and the owner open it
    outsider = charlie_client.get(url)
    owner = alice_client.get(url)

    # then the outsider learns nothing, the owner gets the address and the HTML to paste
    assert outsider.status_code == 404
    assert "Alpha Sentinel" not in outsider.content.decode()
    hosted = f"http://testserver/subscribe/{form_key(newsletter)}/"
    assert owner.status_code == 200
    assert owner.context["url"] == hosted
    assert owner.context["snippet"].startswith(f'<form method="post" action="{hosted}"')
    assert 'name="website" tabindex="-1" autocomplete="off"' in owner.context["snippet"]
    page = owner.content.decode()
    assert f"&lt;form method=&quot;post&quot; action=&quot;{hosted}&quot;" in page
    assert "<pre" in page


def test_it_accepts_the_snippet_posted_from_another_site(submit, newsletter):
    # when the snippet posts from the customer's site: no CSRF cookie, no token
    response = submit(newsletter, email="nia@example.com", website="")

    # then the post is taken (the visitor client enforces CSRF like a browser)
    assert response.status_code == 200
    assert subscription_of("nia@example.com", newsletter) is not None


# --- Double opt-in -------------------------------------------------------------------


def test_it_records_an_unconfirmed_subscription_with_consent_proof(submit, newsletter):
    # when a new address is sent through the form
    before = timezone.now()
    response = submit(newsletter, email=" Nia@Example.com ")

    # then the person is asked to check their inbox
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    # and the subscription waits, with its full consent proof
    subscription = subscription_of("nia@example.com", newsletter)
    assert subscription.status == S.UNCONFIRMED
    assert subscription.source == Subscription.Source.FORM
    assert subscription.legal_basis == Subscription.LegalBasis.CONSENT
    assert subscription.consent_at >= before
    assert subscription.consent_ip == VISITOR_IP
    assert subscription.consent_user_agent == BROWSER
    assert subscription.consent_text == newsletter.form_consent_text
    assert subscription.confirmed_at is None
    contact = subscription.contact
    assert (contact.first_name, contact.last_activity_at) == ("Nia", None)
    # and one mail carries the link, in text and in HTML
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nia@example.com"]
    assert message.subject == "Confirm your subscription to Alpha Sentinel News"
    path = confirmation_path(message)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert f"http://testserver{path}" in html


@pytest.mark.parametrize(
    ("name", "address", "sender"),
    [
        ("Alpha Sentinel Desk", "desk@alpha.test", "Alpha Sentinel Desk <desk@alpha.test>"),
        ("", "desk@alpha.test", "Alpha Sentinel Corp <desk@alpha.test>"),
        ("Alpha Sentinel Desk", "", settings.DEFAULT_FROM_EMAIL),
    ],
)
def test_it_sends_the_confirmation_from_the_account_sender_if_any(
    submit, world, newsletter, name, address, sender
):
    world.account_a.default_from_name = name
    world.account_a.default_from_email = address
    world.account_a.save()

    submit(newsletter)

    assert mail.outbox[0].from_email == sender


def test_it_confirms_nothing_when_a_mail_scanner_fetches_the_link(submit, newsletter):
    # given a confirmation mail
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])

    # when a scanner follows the link, with no cookie and no button press
    response = Client().get(path)

    # then it sees the confirmation page, and nobody is subscribed
    assert response.status_code == 200
    assert (
        "Confirm your subscription to Alpha Sentinel News from Alpha Sentinel Corp"
        in response.content.decode()
    )
    subscription = subscription_of("nia@example.com", newsletter)
    assert subscription.status == S.UNCONFIRMED
    assert subscription.confirmed_at is None


def test_it_confirms_on_the_button_and_moves_last_activity(visitor, submit, newsletter):
    # given a confirmation mail
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])

    # when the person presses the button on the page the link opens
    before = timezone.now()
    response = press_confirm(visitor, path)

    # then they are subscribed, and their confirmation counts as activity
    assert response.status_code == 200
    assert "You're subscribed" in response.content.decode()
    subscription = subscription_of("nia@example.com", newsletter)
    assert subscription.status == S.SUBSCRIBED
    assert subscription.confirmed_at >= before
    assert subscription.contact.last_activity_at == subscription.confirmed_at


def test_it_changes_nothing_on_a_second_confirmation(visitor, submit, newsletter):
    # given a confirmed subscription
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])
    press_confirm(visitor, path)
    first = subscription_of("nia@example.com", newsletter)

    # when the button is pressed again
    response = press_confirm(visitor, path)

    # then the same success page shows, and nothing moved
    assert response.status_code == 200
    assert "You're subscribed" in response.content.decode()
    again = subscription_of("nia@example.com", newsletter)
    assert (again.status, again.confirmed_at, again.updated_at) == (
        S.SUBSCRIBED,
        first.confirmed_at,
        first.updated_at,
    )


def test_it_refuses_a_cross_site_post_to_the_confirmation(visitor, submit, newsletter):
    # given a confirmation link, known to an attacker
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])

    # when another site posts to it, without the page's CSRF token
    response = visitor.post(path)

    # then nobody is subscribed
    assert response.status_code == 403
    assert subscription_of("nia@example.com", newsletter).status == S.UNCONFIRMED


def test_it_does_not_subscribe_an_address_suppressed_before_confirming(
    visitor, submit, world, newsletter
):
    # given a pending confirmation, and the address suppressed since
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])
    services.suppression_add(account=world.account_a, email="nia@example.com")

    # when the person presses the button
    response = press_confirm(visitor, path)

    # then they see the usual page, but are not subscribed
    assert response.status_code == 200
    assert "You're subscribed" in response.content.decode()
    assert subscription_of("nia@example.com", newsletter).status == S.UNCONFIRMED


def test_it_mails_one_link_however_often_the_form_is_sent(visitor, submit, newsletter):
    # given a confirmation mailed a moment ago
    submit(newsletter)
    first_link = confirmation_path(mail.outbox[0])

    # when the form is sent again for the same address
    response = submit(newsletter)

    # then the page is the same, no second mail goes out, and the first link still works
    assert "Check your inbox" in response.content.decode()
    assert len(mail.outbox) == 1
    press_confirm(visitor, first_link)
    assert subscription_of("nia@example.com", newsletter).status == S.SUBSCRIBED


def test_it_mails_again_at_once_when_the_last_link_could_not_be_sent(
    visitor, submit, newsletter, settings, free_port
):
    # given a mail server that cannot be reached (the task's tries run at once here)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port  # nothing listens there
    settings.MISSIVE_NOTICE_MAX_ATTEMPTS = 2
    submit(newsletter)
    failure = MailFailure.objects.get()
    assert (failure.kind, failure.recipients) == ("subscribe_confirm", "nia@example.com")

    # when the server is back and the person sends the form again, within the pause
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    submit(newsletter)

    # then the confirmation is mailed, and its link confirms
    [message] = mail.outbox
    press_confirm(visitor, confirmation_path(message))
    assert subscription_of("nia@example.com", newsletter).status == S.SUBSCRIBED


# --- What strangers and bots learn -------------------------------------------------


def test_it_tells_an_already_subscribed_address_nothing_new(submit, world, newsletter):
    # given erin, subscribed, and the page a new address gets
    erin = subscription_of("erin@alpha.test", newsletter)
    new_person = submit(newsletter, email="nia@example.com")
    mail.outbox.clear()

    # when the form is sent for erin's address
    response = submit(newsletter, email="erin@alpha.test", first_name="Mallory")

    # then the page is the one a new address gets, erin is untouched and gets no mail
    assert response.status_code == 200
    assert visible(response) == visible(new_person)
    after = subscription_of("erin@alpha.test", newsletter)
    assert (after.status, after.consent_at, after.updated_at) == (
        S.SUBSCRIBED,
        erin.consent_at,
        erin.updated_at,
    )
    assert after.contact.first_name == "Erin"
    assert mail.outbox == []


def test_it_stores_nothing_for_a_suppressed_address(submit, newsletter):
    # given the page a new address gets
    new_person = submit(newsletter, email="nia@example.com")
    mail.outbox.clear()

    # when the form is sent for an address on the account's suppression list
    response = submit(newsletter, email="blocked@alpha.test")

    # then the page is the same, and nothing is stored or mailed
    assert response.status_code == 200
    assert visible(response) == visible(new_person)
    assert not Contact.objects.filter(email="blocked@alpha.test").exists()
    assert mail.outbox == []


def test_it_stores_nothing_when_the_honeypot_is_filled(submit, newsletter):
    # when a bot fills every field, the hidden one too
    response = submit(newsletter, email="bot@example.com", website="http://spam.example")

    # then it is told the usual thing, and nothing is stored or mailed
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert not Contact.objects.filter(email="bot@example.com").exists()
    assert mail.outbox == []


def test_it_limits_submissions_per_ip_address(submit, newsletter):
    # given as many submissions from one address as the hour allows
    for n in range(RATE_LIMIT):
        assert submit(newsletter, email=f"p{n}@example.com").status_code == 200

    # when one more comes from the same address
    response = submit(newsletter, email="one-too-many@example.com")

    # then it is refused kindly and not stored, while another address is still served
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not Contact.objects.filter(email="one-too-many@example.com").exists()
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert submit(newsletter, client=elsewhere, email="other@example.com").status_code == 200


def test_it_shows_field_errors_and_stores_nothing(submit, newsletter):
    # when the address is not one, and the consent box is left unticked
    response = submit(newsletter, email="not-an-address", consent="")

    # then the form comes back with both errors, and nothing is stored
    page = response.content.decode()
    assert response.status_code == 200
    assert "is not a valid email address" in page
    assert "Tick the box to agree" in page
    assert Contact.objects.filter(account=newsletter.account).count() == 1  # erin
    assert mail.outbox == []


def test_it_answers_404_for_an_altered_form_key(visitor, newsletter):
    key = form_key(newsletter)
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")

    for url in (f"/subscribe/{altered}/", f"/subscribe/{newsletter.pk}/"):
        assert visitor.get(url).status_code == 404
        assert visitor.post(url, {"email": "nia@example.com", "consent": "on"}).status_code == 404
    assert subscription_of("nia@example.com", newsletter) is None


def test_it_answers_404_for_an_altered_or_expired_link(visitor, submit, newsletter):
    # given a confirmation link
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])
    token = path.split("/")[-2]
    altered = f"/subscribe/confirm/{token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}/"

    # then an altered one opens nothing, nor does the real one after a week
    response = visitor.get(altered)
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert visitor.get(path).status_code == 404
    assert subscription_of("nia@example.com", newsletter).status == S.UNCONFIRMED


def test_it_ignores_an_old_link_after_the_person_unsubscribed(visitor, submit, newsletter):
    # given a confirmed subscription, then an unsubscription
    submit(newsletter)
    path = confirmation_path(mail.outbox[0])
    press_confirm(visitor, path)
    services.subscription_unsubscribe(subscription=subscription_of("nia@example.com", newsletter))

    # when the old link is opened again
    response = visitor.get(path)

    # then it opens nothing: the unsubscription stands
    assert response.status_code == 404
    assert subscription_of("nia@example.com", newsletter).status == S.UNSUBSCRIBED


# --- Lists without double opt-in ---------------------------------------------------


def test_it_subscribes_at_once_without_double_opt_in(submit, world):
    # given a list that does not ask for confirmation
    offers = services.list_create(
        account=world.account_a, actor=world.alice, name="Offers", double_opt_in=False
    )

    # when a new address is sent through its form
    response = submit(offers, email="nia@example.com")

    # then the person is subscribed at once, with consent proof, and no mail is needed
    assert response.status_code == 200
    assert "You're subscribed" in response.content.decode()
    subscription = subscription_of("nia@example.com", offers)
    assert subscription.status == S.SUBSCRIBED
    assert subscription.source == Subscription.Source.FORM
    assert subscription.consent_ip == VISITOR_IP
    assert subscription.confirmed_at is not None
    assert subscription.contact.last_activity_at == subscription.confirmed_at
    assert mail.outbox == []


def test_it_takes_back_someone_who_unsubscribed_only_through_confirmation(visitor, submit, world):
    # given someone who unsubscribed from a list that does not ask for confirmation
    offers = services.list_create(
        account=world.account_a, actor=world.alice, name="Offers", double_opt_in=False
    )
    submit(offers, email="nia@example.com")
    services.subscription_unsubscribe(subscription=subscription_of("nia@example.com", offers))

    # when the form is sent again for their address
    response = submit(offers, email="nia@example.com")

    # then the page is the usual one, but they come back only once they confirm
    assert "You're subscribed" in response.content.decode()
    assert subscription_of("nia@example.com", offers).status == S.UNCONFIRMED
    assert [m.to for m in mail.outbox] == [["nia@example.com"]]
    press_confirm(visitor, confirmation_path(mail.outbox[0]))
    assert subscription_of("nia@example.com", offers).status == S.SUBSCRIBED
