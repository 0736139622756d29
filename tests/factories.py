"""Builders for test data, and the samples the tenancy sweep fills URLs with.

``SAMPLES`` maps a URL keyword (``<int:membership_id>``) to a function returning the id
of such an object in the victim's account. A new URL keyword needs one entry here; the
sweep itself (tests/test_tenancy.py) never changes.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.db.models import Model
from django.utils import timezone

from accounts import services
from accounts.models import Account, ApiKey, Invitation, Membership, User, hash_token
from accounts.roles import Role

PASSWORD = "Corr3ct-horse!"


def make_user(email: str, password: str = PASSWORD, verified: bool = True, **extra: object) -> User:
    """A login whose address is proven (as after clicking allauth's confirmation link)."""
    user = User.objects.create_user(email=email, password=password, **extra)
    if verified:
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def make_account(owner: User, name: str = "Acme", **fields: object) -> Account:
    fields.setdefault("postal_address", "1 Main Street, Springfield")
    return services.account_create(owner=owner, name=name, **fields)


def add_member(account: Account, user: User, role: str = Role.EDITOR) -> Membership:
    return Membership.objects.create(account=account, user=user, role=role)


def make_api_key(
    account: Account, role: str = Role.ADMIN, name: str = "test key"
) -> tuple[ApiKey, str]:
    key = ApiKey.PREFIX + secrets.token_urlsafe(24)
    api_key = ApiKey.objects.create(
        account=account, name=name, role=role, key_hash=hash_token(key), hint=key[:10]
    )
    return api_key, key


def make_invitation(
    account: Account, email: str = "newcomer@example.com", role: str = Role.EDITOR
) -> tuple[Invitation, str]:
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        account=account,
        email=email,
        role=role,
        token_hash=hash_token(token),
        expires_at=timezone.now() + timedelta(days=7),
    )
    return invitation, token


@dataclass
class World:
    """The personas: alice owns account A, bob edits in A, vera views A (read-only),
    charlie owns B (the outsider)."""

    alice: User
    bob: User
    vera: User
    charlie: User
    account_a: Account
    account_b: Account
    bob_membership: Membership
    vera_membership: Membership
    alice_key: ApiKey
    alice_key_secret: str
    charlie_key: ApiKey
    charlie_key_secret: str
    invitation: Invitation
    extras: dict[str, Model] = field(default_factory=dict)  # the objects of account A


def build_world() -> World:
    alice = make_user("alice@alpha.test", first_name="Alice", last_name="Alpha")
    bob = make_user("bob@alpha.test", first_name="Bob", last_name="Alpha")
    vera = make_user("vera@alpha.test", first_name="Vera", last_name="Alpha")
    charlie = make_user("charlie@bravo.test", first_name="Charlie", last_name="Bravo")
    account_a = make_account(alice, "Alpha Sentinel Corp")
    account_b = make_account(charlie, "Bravo Ltd")
    bob_membership = add_member(account_a, bob, Role.EDITOR)
    vera_membership = add_member(account_a, vera, Role.VIEWER)
    alice_key, alice_secret = make_api_key(account_a, name="Alpha Sentinel key")
    charlie_key, charlie_secret = make_api_key(account_b, name="Bravo key")
    invitation, _ = make_invitation(account_a, "dave@alpha.test")
    world = World(
        alice=alice,
        bob=bob,
        vera=vera,
        charlie=charlie,
        account_a=account_a,
        account_b=account_b,
        bob_membership=bob_membership,
        vera_membership=vera_membership,
        alice_key=alice_key,
        alice_key_secret=alice_secret,
        charlie_key=charlie_key,
        charlie_key_secret=charlie_secret,
        invitation=invitation,
    )
    _add_contacts(world)
    return world


def _add_contacts(world: World) -> None:
    from contacts import services as contact_services
    from contacts.models import ImportJob

    newsletter = contact_services.list_create(
        account=world.account_a, actor=world.alice, name="Alpha Sentinel News"
    )
    contact = contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="erin@alpha.test",
        first_name="Erin",
        lists=[newsletter],
    )
    suppression = contact_services.suppression_add(
        account=world.account_a, email="blocked@alpha.test", actor=world.alice
    )
    attribute = contact_services.attribute_define(
        account=world.account_a, actor=world.alice, name="city", type="text"
    )
    upload = ImportJob.objects.create(
        account=world.account_a,
        contact_list=newsletter,
        created_by=world.alice,
        original_name="alpha.test-contacts.csv",
        columns=["email"],
    )
    from campaigns.models import Campaign, Template

    campaign = Campaign.objects.create(
        account=world.account_a,
        name="Alpha Sentinel launch",
        subject="Hello",
        from_email="news@alpha.test",
        html="<p>Hi {{ first_name }}</p>",
        text="Hi {{ first_name }}",
    )
    template = Template.objects.create(
        account=world.account_a, name="Alpha Sentinel template", html="<p>Hi</p>"
    )
    domain = verified_domain(world.account_a, "alpha.test")
    verified_domain(world.account_b, "bravo.test")
    from audiences import services as audience_services
    from contacts import tagging

    tag = tagging.tag_create(account=world.account_a, actor=world.alice, name="Alpha Sentinel VIP")
    tagging.tag_contacts(
        account=world.account_a,
        actor=world.alice,
        tag=tag,
        contacts=contact.__class__.objects.filter(pk=contact.pk),
    )

    segment = audience_services.segment_create(
        account=world.account_a,
        actor=world.alice,
        name="Alpha Sentinel readers in Lyon",
        definition={
            "match": "all",
            "conditions": [{"field": "attributes.city", "op": "is", "value": "Lyon"}],
        },
    )
    image = sample_image(world.account_a, world.alice, "Alpha Sentinel logo.png")
    from journeys.models import ContactEvent, Enrollment, Journey, JourneyVersion

    # A live journey erin is in, started by an event (a subscription or a tag in other
    # tests must not make anyone enter it), and the event of hers that did.
    wait = {"id": "s0a1b2c3d4", "type": "wait", "amount": 1, "unit": "days"}
    journey = Journey.objects.create(
        account=world.account_a,
        name="Alpha Sentinel onboarding",
        status=Journey.Status.LIVE,
        trigger=Journey.Trigger.EVENT,
        trigger_config={"event": "alpha_sentinel.signup"},
        draft=[wait],
        started_at=timezone.now(),
    )
    journey.version = JourneyVersion.objects.create(journey=journey, number=1, steps=[wait])
    journey.save(update_fields=["version"])
    event = ContactEvent.objects.create(
        account=world.account_a,
        contact=contact,
        name="alpha_sentinel.signup",
        properties={"plan": "Alpha Sentinel pro"},
        idempotency_key="alpha-sentinel-signup-1",
    )
    enrollment = Enrollment.objects.create(
        journey=journey,
        version=journey.version,
        contact=contact,
        entry_key="once",
        step=str(wait["id"]),
        due_at=timezone.now() + timedelta(days=1),
        context=event.properties,
        history=[[wait["id"], timezone.now().isoformat()]],
    )
    world.extras.update(
        journey=journey,
        enrollment=enrollment,
        contact_event=event,
        image=image,
        domain=domain,
        segment=segment,
        tag=tag,
        campaign=campaign,
        template=template,
        list=newsletter,
        contact=contact,
        suppression=suppression,
        attribute=attribute,
        **{"import": upload},
    )


def png_bytes(width: int = 40, height: int = 30, color: str = "#4338ca") -> bytes:
    """A real PNG drawn by Pillow."""
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def sample_image(
    account: Account, actor: User, name: str = "logo.png", width: int = 40, height: int = 30
) -> Model:
    """An image uploaded to the account's library through the service."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from media.services import image_upload

    return image_upload(
        account=account, actor=actor, file=SimpleUploadedFile(name, png_bytes(width, height))
    )


# One key pair for every test domain: RSA-2048 generation takes a tenth of a second.
_TEST_KEYS: dict[str, tuple[bytes, str]] = {}


def shared_key(algorithm: str = "rsa-sha256") -> tuple[bytes, str]:
    """(private key PEM, public p= value) shared by the suite's domains."""
    from domains import dkim

    if algorithm not in _TEST_KEYS:
        _TEST_KEYS[algorithm] = dkim.generate_key(algorithm)
    return _TEST_KEYS[algorithm]


def verified_domain(account: Account | None, name: str, *, selector: str = "test") -> Model:
    """A sending domain as a DNS check leaves it once its DKIM record was found: verified,
    with an RSA key that signs. Tests of the check itself go through DNS instead."""
    from domains import dkim
    from domains.models import DkimKey, SendingDomain

    now = timezone.now()
    domain = SendingDomain.objects.create(
        account=account, name=name, status=SendingDomain.Status.VERIFIED, verified_at=now
    )
    private_pem, public = shared_key()
    DkimKey.objects.create(
        domain=domain,
        selector=selector,
        algorithm=DkimKey.Algorithm.RSA,
        private_key=dkim.encrypt_private_key(private_pem),
        public_key=public,
        state=DkimKey.State.ACTIVE,
        published_at=now,
        activated_at=now,
    )
    return domain


# Strings that appear only in account A's data: an outsider's page must never show one.
VICTIM_MARKERS = ("alpha.test", "Alpha Sentinel")

SAMPLES: dict[str, Callable[[World], object]] = {
    "account_id": lambda w: w.account_a.pk,
    "membership_id": lambda w: w.bob_membership.pk,
    "invitation_id": lambda w: w.invitation.pk,
    "api_key_id": lambda w: w.alice_key.pk,
    "list_id": lambda w: w.extras["list"].pk,
    "contact_id": lambda w: w.extras["contact"].pk,
    "suppression_id": lambda w: w.extras["suppression"].pk,
    "import_id": lambda w: w.extras["import"].pk,
    "attribute_id": lambda w: w.extras["attribute"].pk,
    "campaign_id": lambda w: w.extras["campaign"].pk,
    "template_id": lambda w: w.extras["template"].pk,
    "domain_id": lambda w: w.extras["domain"].pk,
    "segment_id": lambda w: w.extras["segment"].pk,
    "tag_id": lambda w: w.extras["tag"].pk,
    "image_id": lambda w: w.extras["image"].pk,
    "journey_id": lambda w: w.extras["journey"].pk,
    "enrollment_id": lambda w: w.extras["enrollment"].pk,
}

# Keywords that name no object (a format, a page): filled with a valid value, and the
# page then must show the outsider only their own data.
FREE_KEYWORDS: dict[str, object] = {"fmt": "csv"}
