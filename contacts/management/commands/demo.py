"""Create the demo account, owner and API key if missing, and print how to use them.

Idempotent: a second run changes nothing and prints the same login and key (the key is
derived from SECRET_KEY, so it can be printed again although only its hash is stored).
"""

from __future__ import annotations

import hashlib
import hmac

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.models import Account, ApiKey, Membership, User, hash_token
from accounts.roles import Role
from contacts import services as contact_services
from contacts.models import ContactList

DEMO_EMAIL = "demo@missive.test"
DEMO_PASSWORD = "Demo-pass-1"  # noqa: S105 - printed for the local demo on purpose
DEMO_ACCOUNT = "Demo Company"
DEMO_LIST = "Demo newsletter"
# Every address is on example.com, which receives no mail: in `make run` the local mail
# catcher takes all of it, and the Outbox shows it.
DEMO_CONTACTS = (
    ("ada@example.com", "Ada", "Lovelace", "Lyon"),
    ("alan@example.com", "Alan", "Turing", "Paris"),
    ("grace@example.com", "Grace", "Hopper", "Lyon"),
    ("katherine@example.com", "Katherine", "Johnson", "Lyon"),
    ("linus@example.com", "Linus", "Torvalds", "Helsinki"),
)


def demo_api_key() -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), b"missive-demo-api-key", hashlib.sha256)
    return f"{ApiKey.PREFIX}demo_{digest.hexdigest()[:40]}"


class Command(BaseCommand):
    help = "Create the demo account (idempotent) and print its login and API key."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            # Staff, so the demo login can open the Outbox and the admin.
            user = User.objects.create_superuser(
                email=DEMO_EMAIL, password=DEMO_PASSWORD, first_name="Demo", last_name="Owner"
            )
            EmailAddress.objects.create(user=user, email=DEMO_EMAIL, primary=True, verified=True)
        membership = Membership.objects.filter(user=user, role=Role.OWNER).first()
        if membership is None:
            account = services.account_create(
                owner=user,
                name=DEMO_ACCOUNT,
                postal_address="1 Demo Street\n75001 Paris\nFrance",
                default_from_name="Demo Company",
                default_from_email="news@demo.missive.test",
                time_zone="Europe/Paris",
            )
        else:
            account = membership.account
        self._demo_list(account)
        key = demo_api_key()
        if not ApiKey.objects.filter(key_hash=hash_token(key), revoked_at__isnull=True).exists():
            ApiKey.objects.filter(key_hash=hash_token(key)).delete()
            ApiKey.objects.create(
                account=account,
                name="Demo key",
                role=Role.ADMIN,
                key_hash=hash_token(key),
                hint=key[: len(ApiKey.PREFIX) + 6],
                created_by=user,
            )
        password_note = "" if user.check_password(DEMO_PASSWORD) else "  (changed since)"
        self.stdout.write(f"Demo login:   {DEMO_EMAIL} / {DEMO_PASSWORD}{password_note}")
        self.stdout.write(f"Demo API key: {key}")
        self.stdout.write(
            f"Try it:       curl -H 'Authorization: Bearer {key}' "
            f"{settings.MISSIVE_BASE_URL}/api/v1/account/"
        )

    def _demo_list(self, account: Account) -> None:
        """A small list to send a first campaign to, made once."""
        if ContactList.objects.for_account(account).filter(name=DEMO_LIST).exists():
            return
        demo_list = contact_services.list_create(account=account, actor=None, name=DEMO_LIST)
        contact_services.attribute_define(account=account, actor=None, name="city", type="text")
        for email, first_name, last_name, city in DEMO_CONTACTS:
            contact_services.contact_create(
                account=account,
                actor=None,
                email=email,
                first_name=first_name,
                last_name=last_name,
                attributes={"city": city},
                lists=[demo_list],
                consent_text="Demo contact created by `manage.py demo`.",
            )
