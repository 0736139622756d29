"""`manage.py demo`, run by `make run`: the demo login, key and a list to send to."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from accounts.models import Account
from audiences.selectors import count
from campaigns.models import Campaign
from campaigns.states import State
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


def test_its_history_gives_segments_people_who_opened_once(db):
    # given the demo account, and its history made twice
    call_command("demo", stdout=StringIO())
    call_command("demo_history")
    call_command("demo_history")

    # then one past campaign, opened by two people in Lyon (a proxy's fetch for a third
    # is a machine's, which never counts)
    account = Account.objects.get(name="Demo Company")
    assert Campaign.objects.filter(account=account, status=State.SENT).count() == 1
    lyon = {"field": "attributes.city", "op": "is", "value": "Lyon"}
    opened = {"field": "opened", "op": "in_last_days", "value": 30}
    assert count(account, {"match": "all", "conditions": [lyon]}) == 3
    assert count(account, {"match": "all", "conditions": [lyon, opened]}) == 2
