"""Sending domains as a customer meets them: add a domain, publish the records Missive
shows into a real DNS server on loopback, verify it, send a campaign whose messages
carry a DKIM signature that independent verifiers accept; and the refusals around it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Account, AuditEntry
from campaigns import selectors as campaign_selectors
from campaigns import services as campaign_services
from campaigns.messages import MessageFactory
from campaigns.models import Campaign
from campaigns.states import State
from config.devdns import LoopbackDNS
from contacts import services as contact_services
from domains import pacing, services
from domains.models import DkimKey, SendingDomain
from tests.domains.test_dkim import dkimpy_verifies, mail_dkim, mail_dkim_results  # noqa: F401
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME

DOMAIN = "news.example.test"


def publish(dns: LoopbackDNS, domain: SendingDomain) -> None:
    """What a customer does at their DNS host: every record the page shows."""
    for record in services.records_to_publish(domain):
        dns.remove(record.name, record.rtype)
        dns.publish(record.name, record.rtype, record.value)


def add_domain(client: Client, name: str = DOMAIN) -> SendingDomain:
    response = client.post("/settings/domains/", {"name": name})
    assert response.status_code == 302, response.content.decode()[:2000]
    return SendingDomain.objects.filter(name=name.lower().rstrip(".")).latest("pk")


def check(client: Client, domain: SendingDomain):
    response = client.post(f"/settings/domains/{domain.pk}/check/", follow=True)
    assert response.status_code == 200
    domain.refresh_from_db()
    return response


# -- verification ------------------------------------------------------------------------------


def test_a_domain_is_verified_once_the_records_it_shows_are_published(alice_client, world, dns):
    # given alice adds her domain, written as people write it
    domain = add_domain(alice_client, "News.Example.Test.")
    page = alice_client.get(f"/settings/domains/{domain.pk}/").content.decode()
    key = domain.keys.get()
    assert key.algorithm == DkimKey.Algorithm.RSA
    assert f"{key.selector}._domainkey.{DOMAIN}" in page
    assert key.public_key in page
    assert "_dmarc.news.example.test" in page
    assert "BEGIN" not in page  # never the private key

    # when she checks before publishing anything
    response = check(alice_client, domain)
    # then it is still waiting, and the page says what is missing
    assert domain.status == SendingDomain.Status.PENDING
    assert "missing" in response.content.decode()

    # when she publishes the records shown and checks again
    publish(dns, domain)
    response = check(alice_client, domain)

    # then the domain is verified and signs with the key it showed
    assert domain.status == SendingDomain.Status.VERIFIED
    assert "is verified" in response.content.decode()
    key.refresh_from_db()
    assert key.state == DkimKey.State.ACTIVE
    assert (f"{key.selector}._domainkey.{DOMAIN}", "TXT") in dns.queries
    report = domain.report
    assert report["alignment"]["dkim_strict"] is True
    assert report["alignment"]["dmarc_can_pass"] is True
    assert AuditEntry.objects.filter(account=world.account_a, action="domain.verified").exists()


def test_a_wrong_key_at_the_selector_does_not_verify(alice_client, dns):
    domain = add_domain(alice_client)
    key = domain.keys.get()
    dns.publish(
        key.record_name,
        "TXT",
        "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong",
    )

    response = check(alice_client, domain)

    assert domain.status == SendingDomain.Status.PENDING
    assert "wrong" in response.content.decode()


def test_a_domain_verified_by_another_account_cannot_be_added(alice_client, charlie_client, dns):
    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    assert domain.status == SendingDomain.Status.VERIFIED

    response = charlie_client.post("/settings/domains/", {"name": DOMAIN})
    assert response.status_code == 200
    assert "already verified by another Missive account" in response.content.decode()

    api = charlie_client.post("/api/v1/domains/", {"name": DOMAIN}, content_type="application/json")
    assert api.status_code == 409
    assert "already verified by another" in api.content.decode()
    assert SendingDomain.objects.filter(name=DOMAIN).count() == 1


def test_only_the_first_account_to_prove_a_domain_gets_it(alice_client, charlie_client, dns):
    # given both accounts added the domain before either proved it
    alices = add_domain(alice_client)
    charlies = add_domain(charlie_client)
    # and the domain's owner published both keys
    publish(dns, alices)
    for record in services.records_to_publish(charlies):
        if record.purpose == "dkim":
            dns.publish(record.name, record.rtype, record.value)

    check(alice_client, alices)
    response = check(charlie_client, charlies)

    assert alices.status == SendingDomain.Status.VERIFIED
    assert charlies.status == SendingDomain.Status.PENDING
    assert "already verified by another Missive account" in response.content.decode()


def test_a_domain_that_loses_its_records_is_flagged_and_its_owners_told(
    alice_client, world, dns, tasks_inline, settings, django_capture_on_commit_callbacks
):
    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    mail.outbox.clear()

    # when the DKIM record disappears and the hourly check runs
    dns.remove(domain.keys.get().record_name)
    SendingDomain.objects.filter(pk=domain.pk).update(
        checked_at=timezone.now() - dt.timedelta(hours=2)
    )
    SendingDomain.objects.exclude(pk=domain.pk).update(checked_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.check_due_domains() == 1
    domain.refresh_from_db()

    # then the domain is failing, the owner is told, and new sends from it are refused
    assert domain.status == SendingDomain.Status.FAILING
    assert [m.to for m in mail.outbox] == [["alice@alpha.test"]]
    assert DOMAIN in mail.outbox[0].subject
    assert "missing" in mail.outbox[0].body
    campaign = Campaign.objects.create(
        account=world.account_a, name="x", subject="s", from_email=f"a@{DOMAIN}", html="<p>x</p>"
    )
    assert any("missing since" in p for p in campaign_selectors.start_problems(campaign))
    assert AuditEntry.objects.filter(
        action="domain.failing", actor_label="Missive (DNS check)"
    ).exists()

    # when DNS cannot be reached at all, nothing changes
    settings.MISSIVE_DNS_SERVERS = ["127.0.0.1:1"]
    services.domain_check(domain=domain)
    domain.refresh_from_db()
    assert domain.status == SendingDomain.Status.FAILING

    # when the record is back, the domain is verified again and the owner told
    settings.MISSIVE_DNS_SERVERS = [dns.address]
    publish(dns, domain)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        check(alice_client, domain)
    assert domain.status == SendingDomain.Status.VERIFIED
    assert "verified again" in mail.outbox[0].subject


def test_keys_are_rotated_only_once_the_new_record_is_published(alice_client, dns, settings):
    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    old = domain.keys.get()

    alice_client.post(f"/settings/domains/{domain.pk}/rotate/")
    new = domain.keys.get(state=DkimKey.State.PENDING)
    assert new.selector != old.selector

    # a check before the new record is published changes nothing
    check(alice_client, domain)
    old.refresh_from_db()
    assert old.state == DkimKey.State.ACTIVE

    # once published, the new key signs and the old one is kept for the grace period
    publish(dns, domain)
    check(alice_client, domain)
    old.refresh_from_db()
    new.refresh_from_db()
    assert new.state == DkimKey.State.ACTIVE
    assert old.state == DkimKey.State.RETIRING
    assert old.retire_after > timezone.now() + dt.timedelta(
        days=settings.MISSIVE_DKIM_GRACE_DAYS - 1
    )
    assert domain.status == SendingDomain.Status.VERIFIED

    # and after the grace period the old key is removed
    DkimKey.objects.filter(pk=old.pk).update(retire_after=timezone.now() - dt.timedelta(seconds=1))
    check(alice_client, domain)
    assert not DkimKey.objects.filter(pk=old.pk).exists()


def test_an_ed25519_key_is_made_beside_rsa_when_asked(alice_client, dns):
    response = alice_client.post("/settings/domains/", {"name": DOMAIN, "ed25519": "on"})
    assert response.status_code == 302
    domain = SendingDomain.objects.get(name=DOMAIN)
    assert sorted(domain.keys.values_list("algorithm", flat=True)) == [
        DkimKey.Algorithm.ED25519,
        DkimKey.Algorithm.RSA,
    ]
    publish(dns, domain)
    check(alice_client, domain)
    assert domain.keys.filter(state=DkimKey.State.ACTIVE).count() == 2


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "This field is required"),
        ("localhost", "not a domain name Missive can send from"),
        ("10.0.0.1", "an address, not a domain name"),
        ("bad_name.example", "not a domain name Missive can send from"),
        ("-x.example", "not a domain name Missive can send from"),
    ],
)
def test_a_bad_domain_name_is_refused_with_a_reason(alice_client, name, says):
    response = alice_client.post("/settings/domains/", {"name": name})
    assert says in response.content.decode()
    assert (
        not SendingDomain.objects.filter(account__isnull=False)
        .exclude(name__in=["alpha.test", "bravo.test"])
        .exists()
    )


def test_a_viewer_sees_domains_but_cannot_change_them(vera_client, world):
    domain = world.extras["domain"]
    assert vera_client.get("/settings/domains/").status_code == 200
    assert vera_client.get(f"/settings/domains/{domain.pk}/").status_code == 200
    assert vera_client.post(f"/settings/domains/{domain.pk}/check/").status_code == 403
    assert vera_client.post(f"/settings/domains/{domain.pk}/delete/").status_code == 403
    vera_client.post("/settings/domains/", {"name": DOMAIN})
    assert not SendingDomain.objects.filter(name=DOMAIN).exists()


# -- the From address must be on a verified domain ---------------------------------------------


@pytest.mark.parametrize("sender", ["someone@gmail.com", f"news@{DOMAIN}"])
def test_a_campaign_from_an_unverified_domain_is_refused(world, alice_client, sender):
    campaign = world.extras["campaign"]
    campaign.from_email = sender
    campaign.lists.set([world.extras["list"]])
    campaign.account.postal_address = "1 Main St"
    campaign.account.save()
    campaign.save()
    domain = sender.rpartition("@")[2]

    start = alice_client.post(f"/api/v1/campaigns/{campaign.pk}/start/")
    assert start.status_code == 400
    assert f"on {domain}, which is not a verified sending domain" in start.content.decode()
    assert "/settings/domains/" in start.content.decode()
    test = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/test/",
        {"recipients": ["me@alpha.test"]},
        content_type="application/json",
    )
    assert test.status_code == 400
    assert domain in test.content.decode()
    assert mail.outbox == []
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_a_pending_domain_says_to_publish_its_records(world, alice_client):
    domain = add_domain(alice_client)
    campaign = world.extras["campaign"]
    campaign.from_email = f"news@{DOMAIN}"
    campaign.save()
    problems = campaign_selectors.start_problems(campaign)
    assert any("not verified yet" in p and f"/settings/domains/{domain.pk}/" in p for p in problems)


def test_the_shared_domain_sends_for_an_account_allowed_it(world, settings):
    settings.MISSIVE_SHARED_DOMAIN = "mail.missive.test"
    verified_domain(None, "mail.missive.test", selector="shared")
    account = world.account_b
    account.shared_domain_allowed = True
    account.save()
    campaign = Campaign.objects.create(
        account=account,
        name="B",
        subject="Hi",
        from_name="Bravo",
        from_email="hello@not-verified.example",
        html="<p>x</p>",
    )
    assert campaign_selectors.start_problems(campaign) == [
        p for p in campaign_selectors.start_problems(campaign) if "domain" not in p
    ]

    factory = MessageFactory(campaign, positions={})
    assert factory.from_email == f"bravo-ltd-{account.pk}@mail.missive.test"
    assert factory.reply_to == "hello@not-verified.example"
    assert factory.signer is not None
    assert factory.signer.keys[0].domain == "mail.missive.test"

    # another account of the same name gets an address of its own
    namesake = Account.objects.create(name="Bravo Ltd", shared_domain_allowed=True)
    other = Campaign.objects.create(
        account=namesake, name="B", subject="Hi", from_email="hi@elsewhere.example", html="x"
    )
    assert MessageFactory(other, positions={}).from_email == (
        f"bravo-ltd-{namesake.pk}@mail.missive.test"
    )

    # an account not allowed it is refused as before
    account.shared_domain_allowed = False
    account.save()
    assert any(
        "not a verified sending domain" in p for p in campaign_selectors.start_problems(campaign)
    )


# -- end to end: DNS, a worker, an SMTP server, independent verifiers ---------------------------


def test_every_message_is_signed_and_independent_verifiers_accept_it(
    transactional_db,
    dns,
    workers,
    smtp_sink,
    mail_dkim,  # noqa: F811
):
    # given an account that proved news.example.test through the loopback DNS
    owner = make_user("owner@news.example.test")
    account = make_account(
        owner, "News Co", postal_address="1 Main St", sending_backend=BACKEND_NAME
    )
    domain = services.domain_add(account=account, actor=owner, name=DOMAIN)
    publish(dns, domain)
    services.domain_check(domain=domain, actor=owner)
    domain.refresh_from_db()
    assert domain.status == SendingDomain.Status.VERIFIED
    selector = domain.keys.get().selector
    contact_list = contact_services.list_create(account=account, actor=owner, name="News")
    for n in range(3):
        contact_services.contact_create(
            account=account, actor=owner, email=f"reader{n}@example.net", lists=[contact_list]
        )
    campaign = campaign_services.campaign_create(
        account=account,
        actor=owner,
        name="Signed",
        subject="Ça va ? The spring issue",
        from_name="Nouvelles",
        from_email=f"letters@{DOMAIN}",
        html='<p>Hello {{ first_name|default:"friend" }}</p>',
        lists=[contact_list],
    )

    # when a worker sends it
    workers.start()
    campaign_services.campaign_start(campaign=campaign, actor=owner)
    workers.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status != State.SENDING,
        timeout=60,
        what="the campaign to be sent",
    )
    assert Campaign.objects.get(pk=campaign.pk).status == State.SENT

    # then each message is signed by the From domain, covering the one-click headers,
    # and dkimpy and Perl's Mail::DKIM both accept it against the published record
    assert len(smtp_sink.messages) == 3
    for received in smtp_sink.messages:
        raw = received.raw
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        signature = str(parsed["DKIM-Signature"]).replace("\r\n", "").replace(" ", "")
        tags = dict(part.split("=", 1) for part in signature.split(";") if "=" in part)
        assert tags["d"] == DOMAIN
        assert tags["s"] == selector
        signed = {h.lower() for h in tags["h"].split(":")}
        assert {
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "list-id",
            "feedback-id",
            "mime-version",
            "content-type",
        } <= signed
        # DMARC alignment: the From domain is the signing domain
        assert parsed["From"].addresses[0].domain == DOMAIN
        # signed ahead of the wire, each message still went to the one it was written for
        assert parsed["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        assert dkimpy_verifies(raw, dns, "rsa-sha256")
        results = mail_dkim_results(raw, dns)
        assert results["rsa-sha256"] == "pass"
        assert results["message"] == "pass"
    workers.assert_no_tracebacks()


# -- readiness ----------------------------------------------------------------------------------


def test_readiness_lists_each_rule_with_its_figure(alice_client, world, dns):
    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)

    page = alice_client.get(f"/settings/domains/{domain.pk}/readiness/").content.decode()
    for rule in (
        "DKIM passes",
        "DMARC record present",
        "DMARC aligned",
        "One-click unsubscribe",
        "Feedback-ID header",
        "Complaint rate (30 days)",
        "Bounce rate (30 days)",
    ):
        assert rule in page

    api = alice_client.get(f"/api/v1/domains/{domain.pk}/readiness/").json()
    lines = {line["rule"]: line for line in api["lines"]}
    assert lines["DKIM passes"]["status"] == "pass"
    assert lines["DMARC aligned"]["status"] == "pass"
    assert lines["Complaint rate (30 days)"]["status"] == "unknown"
    assert lines["Pace at Gmail"]["status"] == "pass"
    assert api["ready"] is True

    # a 4.7.x deferral from Gmail shows as a slowed pace
    pacing.note_deferral("gmail")
    lines = {
        line["rule"]: line
        for line in alice_client.get(f"/api/v1/domains/{domain.pk}/readiness/").json()["lines"]
    }
    assert lines["Pace at Gmail"]["status"] == "warn"
    assert "1 deferral today" in lines["Pace at Gmail"]["figure"]

    # without its DMARC record the verdict fails, and the campaign page says so
    dns.remove(f"_dmarc.{DOMAIN}")
    check(alice_client, domain)
    api = alice_client.get(f"/api/v1/domains/{domain.pk}/readiness/").json()
    assert api["ready"] is False
    campaign = world.extras["campaign"]
    campaign.from_email = f"news@{DOMAIN}"
    campaign.save()
    fragment = alice_client.get(f"/campaigns/{campaign.pk}/readiness/").content.decode()
    assert "does not meet" in fragment
    assert "DMARC record present" in fragment


def test_the_campaign_page_says_when_the_sender_domain_is_not_verified(alice_client, world):
    campaign = world.extras["campaign"]
    campaign.from_email = "someone@gmail.com"
    campaign.save()
    fragment = alice_client.get(f"/campaigns/{campaign.pk}/readiness/").content.decode()
    assert "gmail.com, which is not a verified sending domain" in fragment


def test_the_api_adds_checks_and_describes_a_domain(alice_client, dns):
    created = alice_client.post(
        "/api/v1/domains/", {"name": DOMAIN, "ed25519": True}, content_type="application/json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending"
    assert {r["type"] for r in body["records"]} >= {"TXT"}
    assert all(r["status"] == "unchecked" for r in body["records"])
    assert "private" not in created.content.decode().lower()
    domain = SendingDomain.objects.get(pk=body["id"])
    publish(dns, domain)

    checked = alice_client.post(f"/api/v1/domains/{domain.pk}/check/").json()
    assert checked["status"] == "verified"
    dkim = [r for r in checked["records"] if r["purpose"] == "dkim"]
    assert len(dkim) == 2
    assert {r["status"] for r in dkim} == {"found"}

    warm = alice_client.patch(
        f"/api/v1/domains/{domain.pk}/",
        {"warmup": True, "warmup_schedule": [50, 100]},
        content_type="application/json",
    ).json()
    assert warm["warmup"]["today_cap"] == 50
    bad = alice_client.patch(
        f"/api/v1/domains/{domain.pk}/",
        {"warmup": True, "warmup_schedule": [0]},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "warmup_schedule" in bad.content.decode()

    assert alice_client.delete(f"/api/v1/domains/{domain.pk}/").status_code == 204
    assert not SendingDomain.objects.filter(pk=domain.pk).exists()


def test_a_test_send_over_smtp_is_signed_too(alice_client, world, dns, settings, smtp_sink):
    # given alice's verified domain and Missive sending its own mail over SMTP
    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    campaign = world.extras["campaign"]
    campaign.from_email = f"news@{DOMAIN}"
    campaign.html = '<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    campaign.save()

    # when she sends a test
    response = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/test/",
        {"recipients": ["me@example.net"]},
        content_type="application/json",
    )

    # then the message that arrives is signed by her domain, and verifies
    assert response.status_code == 200, response.content
    (received,) = smtp_sink.messages
    assert f"d={DOMAIN}".encode() in received.raw
    assert dkimpy_verifies(received.raw, dns, "rsa-sha256")


# -- what a review of the first version found ---------------------------------------------------


def test_a_malformed_spf_prefix_is_a_wrong_record_not_a_crash(alice_client, dns):
    domain = add_domain(alice_client)
    publish(dns, domain)
    dns.remove(DOMAIN, "TXT")
    dns.publish(DOMAIN, "TXT", "v=spf1 a/99 -all")
    dns.publish(DOMAIN, "A", "127.0.0.1")

    response = check(alice_client, domain)

    assert response.status_code == 200
    spf = next(c for c in domain.report["checks"] if c["key"] == "spf")
    assert spf["status"] == "wrong"
    assert domain.status == SendingDomain.Status.VERIFIED  # DKIM is what verifies


def test_an_ed25519_key_alone_does_not_verify_a_domain(alice_client, dns):
    alice_client.post("/settings/domains/", {"name": DOMAIN, "ed25519": "on"})
    domain = SendingDomain.objects.get(name=DOMAIN)
    ed25519 = domain.keys.get(algorithm=DkimKey.Algorithm.ED25519)
    dns.publish(ed25519.record_name, "TXT", ed25519.record_value)

    check(alice_client, domain)

    assert domain.status == SendingDomain.Status.PENDING


def test_a_campaign_sending_from_a_domain_that_loses_its_records_waits_for_them(
    world, alice_client, dns, mailoutbox
):
    from campaigns import sending

    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    account = world.account_a
    account.postal_address = "1 Main St"
    account.save()
    campaign = world.extras["campaign"]
    campaign.from_email = f"news@{DOMAIN}"
    campaign.html = '<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    campaign.save()
    campaign.lists.set([world.extras["list"]])
    campaign_services.campaign_start(campaign=campaign, actor=world.alice)
    sending.take_snapshot(campaign.pk)

    # when the domain's DKIM record disappears before the first batch
    dns.remove(domain.keys.get().record_name)
    check(alice_client, domain)
    assert domain.status == SendingDomain.Status.FAILING
    held = sending.send_batch(campaign.pk)

    # then nothing is sent, and nothing is lost: the messages wait in the queue
    assert held.claimed == 0
    assert mailoutbox == []
    # and once the record is back they go
    publish(dns, domain)
    check(alice_client, domain)
    sent = sending.send_batch(campaign.pk)
    assert sent.sent == 1
    assert [m.to for m in mailoutbox] == [["erin@alpha.test"]]


def test_a_long_send_signs_with_the_keys_of_the_moment(world, alice_client, dns):
    from campaigns import sending

    domain = add_domain(alice_client)
    publish(dns, domain)
    check(alice_client, domain)
    campaign = world.extras["campaign"]
    campaign.from_email = f"news@{DOMAIN}"
    campaign.save()
    factory = sending.factory_for(campaign)
    first = factory.signer.keys[0].selector

    alice_client.post(f"/settings/domains/{domain.pk}/rotate/")
    publish(dns, domain)
    check(alice_client, domain)
    factory.refresh_signer()

    assert sending.factory_for(campaign) is factory
    assert factory.signer.keys[0].selector != first
    assert factory.signer.keys[0].selector == domain.keys.get(state=DkimKey.State.ACTIVE).selector


@pytest.mark.parametrize("caps", ["500, ²", "1" * 5000, "0", "12, -3"])
def test_a_bad_warm_up_schedule_is_refused_with_a_reason(alice_client, world, caps):
    domain = world.extras["domain"]
    response = alice_client.post(
        f"/settings/domains/{domain.pk}/warmup/",
        {"warmup": "on", "warmup_schedule": caps},
        follow=True,
    )
    assert response.status_code == 200
    assert "not a whole number of messages" in response.content.decode()
    domain.refresh_from_db()
    assert domain.warmup is False
