"""`manage.py demo`, run by `make run`: the demo login, key and a list to send to."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from accounts.models import Account
from contacts.management.commands.demo import DEMO_EMAIL, DEMO_LIST, demo_api_key
from contacts.models import ContactList, Subscription


def test_it_creates_the_demo_account_with_a_list_once(db):
    first, second = StringIO(), StringIO()

    call_command("demo", stdout=first)
    call_command("demo", stdout=second)

    assert first.getvalue() == second.getvalue()
    assert DEMO_EMAIL in first.getvalue()
    assert demo_api_key() in first.getvalue()
    account = Account.objects.get(name="Demo Company")
    assert account.postal_address
    demo_list = ContactList.objects.get(account=account, name=DEMO_LIST)
    assert (
        Subscription.objects.filter(
            contact_list=demo_list, status=Subscription.Status.SUBSCRIBED
        ).count()
        == 5
    )
