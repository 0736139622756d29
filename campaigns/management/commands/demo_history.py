"""Give the demo account a past: the demo list received a campaign ten days ago, which
Ada and Grace opened, and a privacy proxy fetched for Katherine (a machine: it never counts
as an open). Idempotent: made once, next to the account `manage.py demo` makes."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, User
from accounts.roles import Role
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts.management.commands.demo import DEMO_EMAIL, DEMO_LIST
from contacts.models import ContactList
from events.models import Event
from events.services import NewEvent, record_events

NAME = "Welcome to the demo newsletter"
OPENED_BY_PEOPLE = ("ada@example.com", "grace@example.com")
OPENED_BY_MACHINES = ("katherine@example.com",)


class Command(BaseCommand):
    help = "Give the demo account a campaign sent ten days ago, with some opens (idempotent)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        membership = Membership.objects.filter(
            user__in=User.objects.filter(email=DEMO_EMAIL), role=Role.OWNER
        ).first()
        if membership is None:
            raise CommandError("Run `manage.py demo` first.")
        account = membership.account
        if Campaign.objects.for_account(account).filter(name=NAME).exists():
            return
        demo_list = ContactList.objects.for_account(account).filter(name=DEMO_LIST).first()
        if demo_list is None:
            return
        sent_at = timezone.now() - timedelta(days=10)
        campaign = Campaign.objects.create(
            account=account,
            name=NAME,
            subject="Welcome, {{ first_name }}",
            from_name=account.default_from_name,
            from_email=account.default_from_email,
            html="<p>Hello {{ first_name }}, thanks for joining us.</p>",
            text="Hello {{ first_name }}, thanks for joining us.",
            status=State.SENT,
            started_at=sent_at,
            snapshot_at=sent_at,
            finished_at=sent_at + timedelta(minutes=1),
        )
        campaign.lists.set([demo_list])
        contacts = list(demo_list.subscriptions.select_related("contact"))
        deliveries = Delivery.objects.bulk_create(
            Delivery(
                campaign=campaign,
                contact=s.contact,
                status=Delivery.Status.SENT,
                sent_at=sent_at,
                attempts=1,
            )
            for s in contacts
        )
        campaign.recipients_count = campaign.sent_count = len(deliveries)
        campaign.save(update_fields=["recipients_count", "sent_count"])
        record_events(
            NewEvent(
                type=Event.Type.SENT,
                account_id=account.pk,
                campaign_id=campaign.pk,
                delivery_id=d.pk,
                occurred_at=sent_at,
            )
            for d in deliveries
        )
        for delivery in deliveries:
            email = delivery.contact.email if delivery.contact else ""
            if email in OPENED_BY_PEOPLE or email in OPENED_BY_MACHINES:
                record_engagement(
                    Event.Type.OPEN,
                    account_id=account.pk,
                    campaign_id=campaign.pk,
                    delivery_id=delivery.pk,
                    personal=True,
                    machine=email in OPENED_BY_MACHINES,
                    at=sent_at + timedelta(hours=2),
                )
