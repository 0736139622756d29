"""The segment conditions that read what campaigns did: opened, clicked, received,
unopened in a row, bounced. Registered with audiences.conditions when this app loads
(audiences sits below campaigns and cannot read its tables itself).

People only: an open or click a machine made (an image proxy, a link scanner) never
counts. Without a campaign, "opened" and "clicked" read the contact's newest human open
and click (stamped by campaigns.engagement); with one, that campaign's deliveries and
their events.
"""

# ruff: noqa: S608 - SQL text is made from this module's constants; values are parameters
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import Q

from audiences.conditions import (
    DAYS,
    ID,
    NUMBER,
    Context,
    Fault,
    Field,
    Op,
    Sql,
    owned_id,
    parse_id,
    register,
)
from audiences.models import Segment
from audiences.services import register_users
from campaigns.models import Campaign, Delivery, Link
from campaigns.states import State
from events.models import Event

ENGAGEMENT_OPS = {
    "ever": Op("ever"),
    "never": Op("never"),
    "in_last_days": Op("in the last … days", DAYS),
    "not_in_last_days": Op("not in the last … days", DAYS),
}
# A message the person received: sent, and not bounced back (a complaint was received).
RECEIVED = (Delivery.Status.SENT.value, Delivery.Status.COMPLAINED.value)


def _campaign_id(condition: Mapping[str, Any], ctx: Context, key: str = "campaign") -> int:
    return owned_id(
        condition,
        ctx,
        key,
        "campaigns",
        lambda: Campaign.objects.for_account(ctx.account).values_list("pk", flat=True),
    )


def campaign_options(ctx: Context) -> list[tuple[int, str]]:
    """The campaigns that went out (or are going), newest first."""
    return list(
        Campaign.objects.for_account(ctx.account)
        .filter(started_at__isnull=False)
        .order_by("-started_at")
        .values_list("pk", "name")[:200]
    )


class Engagement(Field):
    group = "Engagement"
    ops = ENGAGEMENT_OPS

    def __init__(self, name: str, label: str, event: str, column: str, first: str) -> None:
        self.name, self.label = name, label
        self.event, self.column, self.first = event, column, first
        self.extras = ("campaign", "link") if name == "clicked" else ("campaign",)

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        if key == "link":
            try:
                campaign_id = int(condition.get("campaign") or 0)
            except (TypeError, ValueError):
                return []
            return [
                (pk, f"{position + 1}. {url[:80]}")
                for pk, position, url in Link.objects.for_account(ctx.account)
                .filter(campaign_id=campaign_id)
                .values_list("pk", "position", "url")
            ]
        return campaign_options(ctx)

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        if condition.get("link") not in (None, "") and self.name != "clicked":
            raise Fault("link", "Only a click is of a link: use “clicked” for it.")
        if condition.get("link") not in (None, "") and self.name == "clicked":
            link_id = parse_id(condition.get("link"), "link")
            campaign = (
                Link.objects.for_account(ctx.account)
                .filter(pk=link_id)
                .values_list("campaign_id", flat=True)
                .first()
            )
            if campaign is None:
                raise Fault("link", f"There is no link {link_id} in this account's campaigns.")
            if condition.get("campaign") not in (None, "") and parse_id(
                condition["campaign"], "campaign"
            ) != int(campaign):
                raise Fault("link", f"Link {link_id} is not a link of that campaign.")
            cleaned["campaign"], cleaned["link"] = int(campaign), link_id
        elif condition.get("campaign") not in (None, ""):
            cleaned["campaign"] = _campaign_id(condition, ctx)
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        op = condition["op"]
        since = (
            ctx.now - dt.timedelta(days=condition["value"])
            if op in ("in_last_days", "not_in_last_days")
            else None
        )
        if "campaign" not in condition:
            column = f"c.{self.column}"
            if op == "ever":
                return f"{column} IS NOT NULL"
            if op == "never":
                return f"{column} IS NULL"
            test = f"coalesce({column} >= {q.p(since)}, false)"
            return test if op == "in_last_days" else f"NOT {test}"
        campaign = q.p(condition["campaign"])
        if op in ("ever", "never") and "link" not in condition:
            test = (
                "EXISTS (SELECT 1 FROM campaigns_delivery AS d WHERE d.contact_id = c.id "
                f"AND d.campaign_id = {campaign} AND d.{self.first} IS NOT NULL)"
            )
        else:
            # Parameters are positional: each is taken in the order it appears in the text.
            account, event = q.p(ctx.account.pk), q.p(self.event)
            link = f" AND e.link_id = {q.p(condition['link'])}" if "link" in condition else ""
            when = f" AND e.occurred_at >= {q.p(since)}" if since is not None else ""
            test = (
                "EXISTS (SELECT 1 FROM campaigns_delivery AS d WHERE d.contact_id = c.id "
                f"AND d.campaign_id = {campaign} AND EXISTS (SELECT 1 FROM stats_event AS e "
                f"WHERE e.delivery_id = d.id AND e.account_id = {account} "
                f"AND e.campaign_id = d.campaign_id AND e.type = {event} "
                f"AND NOT e.machine{link}{when}))"
            )
        return test if op in ("ever", "in_last_days") else f"NOT {test}"


class Received(Field):
    name, label, group = "received", "Received a campaign", "Engagement"
    ops = {"ever": Op("received", ID), "never": Op("did not receive", ID)}

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        return campaign_options(ctx)

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        cleaned["value"] = _campaign_id(cleaned, ctx, "value")
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        test = (
            "EXISTS (SELECT 1 FROM campaigns_delivery AS d WHERE d.contact_id = c.id "
            f"AND d.campaign_id = {q.p(condition['value'])} "
            f"AND d.status = ANY({q.p(list(RECEIVED))}))"
        )
        return test if condition["op"] == "ever" else f"NOT {test}"


class UnopenedStreak(Field):
    """How many campaigns a person received since the last one they opened (all they
    received, if they never opened one)."""

    name, group = "unopened_streak", "Engagement"
    label = "Campaigns received without opening, in a row"
    ops = {"at_least": Op("at least", NUMBER), "less_than": Op("fewer than", NUMBER)}

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        value = cleaned["value"]
        if value != int(value) or not 0 <= value <= 10_000:
            raise Fault("value", "Give a whole number of campaigns, from 0 to 10000.")
        cleaned["value"] = int(value)
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        received = q.p(list(RECEIVED))
        streak = (
            "(SELECT count(*) FROM campaigns_delivery AS d WHERE d.contact_id = c.id "
            f"AND d.status = ANY({received}) AND d.first_opened_at IS NULL "
            "AND d.sent_at > coalesce((SELECT max(o.sent_at) FROM campaigns_delivery AS o "
            "WHERE o.contact_id = c.id AND o.first_opened_at IS NOT NULL), '-infinity'))"
        )
        symbol = ">=" if condition["op"] == "at_least" else "<"
        return f"{streak} {symbol} {q.p(condition['value'])}"


class SoftBounced(Field):
    """A soft bounce (a full or unavailable mailbox), returned or still being retried."""

    name, label, group = "soft_bounced", "Soft bounce", "Engagement"
    ops = {"ever": Op("ever"), "in_last_days": Op("in the last … days", DAYS)}

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        # Parameters are positional: each is taken in the order it appears in the text.
        # A soft bounce the provider still retries is recorded as a deferral of kind soft;
        # both count, as they do towards suppressing the address (stats.feedback).
        account = q.p(ctx.account.pk)
        bounce = q.p([Event.Type.BOUNCE.value, Event.Type.DEFERRED.value])
        when = ""
        if condition["op"] == "in_last_days":
            when = f" AND e.occurred_at >= {q.p(ctx.now - dt.timedelta(days=condition['value']))}"
        return (
            "EXISTS (SELECT 1 FROM campaigns_delivery AS d WHERE d.contact_id = c.id "
            "AND EXISTS (SELECT 1 FROM stats_event AS e WHERE e.delivery_id = d.id "
            f"AND e.account_id = {account} AND e.type = ANY({bounce}) "
            f"AND e.detail ->> 'kind' = 'soft'{when}))"
        )


def campaigns_needing(segment: Segment) -> list[str]:
    """The campaigns that will still take their audience from ``segment``: drafts,
    scheduled ones, and those started whose audience is not taken yet."""
    waiting = Q(status__in=[State.DRAFT, State.SCHEDULED]) | Q(
        status__in=[State.SENDING, State.PAUSED], snapshot_at__isnull=True
    )
    names = (
        Campaign.objects.for_account(segment.account)
        .filter(waiting, segment=segment)
        .values_list("name", flat=True)
    )
    return [f"“{name}”" for name in names]


def register_all() -> None:
    register_users(campaigns_needing)
    for spec in (
        Engagement("opened", "Opened", Event.Type.OPEN.value, "last_opened_at", "first_opened_at"),
        Engagement(
            "clicked", "Clicked", Event.Type.CLICK.value, "last_clicked_at", "first_clicked_at"
        ),
        Received(),
        UnopenedStreak(),
        SoftBounced(),
    ):
        register(spec)
