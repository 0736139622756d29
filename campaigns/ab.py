"""A/B tests: two to four variants of a campaign, tried on a random share of its
audience, the rest sent the winner.

The ledger does it all. When the audience is taken (``split``, in the snapshot's
transaction) the test group is drawn at random and dealt round-robin to the variants, so
their sizes differ by one at most; the other rows are the *held* rest: queued, variant
``HELD``, not due before ``HOLD``. Choosing the winner (``choose_winner``, by the metric
when ``decide_at`` comes, or by hand) is one statement that makes the held rows due; the
lanes then send them the winner's content. A row is one contact and is sent once, so no
one gets two variants and a crash repeats no more than any send would.

Results count people only: a delivery's first open and first click are stamped for a
person's, never a machine's (campaigns.engagement).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from accounts.tasking import enqueue
from campaigns import blocks, rendering, sanitizing
from campaigns.models import ABTest, Campaign, Delivery, Editor
from campaigns.states import Action, State, TransitionRefused, next_state

HELD = -1
# Not due before the winner is chosen: far enough to never come by itself.
HOLD = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
LETTERS = "ABCD"
FIELDS = ("subject", "from_name", "preheader", "html")
MAX_VARIANTS = 4
MIN_SHARE, MAX_SHARE = 2, 100
MAX_WAIT_HOURS = 7 * 24
Z = 1.96  # 95 %


def letter(variant: int) -> str:
    return LETTERS[variant] if 0 <= variant < len(LETTERS) else "?"


# -- content ---------------------------------------------------------------------------------


def content_of(campaign: Campaign, variant: int | None) -> Campaign:
    """The campaign as variant ``variant`` is sent (an unsaved copy with B's, C's or D's
    fields over A's); A, or no variant, is the campaign itself."""
    if not variant:
        return campaign
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None or not 0 < variant <= len(test.variants):
        return campaign
    changed = copy.copy(campaign)
    for name, value in test.variants[variant - 1].items():
        if name in FIELDS and value:
            setattr(changed, name, value)
    if test.variants[variant - 1].get("html"):
        changed.text = sanitizing.html_to_text(changed.html)
    return changed


def variant_links(test: ABTest) -> list[str]:
    """The links of the variants' own content, to track beside the campaign's."""
    return [
        url
        for variant in test.variants
        if variant.get("html")
        for url in sanitizing.extract_links(variant["html"])
    ]


# -- setting up ------------------------------------------------------------------------------


def _editable(campaign: Campaign) -> None:
    if campaign.kind == Campaign.Kind.JOURNEY:
        raise ValidationError(
            "A journey's email cannot be an A/B test: its recipients come one by one."
        )
    try:
        next_state(campaign.status, Action.EDIT, campaign.kind)
    except TransitionRefused as refused:
        raise ValidationError(str(refused)) from None


def _variant_blocks(given: object, where: str, errors: dict[str, str]) -> dict[str, Any] | None:
    """A variant's own blocks, checked; None (with the problems in ``errors``) if wrong."""
    try:
        return blocks.clean_document(given)
    except blocks.BlocksInvalid as invalid:
        for path, message in invalid.errors.items():
            errors[f"{where}.{path}"] = message
        return None


def _clean_variants(campaign: Campaign, variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from campaigns.services import check_merge_tags  # (services imports this module)

    if not 1 <= len(variants) <= MAX_VARIANTS - 1:
        raise ValidationError({"variants": "Give one to three variants beside A."})
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for n, given in enumerate(variants, start=1):
        variant: dict[str, Any] = {name: str(given.get(name) or "").strip() for name in FIELDS}
        unknown = set(given) - {*FIELDS, "blocks"}
        if unknown:
            errors[f"variants.{n}"] = f"A variant has no {', '.join(sorted(unknown))}."
        for name in ("subject", "from_name", "preheader"):
            if "\n" in variant[name] or len(variant[name]) > 300:
                errors[f"variants.{n}.{name}"] = "One line of up to 300 characters."
        document = None
        if given.get("blocks") is not None:
            if campaign.editor != Editor.BLOCKS:
                errors[f"variants.{n}.blocks"] = (
                    "This campaign is written in HTML code: give a variant's content as html."
                )
            else:
                # Its own blocks make its content, whatever html came with them.
                document = _variant_blocks(given["blocks"], f"variants.{n}", errors)
                if document is not None:
                    variant["html"] = blocks.to_html(document)
        if variant["html"]:
            variant["html"] = sanitizing.sanitize_html(variant["html"])
        if not any(variant.values()):
            errors[f"variants.{n}"] = f"Variant {letter(n)} is the same as A: change something."
        try:
            check_merge_tags(
                campaign.account, **{k: v for k, v in variant.items() if k != "from_name"}
            )
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                errors[f"variants.{n}.{name}"] = " ".join(problems)
        if document is not None:
            variant["blocks"] = document
        cleaned.append(variant)
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def set_up(
    *,
    campaign: Campaign,
    actor: User | None,
    variants: list[dict[str, Any]],
    share: int = 20,
    metric: str = ABTest.Metric.OPENS,
    wait_hours: int = 4,
) -> ABTest:
    """Make the campaign (a draft) an A/B test, or change its test."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _editable(campaign)
    errors = {}
    if not MIN_SHARE <= share <= MAX_SHARE:
        errors["share"] = f"Test on {MIN_SHARE} to {MAX_SHARE} percent of the audience."
    if metric not in ABTest.Metric.values:
        errors["metric"] = "Choose opens, clicks or by hand."
    if not 1 <= wait_hours <= MAX_WAIT_HOURS:
        errors["wait_hours"] = f"Wait 1 to {MAX_WAIT_HOURS} hours before choosing."
    if errors:
        raise ValidationError(errors)
    cleaned = _clean_variants(campaign, variants)
    test, _ = ABTest.objects.update_or_create(
        campaign=campaign,
        defaults={"variants": cleaned, "share": share, "metric": metric, "wait_hours": wait_hours},
    )
    _content_changed(campaign)
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.ab_test_set",
        name=campaign.name,
        variants=test.count,
    )
    return test


def _content_changed(campaign: Campaign) -> None:
    """The variants changed: factories built for the campaign are stale, and the links to
    track are A's and the variants' own."""
    from campaigns.services import replace_links  # (services imports this module)

    Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now())
    replace_links(campaign)


def variant_document(campaign: Campaign, variant: int) -> dict[str, Any]:
    """The blocks of variant ``variant`` (1 for B…): its own, or, until it has some, a copy
    of A's to start from. ``LookupError`` when the campaign has no such variant."""
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None or not 0 < variant <= len(test.variants):
        raise LookupError(f"No variant {letter(variant)}.")
    own = test.variants[variant - 1].get("blocks")
    return copy.deepcopy(own or campaign.blocks or blocks.empty_document())


@transaction.atomic
def variant_blocks_set(
    *, campaign: Campaign, actor: User | None, variant: int, document: dict[str, Any]
) -> ABTest:
    """Give variant ``variant`` (1 for B…) of a blocks campaign these blocks as its content
    (checked, made into HTML, sanitized, its links tracked like A's)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _editable(campaign)
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None or not 0 < variant <= len(test.variants):
        raise ValidationError({"variant": f"This campaign has no variant {letter(variant)}."})
    variants = [dict(v) for v in test.variants]
    variants[variant - 1] = {**variants[variant - 1], "blocks": document}
    test.variants = _clean_variants(campaign, variants)
    test.save(update_fields=["variants"])
    _content_changed(campaign)
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.ab_variant_changed",
        name=campaign.name,
        variant=letter(variant),
    )
    return test


@transaction.atomic
def take_down(*, campaign: Campaign, actor: User | None) -> None:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _editable(campaign)
    if ABTest.objects.filter(campaign=campaign).delete()[0]:
        _content_changed(campaign)
        audit_log(
            account=campaign.account,
            actor=actor,
            action="campaign.ab_test_removed",
            name=campaign.name,
        )


# -- the send --------------------------------------------------------------------------------

_SPLIT_SQL = """
WITH drawn AS (
    SELECT id, row_number() OVER (ORDER BY random()) - 1 AS n
    FROM campaigns_delivery WHERE campaign_id = %(campaign)s
)
UPDATE campaigns_delivery AS d
SET variant = CASE WHEN drawn.n < %(size)s THEN (drawn.n %% %(count)s) ELSE %(held)s END,
    retry_at = CASE WHEN drawn.n < %(size)s THEN NULL ELSE %(hold)s END
FROM drawn WHERE d.id = drawn.id
"""


def group_size(test: ABTest, recipients: int) -> int:
    """How many of ``recipients`` are in the test group: the share, one a variant at
    least, everyone at most."""
    return min(recipients, max(test.count, math.ceil(recipients * test.share / 100)))


def split(campaign: Campaign, recipients: int) -> None:
    """Deal the campaign's ledger to the variants and the held rest (in the snapshot's
    transaction, before any row can be claimed)."""
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None or recipients == 0:
        return
    size = group_size(test, recipients)
    with connection.cursor() as cursor:
        cursor.execute(
            _SPLIT_SQL,
            {
                "campaign": campaign.pk,
                "size": size,
                "count": test.count,
                "held": HELD,
                "hold": HOLD,
            },
        )
    test.decide_at = (
        timezone.now() + dt.timedelta(hours=test.wait_hours) if size < recipients else None
    )
    test.save(update_fields=["decide_at"])


@transaction.atomic
def choose_winner(
    *, campaign: Campaign, variant: int, actor: User | None, by: str = "hand"
) -> ABTest:
    """The winner, chosen once: the held rest is made due in one statement and the lanes
    are started. Choosing again changes nothing."""
    test = ABTest.objects.select_for_update().filter(campaign=campaign).first()
    if test is None:
        raise ValidationError("This campaign is not an A/B test.")
    if test.winner is not None:
        return test
    if not 0 <= variant < test.count:
        raise ValidationError({"variant": f"Choose a variant from A to {letter(test.count - 1)}."})
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (State.SENDING, State.PAUSED) or campaign.snapshot_at is None:
        raise ValidationError("The winner is chosen once the test group has been sent to.")
    test.winner, test.decided_at, test.decided_by = variant, timezone.now(), by
    test.save(update_fields=["winner", "decided_at", "decided_by"])
    released = Delivery.objects.filter(
        campaign=campaign, status=Delivery.Status.QUEUED, variant=HELD, retry_at=HOLD
    ).update(retry_at=None)
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.ab_winner",
        name=campaign.name,
        variant=letter(variant),
        by=by,
        released=released,
    )
    transaction.on_commit(lambda: enqueue("campaigns.sweep_sending"))
    return test


def decide_due(now: dt.datetime | None = None) -> list[int]:
    """The beat's job: tests whose time has come get the winner their metric says."""
    now = now or timezone.now()
    due = ABTest.objects.filter(
        winner__isnull=True,
        decide_at__lte=now,
        campaign__status__in=[State.SENDING, State.PAUSED],
    ).exclude(metric=ABTest.Metric.HAND)
    decided = []
    for test in due.select_related("campaign"):
        found = results(test.campaign, test)
        best = leader(found, test.metric)
        choose_winner(campaign=test.campaign, variant=best, actor=None, by="auto")
        decided.append(test.campaign_id)
    return decided


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def value(self) -> float:
        return self.count / self.of if self.of else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson's 95 % interval: honest for small groups and rates near 0 or 1."""
        n = self.of
        if not n:
            return 0.0, 0.0
        p = self.value
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class VariantResult:
    variant: int
    recipients: int
    delivered: int
    opens: Rate
    clicks: Rate

    @property
    def letter(self) -> str:
        return letter(self.variant)


_RESULTS_SQL = """
SELECT variant, count(*),
    count(*) FILTER (WHERE status IN ('sent', 'complained')),
    count(*) FILTER (WHERE first_opened_at IS NOT NULL),
    count(*) FILTER (WHERE first_clicked_at IS NOT NULL)
FROM campaigns_delivery
WHERE campaign_id = %s AND variant >= 0
GROUP BY variant ORDER BY variant
"""


def results(campaign: Campaign, test: ABTest) -> list[VariantResult]:
    """Each variant's test group: how many, delivered, and people's opens and clicks."""
    with connection.cursor() as cursor:
        cursor.execute(_RESULTS_SQL, [campaign.pk])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    found = []
    for variant in range(test.count):
        recipients, delivered, opened, clicked = rows.get(variant, (0, 0, 0, 0))
        found.append(
            VariantResult(
                variant=variant,
                recipients=recipients,
                delivered=delivered,
                opens=Rate(opened, delivered),
                clicks=Rate(clicked, delivered),
            )
        )
    return found


def _rate(result: VariantResult, metric: str) -> Rate:
    return result.clicks if metric == ABTest.Metric.CLICKS else result.opens


def leader(found: list[VariantResult], metric: str) -> int:
    """The variant with the best rate of the metric (opens for a choice by hand); the
    first of them on a tie."""
    measure = ABTest.Metric.CLICKS if metric == ABTest.Metric.CLICKS else ABTest.Metric.OPENS
    return max(found, key=lambda r: (_rate(r, measure).value, -r.variant)).variant


def meaningful(found: list[VariantResult], metric: str) -> bool:
    """Whether the leader's rate differs from the runner-up's more than chance would
    make it (a two-proportion test at 95 %)."""
    measure = ABTest.Metric.CLICKS if metric == ABTest.Metric.CLICKS else ABTest.Metric.OPENS
    ranked = sorted(found, key=lambda r: _rate(r, measure).value, reverse=True)
    if len(ranked) < 2:
        return False
    first, second = _rate(ranked[0], measure), _rate(ranked[1], measure)
    if not first.of or not second.of:
        return False
    pooled = (first.count + second.count) / (first.of + second.of)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / first.of + 1 / second.of))
    if spread == 0:
        return False
    return abs(first.value - second.value) / spread >= Z


def describe(campaign: Campaign, test: ABTest) -> dict[str, Any]:
    """What the campaign page and the API show of a test."""
    found = results(campaign, test) if campaign.snapshot_at else []
    metric = test.metric
    return {
        "results": found,
        "leader": leader(found, metric) if found else None,
        "meaningful": meaningful(found, metric) if found else False,
        "held": Delivery.objects.filter(campaign=campaign, variant=HELD).count()
        if campaign.snapshot_at
        else 0,
    }


def subject_preview(campaign: Campaign, variant: int) -> str:
    """A variant's subject as the sample recipient would read it."""
    content = content_of(campaign, variant)
    try:
        return rendering.compile_template(content.subject, autoescape=False).render(
            rendering.sample_values(account_name=campaign.account.name)
        )
    except rendering.TemplateRefused:
        return content.subject


def _percent(value: float) -> str:
    return f"{value * 100:.1f}"


def page_context(campaign: Campaign) -> dict[str, object]:
    """The A/B test's form values, and once sent each variant's figures."""
    test = ABTest.objects.filter(campaign=campaign).first()
    given = test.variants if test else []
    forms = [
        (letter, given[n] if n < len(given) else dict.fromkeys(FIELDS, ""), n + 1)
        for n, letter in enumerate(LETTERS[1:])
    ]
    context: dict[str, object] = {"test": test, "forms": forms}
    if test is None or campaign.snapshot_at is None:
        return context
    described = describe(campaign, test)
    rows = []
    for result in described["results"]:
        opens, clicks = result.opens, result.clicks
        rows.append(
            {
                "variant": result.variant,
                "letter": result.letter,
                "subject": subject_preview(campaign, result.variant),
                "recipients": result.recipients,
                "delivered": result.delivered,
                "opens": (_percent(opens.value), opens.count, *map(_percent, opens.interval)),
                "clicks": (_percent(clicks.value), clicks.count, *map(_percent, clicks.interval)),
                "winner": result.variant == test.winner,
                "leader": result.variant == described["leader"],
            }
        )
    context.update(
        rows=rows,
        held=described["held"],
        meaningful=described["meaningful"],
        winner=letter(test.winner) if test.winner is not None else "",
    )
    return context
