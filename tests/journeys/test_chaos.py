"""10,000 enrollments moved on by real Celery workers (subprocesses on the test database),
one of them SIGKILLed mid-way: no enrollment skips a step, none runs one twice, and the
messages sent twice are no more than the campaign pipeline's own bound.

The journey is an email then a tag: the advance writes the delivery, the tag, the new
positions and the step counts in one transaction, which a killed worker rolls back
whole; the email goes through the campaign pipeline (claim, lease, sweeper) to an SMTP
server on loopback. The test plays beat: ``journeys.tick`` and ``campaigns.sweep_sending``
as often as it likes.

Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable

from campaigns import tasks as campaign_tasks
from campaigns.models import Campaign, Delivery
from contacts import tagging
from contacts.models import ContactTag
from journeys import engine, services
from journeys import tasks as journey_tasks
from journeys.engine import Entrant
from journeys.models import Enrollment, StepTally
from tests.campaigns.test_sending_worker import (
    CHAOS_BATCH,
    CHAOS_CLAIM_TIMEOUT,
    CHAOS_CONCURRENCY,
    CHAOS_FLUSH,
    CHAOS_LANES,
    add_audience,
    sender,  # noqa: F401 - a fixture
)
from tests.workers import Worker

ENROLLMENTS = 10_000
# Advance batches of 100: a hundred of them, interleaved with the sending batches, so the
# kill finds enrollments still to move.
JOURNEY_BATCH = 100
D = Delivery.Status
E = Enrollment.Status
# The header each message carries: account, campaign and delivery.
SUPPORT = re.compile(rb"\r\nX-Missive-Campaign: (\d+)-(\d+)-(\d+)\r\n")


def journey_workers(workers, settings) -> Callable[[], Worker]:
    """What starts a worker: the campaign chaos test's short sending batches and leases,
    and small journey batches. The sweeps run in the test process, with the same
    settings."""
    worker_settings = {
        "MISSIVE_SEND_BATCH_SIZE": CHAOS_BATCH,
        "MISSIVE_SEND_FLUSH_EVERY": CHAOS_FLUSH,
        "MISSIVE_SEND_LANES": CHAOS_LANES,
        "MISSIVE_SEND_CLAIM_TIMEOUT": CHAOS_CLAIM_TIMEOUT,
        "MISSIVE_JOURNEY_BATCH": JOURNEY_BATCH,
    }
    for name, value in worker_settings.items():
        setattr(settings, name, value)
    pool = ("--pool=prefork", f"--concurrency={CHAOS_CONCURRENCY}")
    return lambda: workers.start(*pool, **worker_settings)


def deliveries_received(sink) -> Counter[int]:
    """How many times the SMTP server received each delivery's message."""
    received: Counter[int] = Counter()
    for message in sink.messages:
        found = SUPPORT.search(message.raw)
        assert found, message.raw[:2000]
        received[int(found.group(3))] += 1
    return received


def test_a_worker_killed_while_10000_enrollments_advance_skips_no_step(
    sender,  # noqa: F811
    workers,
    smtp_sink,
    settings,
):
    account, contact_list = sender
    sink = smtp_sink
    began = time.monotonic()
    owner = None

    # given a live journey, an email then a tag, for 10,000 subscribers
    tag, _ = tagging.tag_get_or_create(account=account, actor=owner, name="welcomed")
    journey = services.journey_create(account=account, actor=owner, name="Chaos")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger="event",
        trigger_config={"event": "signed_up"},
        lists=[contact_list],
    )
    email = services.step_add(journey=journey, actor=owner, type="email")
    tagging_step = services.step_add(journey=journey, actor=owner, type="tag", after=email["id"])
    services.step_change(
        journey=journey, actor=owner, step_id=tagging_step["id"], settings={"tag": tag.pk}
    )
    journey = services.journey_start(journey=journey, actor=owner)
    contacts = add_audience(account, contact_list, ENROLLMENTS)
    start_worker = journey_workers(workers, settings)
    first = start_worker()

    # when they all enter at once, and a worker is killed a third of the way through
    made = engine.enroll(journey, [Entrant(c.pk, "signed_up") for c in contacts])
    assert len(made) == ENROLLMENTS
    workers.wait_for(
        lambda: len(sink) >= ENROLLMENTS // 3,
        timeout=90,
        every=0.02,
        what=lambda: f"a third of the messages before the kill ({len(sink)} so far)",
        need_alive=first,
    )
    first.kill()
    killed_at = time.monotonic()
    received_at_kill = len(sink)
    orphaned = set(
        Delivery.objects.filter(campaign_id=email["campaign"], status=D.SENDING).values_list(
            "pk", flat=True
        )
    )
    inside_at_kill = Enrollment.objects.filter(journey=journey, status=E.ACTIVE).count()
    queued_at_kill = Delivery.objects.filter(campaign_id=email["campaign"]).count()
    assert received_at_kill < ENROLLMENTS, "the kill came after the last message"
    assert orphaned, "the kill came between sending batches: no claim was left to recover"
    assert inside_at_kill, "the kill came after every enrollment had moved on"

    second = start_worker()
    swept = kicked = 0

    def everyone_through() -> bool:
        nonlocal swept, kicked
        # What beat runs every minute (here every two seconds): the journeys' sweeper
        # (due enrollments nobody moves), the sending sweeper (claims of the dead,
        # queues nobody sends).
        kicked += journey_tasks.tick()["kicked"]
        swept += campaign_tasks.sweep_sending()["returned"]
        inside = Enrollment.objects.filter(journey=journey, status=E.ACTIVE).exists()
        unsent = (
            Delivery.objects.filter(campaign_id=email["campaign"]).exclude(status=D.SENT).exists()
        )
        return not inside and not unsent

    workers.wait_for(
        everyone_through,
        timeout=120,
        every=2,
        what=lambda: (
            f"every enrollment through and sent ({len(sink)} messages received, "
            f"{Enrollment.objects.filter(journey=journey, status=E.ACTIVE).count()} inside)"
        ),
        need_alive=second,
    )
    recovered = time.monotonic() - killed_at

    # then every enrollment ran each step once: one delivery, the tag, counted once
    statuses = Counter(Enrollment.objects.filter(journey=journey).values_list("status", "outcome"))
    assert statuses == {(E.COMPLETED, "Reached the end."): ENROLLMENTS}
    rows = Delivery.objects.filter(campaign_id=email["campaign"])
    per_enrollment = Counter(rows.values_list("enrollment_id", flat=True))
    assert set(per_enrollment) == set(made)
    assert set(per_enrollment.values()) == {1}
    assert set(rows.values_list("status", flat=True)) == {D.SENT}
    assert ContactTag.objects.filter(tag=tag).count() == ENROLLMENTS
    tallies = dict(StepTally.objects.filter(journey=journey).values_list("step", "reached"))
    assert tallies == {email["id"]: ENROLLMENTS, tagging_step["id"]: ENROLLMENTS}
    campaign = Campaign.objects.get(pk=email["campaign"])
    assert (campaign.recipients_count, campaign.sent_count) == (ENROLLMENTS, ENROLLMENTS)

    # and everyone received it, the repeats no more than the dead worker's unflushed
    # messages, each one a claim it held
    received = deliveries_received(sink)
    ids = set(rows.values_list("pk", flat=True))
    assert set(received) == ids, f"{len(ids - set(received))} never received"
    duplicates = {delivery_id: n for delivery_id, n in received.items() if n > 1}
    extra = sum(n - 1 for n in duplicates.values())
    print(
        f"\njourney chaos: {ENROLLMENTS} enrollments (advance batches of {JOURNEY_BATCH}), "
        f"killed after {received_at_kill} messages received, with {inside_at_kill} "
        f"enrollments still inside and {queued_at_kill} deliveries queued, {len(orphaned)} "
        f"claims in flight; {swept} claims returned by the sweep, {kicked} advances kicked "
        f"by the tick; {len(duplicates)} duplicates ({extra} extra messages), bound "
        f"{CHAOS_CONCURRENCY * CHAOS_FLUSH}; done {recovered:.1f}s after the kill, "
        f"{time.monotonic() - began:.1f}s in all"
    )
    bound = CHAOS_CONCURRENCY * CHAOS_FLUSH
    assert len(duplicates) <= bound, sorted(duplicates)[:10]
    assert set(duplicates) <= orphaned, set(duplicates) - orphaned
    workers.assert_no_tracebacks()
