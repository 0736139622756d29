"""What the journey pages and the API read: the account's journeys, each step's counts,
who is inside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from accounts.models import Account
from campaigns.models import Campaign, Delivery
from journeys import steps as stepping
from journeys.models import ContactEvent, Enrollment, Journey, StepTally

E = Enrollment.Status
D = Delivery.Status


def journeys(account: Account) -> QuerySet[Journey]:
    return Journey.objects.for_account(account)


def enrollments(account: Account) -> QuerySet[Enrollment]:
    return Enrollment.objects.for_account(account).select_related("contact", "version")


def contact_events(account: Account) -> QuerySet[ContactEvent]:
    return ContactEvent.objects.for_account(account)


@dataclass(frozen=True)
class EmailFigures:
    sent: int
    opened: int  # people, not machines (first_opened_at is stamped for people only)
    clicked: int
    unsubscribed: int


@dataclass
class StepFigures:
    reached: int = 0  # enrollments that reached the step, all versions
    waiting: int = 0  # resting there now (a wait, or a step held for a problem)
    email: EmailFigures | None = None

    @property
    def passed(self) -> int:
        return max(self.reached - self.waiting, 0)


@dataclass(frozen=True)
class Totals:
    inside: int
    completed: int
    exited: int
    entered: int


def step_figures(journey: Journey, steps: Sequence[Mapping[str, Any]]) -> dict[str, StepFigures]:
    """Each step's counts, by step id: reached, waiting there now and, for an email, how
    many it was sent to and how many of them opened or clicked it."""
    figures: dict[str, StepFigures] = {s["id"]: StepFigures() for s in stepping.walk(steps)}
    for step, reached in StepTally.objects.filter(journey=journey).values_list("step", "reached"):
        if step in figures:
            figures[step].reached = reached
    waiting = (
        Enrollment.objects.filter(journey=journey, status=E.ACTIVE)
        .values_list("step")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for step, n in waiting:
        if step in figures:
            figures[step].waiting = n
    by_campaign = {
        int(s["campaign"]): s["id"] for s in stepping.walk(steps) if s.get("type") == "email"
    }
    for campaign_id, email in email_figures(list(by_campaign)).items():
        figures[by_campaign[campaign_id]].email = email
    return figures


def email_figures(campaign_ids: list[int]) -> dict[int, EmailFigures]:
    if not campaign_ids:
        return {}
    rows = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(
            sent=Count("pk", filter=Q(status__in=[D.SENT, D.BOUNCED, D.COMPLAINED])),
            opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(first_clicked_at__isnull=False)),
        )
        .order_by()
    )
    unsubscribed = dict(
        Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "skipped_count")
    )
    return {
        row["campaign_id"]: EmailFigures(
            sent=row["sent"],
            opened=row["opened"],
            clicked=row["clicked"],
            unsubscribed=unsubscribed.get(row["campaign_id"], 0),
        )
        for row in rows
    }


def totals(journey: Journey) -> Totals:
    counts = Enrollment.objects.filter(journey=journey).aggregate(
        inside=Count("pk", filter=Q(status=E.ACTIVE)),
        completed=Count("pk", filter=Q(status=E.COMPLETED)),
        exited=Count("pk", filter=Q(status=E.EXITED)),
        entered=Count("pk"),
    )
    return Totals(**{k: int(v or 0) for k, v in counts.items()})


@dataclass
class Row:
    """A step as the editor shows it: its place in the tree and its counts."""

    step: Mapping[str, Any]
    depth: int
    branch: str  # "yes" / "no" inside a condition, else ""
    figures: StepFigures
    campaign: Campaign | None = None
    children: dict[str, list[Row]] = field(default_factory=dict)


def rows(
    journey: Journey, steps: Sequence[Mapping[str, Any]], figures: Mapping[str, StepFigures]
) -> list[Row]:
    """The steps as a tree of rows, each with its email's campaign when it has one."""
    campaigns = {
        c.pk: c
        for c in Campaign.objects.for_account(journey.account).filter(
            pk__in=stepping.email_campaigns(steps)
        )
    }

    def build(items: Sequence[Mapping[str, Any]], depth: int, branch: str) -> list[Row]:
        built = []
        for step in items:
            row = Row(
                step=step,
                depth=depth,
                branch=branch,
                figures=figures.get(step["id"], StepFigures()),
                campaign=campaigns.get(int(step["campaign"])) if step.get("campaign") else None,
            )
            if step.get("type") == "condition":
                row.children = {
                    "yes": build(step.get("yes") or [], depth + 1, "yes"),
                    "no": build(step.get("no") or [], depth + 1, "no"),
                }
            built.append(row)
        return built

    return build(steps, 0, "")


def journey_of_email(campaign: Campaign) -> Journey | None:
    """The journey whose step sends this campaign (a journey's email)."""
    if campaign.kind != Campaign.Kind.JOURNEY:
        return None
    for journey in Journey.objects.for_account(campaign.account).only("pk", "draft", "name"):
        if campaign.pk in stepping.email_campaigns(journey.draft or []):
            return journey
    return None
