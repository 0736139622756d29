"""Journeys: a trigger, then steps, run for each contact who enters, exactly once each.

A journey's steps are a document (journeys/steps.py says its form) kept in versions: the
contacts who entered a version finish it, unless they are moved to a newer one by
choice. Each contact's place is an ``Enrollment`` row, the ledger the engine
(journeys/engine.py) advances in batches. An email step's message is a campaign of its
own (``Campaign.kind`` "journey"), sent by the campaign pipeline, so suppression,
pacing, tracking and retention apply to it unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Account, validate_single_line
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet
from contacts.models import Contact, ContactList


def empty_steps() -> list[object]:
    return []


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        # No one new enters; those inside go on to the end.
        CLOSING = "closing", "Closed to new contacts"
        ENDED = "ended", "Ended"

    class Trigger(models.TextChoices):
        SUBSCRIBED = "subscribed", "Subscribed to a list"
        TAG_ADDED = "tag_added", "Tag added"
        SEGMENT = "segment", "Entered a segment"
        DATE = "date", "A date of theirs"
        EVENT = "event", "An event from the API"
        CLICKED = "clicked", "Clicked a link of a campaign"

    class Entry(models.TextChoices):
        ONCE = "once", "Once ever"
        ONE_AT_A_TIME = "one_at_a_time", "Once at a time"
        EVERY_TIME = "every_time", "Every time"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="journeys", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.SUBSCRIBED)
    # What the trigger names: {"list": id}, {"tag": id}, {"segment": id},
    # {"attribute": name, "days": n} (n days after the date; negative: before), {"event": name},
    # {"campaign": id, "link": id or null}. journeys/triggers.py reads it.
    trigger_config = models.JSONField(default=dict, blank=True)
    entry = models.CharField(max_length=14, choices=Entry.choices, default=Entry.ONCE)
    # Ends the journey early for whoever meets it: {"event": name} or {"segment": id}.
    goal = models.JSONField(null=True, blank=True)
    exit_on_unsubscribe = models.BooleanField(
        "leave when unsubscribed",
        default=True,
        help_text="Whoever is subscribed to none of the journey's lists any more leaves it.",
    )
    # Whom its emails may go to: people subscribed to one of these lists (every list of
    # the account when none is chosen).
    lists = models.ManyToManyField(ContactList, related_name="journeys", blank=True)
    # The steps being edited; published as a new version.
    draft = models.JSONField(default=empty_steps, blank=True)
    version = models.ForeignKey(
        "JourneyVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Triggers read what happened since then (journeys/triggers.py).
    scanned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = [Lower("name")]
        indexes = [models.Index(fields=["account", "status"], name="journey_account_status")]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """The steps as published: never changed once made."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(default=empty_steps)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["journey", "number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class EnrollmentQuerySet(AccountScopedQuerySet):
    account_path = "journey__account"


class Enrollment(models.Model):
    """One contact's way through one journey. ``step`` is where they are ("" before the
    first); the engine takes an active row once ``due_at`` has come, under a row lock, and
    moves it on in the same transaction as everything the steps write."""

    class Status(models.TextChoices):
        ACTIVE = "active", "In the journey"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Left"

    id = models.BigAutoField(primary_key=True)
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    version = models.ForeignKey(JourneyVersion, on_delete=models.RESTRICT, related_name="+")
    # Erasing a contact removes their enrollments.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrollments")
    # What made them enter, so that the same trigger read twice enrolls once: "once" for a
    # journey entered once ever, else the trigger's own identity (an event's key, a date).
    entry_key = models.CharField(max_length=200)
    # Entered by a rule that allows one enrollment at a time (once, once at a time).
    single = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    step = models.CharField(max_length=16, blank=True, default="")
    due_at = models.DateTimeField(null=True, blank=True)
    # The event's properties ({{ event.NAME }} in its messages; conditions read them).
    context = models.JSONField(default=dict, blank=True)
    # The steps reached: [[step id, ISO time], …].
    history = models.JSONField(default=list, blank=True)
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why it ended: the end, an exit step, the goal, an unsubscribe, a person's removal.
    outcome = models.CharField(max_length=200, blank=True, default="")

    objects = EnrollmentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact", "entry_key"], name="enrollment_entry_unique"
            ),
            models.UniqueConstraint(
                fields=["journey", "contact"],
                name="enrollment_single_active",
                condition=models.Q(status="active", single=True),
            ),
        ]
        indexes = [
            # What the engine claims, in order, and nothing else.
            models.Index(
                fields=["journey", "due_at"],
                name="enrollment_due",
                condition=models.Q(status="active"),
            ),
            # The step editor's counts: who is where.
            models.Index(
                fields=["journey", "step"],
                name="enrollment_at_step",
                condition=models.Q(status="active"),
            ),
            # Retention: finished enrollments, oldest first.
            models.Index(
                fields=["finished_at"],
                name="enrollment_finished",
                condition=models.Q(finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.contact_id}: {self.status} at {self.step or 'start'}"


class SegmentMember(models.Model):
    """Who was in the segment of a journey started by entering it, when it was last read:
    whoever is in it now and was not has entered."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "contact"], name="segment_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.contact_id}"


class StepTally(models.Model):
    """How many enrollments reached a step: written with the move, so the report counts
    what happened, exactly, without keeping a row per passage."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="tallies")
    step = models.CharField(max_length=16)
    reached = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "step"], name="step_tally_unique")
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.step}: {self.reached}"


class ContactEvent(models.Model):
    """Something a contact did that the account told Missive through the API
    (``POST /api/v1/events``): journeys start from it, wait for it as a goal and read its
    properties. Kept 13 months, like the events of messages."""

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="contact_events", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="custom_events")
    name = models.CharField(max_length=100)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    # The caller's Idempotency-Key: the same POST retried records (and enrolls) once.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                name="contact_event_idempotent",
                condition=models.Q(idempotency_key__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["contact", "name", "occurred_at"], name="contact_event_lookup"),
            models.Index(fields=["created_at"], name="contact_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.contact_id}"
