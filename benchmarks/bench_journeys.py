"""Journeys: 100,000 enrollments through an email step, beside a campaign to the same people.

The same newsletter (bench_sending's), the same 100,000 contacts, the same real Celery
workers on the production settings and the same SMTP sink (an aiosmtpd process that
counts and discards), two ways:

- the baseline, a campaign: timed from ``campaign_start`` (the snapshot is queued as it
  commits) until the sink has received every message;
- the journey, one email step: timed from ``engine.enroll`` of all 100,000 (the advance
  is queued as it commits; each advance batch queues the sending of what it added)
  until the sink has received every message.

Both figures are messages per second, end to end; the ratio is the journey's share of
the campaign's rate. The CPU time of each process (workers, PostgreSQL, Redis, the sink)
per message is printed for both, then one advance batch runs in this process, timed by
part, to show where a journey's own time goes.

    make bench BENCH_ARGS="journeys --contacts 20000"       (or BENCH_RECIPIENTS=20000)
    make bench BENCH_ARGS="journeys --journey-batch 1000 --concurrency 4"
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from benchmarks.bench_sending import (
    StepTimes,
    Workers,
    World,
    _ledger,
    _make_audience,
    _make_world,
    celery_workers,
    smtp_sink,
)
from benchmarks.harness import (
    CpuMeter,
    Figure,
    PostgresCpu,
    bench_options,
    production_environment,
    redis_pid,
    scratch_database,
)

if TYPE_CHECKING:
    from benchmarks.bench_sending import Sink
    from journeys.models import Journey


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="journeys", allow_abbrev=False)
    parser.add_argument(
        "--contacts", type=int, default=int(os.environ.get("BENCH_RECIPIENTS", "100000"))
    )
    # The sending settings of bench_sending, for both runs.
    parser.add_argument("--concurrency", type=int, default=4, help="celery worker processes")
    parser.add_argument("--lanes", type=int, default=4, help="MISSIVE_SEND_LANES")
    parser.add_argument("--batch-size", type=int, default=500, help="MISSIVE_SEND_BATCH_SIZE")
    parser.add_argument("--flush-every", type=int, default=100, help="MISSIVE_SEND_FLUSH_EVERY")
    parser.add_argument(
        "--journey-batch", type=int, default=500, help="MISSIVE_JOURNEY_BATCH (advance)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the advance profile")
    return bench_options(parser)


def _journey_of(world: World, name: str, contact_list_id: int | None = None) -> Journey:
    """A live journey of one email step whose message is the campaign's newsletter, to
    the world's list (or another)."""
    from campaigns import services as campaign_services
    from campaigns.models import Campaign
    from contacts.models import ContactList
    from journeys import services

    contact_list = (
        ContactList.objects.get(pk=contact_list_id) if contact_list_id else world.contact_list
    )
    journey = services.journey_create(account=world.account, actor=world.owner, name=name)
    services.journey_update(
        journey=journey,
        actor=world.owner,
        trigger="event",
        trigger_config={"event": "signed_up"},
        lists=[contact_list],
    )
    step = services.step_add(journey=journey, actor=world.owner, type="email")
    campaign_services.campaign_update(
        campaign=Campaign.objects.get(pk=step["campaign"]),
        actor=world.owner,
        editor="html",
        subject=world.campaign.subject,
        preheader=world.campaign.preheader,
        html=world.campaign.html,
    )
    return services.journey_start(journey=journey, actor=world.owner)


def _email_of(journey: Journey) -> int:
    from journeys import steps as stepping

    assert journey.version is not None, "the journey is live"
    [campaign_id] = stepping.email_campaigns(journey.version.steps)
    return campaign_id


def _wait_for(
    sink: Sink, target: int, workers: Workers, timeout: float, what: str
) -> tuple[float, int]:
    """Seconds until the sink has received ``target`` messages (from now)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while sink.count < target:
        if workers.process.poll() is not None:
            raise RuntimeError(f"the celery worker died:\n{workers.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what}: {sink.count:,} of {target:,} after {timeout:.0f} s:\n"
                f"{workers.log.read_text()[-3000:]}"
            )
        time.sleep(0.02)
    return time.perf_counter() - started, sink.count


def _settled(campaign_id: int, expected: int, timeout: float = 60) -> dict[str, int]:
    """The ledger once every message is recorded as sent (flushes trail the sink)."""
    deadline = time.monotonic() + timeout
    while True:
        ledger = _ledger(campaign_id)
        if ledger.get("sent", 0) >= expected or time.monotonic() > deadline:
            return ledger
        time.sleep(0.2)


def _cpu_lines(meter: CpuMeter, messages: int, seconds: float) -> None:
    cores = meter.machine_total / seconds
    used = {**meter.used, "interrupts (loopback network)": meter.interrupts}
    for name, spent in used.items():
        print(
            f"     {name:<30} {spent / messages * 1e6:7.0f} µs ({spent:6.1f} s, "
            f"{100 * spent / meter.machine_total:4.1f} % of the machine)"
        )
    ours = sum(used.values())
    print(
        f"     {'all of the above':<30} {ours / messages * 1e6:7.0f} µs: on {cores:.0f} idle "
        f"cores, at most {cores * messages / ours:,.0f} messages/s"
    )


def _timed(
    workers: Workers,
    sink: Sink,
    postgres: PostgresCpu,
    begin: Callable[[], object],
    target: int,
    what: str,
) -> tuple[float, CpuMeter]:
    meter = CpuMeter(
        {
            "celery worker": workers.process.pid,
            "postgresql": postgres,
            "redis": redis_pid(),
            "smtp sink": sink.pid,
            "this process": time.process_time,
        }
    )
    meter.start()
    started = time.perf_counter()
    begin()
    _wait_for(sink, target, workers, timeout=max(600, target / 20), what=what)
    seconds = time.perf_counter() - started
    meter.stop()
    return seconds, meter


# -- one advance batch, in this process, timed by part -----------------------------------------


def _advance_parts() -> list[tuple[str, object, str]]:
    from journeys import engine

    return [
        ("_versions (the steps)", engine, "_versions"),
        ("_people (address, subscribed, suppressed)", engine, "_people"),
        ("_leave_or_stay", engine, "_leave_or_stay"),
        ("_run (the steps)", engine, "_run"),
        ("_save (positions, history, tallies)", engine, "_save"),
        ("add_deliveries (the ledger)", engine, "add_deliveries"),
        ("due_exists (after the commit)", engine, "due_exists"),
    ]


def profile_advance(world: World, batch: int) -> None:
    """Advance batches of a journey of the same email for fresh contacts, in this
    process: one to warm up, one timed by part."""
    from django.test import override_settings

    from contacts import services
    from contacts.models import Subscription
    from journeys import engine
    from journeys.engine import Entrant

    small = services.list_create(account=world.account, actor=world.owner, name="Profiled")
    _make_audience(world.account.pk, small.pk, 2 * batch, first=20_000_000)
    journey = _journey_of(world, "Profiled advance", small.pk)
    contacts = Subscription.objects.filter(contact_list=small).values_list("contact_id", flat=True)
    engine.enroll(journey, [Entrant(pk, "profiled") for pk in contacts])
    with override_settings(MISSIVE_JOURNEY_BATCH=batch):
        engine.advance(journey.pk)  # warm-up
        times = StepTimes()
        with ExitStack() as stack:
            for label, owner, attribute in _advance_parts():
                original = getattr(owner, attribute)
                stack.enter_context(
                    mock.patch.object(owner, attribute, times.wrap(label, original))
                )
            started, cpu = time.perf_counter(), time.process_time()
            report = engine.advance(journey.pk)
            total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
    moved = max(report.claimed, 1)
    print(
        f"   one advance batch in this process ({report.claimed} enrollments, "
        f"{report.queued} emails queued): {total * 1000:.0f} ms, per enrollment "
        f"{total / moved * 1e6:.0f} µs, of which CPU {total_cpu / moved * 1e6:.0f} µs"
    )
    print(f"     {'µs per enrollment':<46} {'wall':>6} {'CPU':>6}")
    # The parts are called one after the other by ``advance``, none inside another.
    accounted = accounted_cpu = 0.0
    for label, _owner, _attribute in _advance_parts():
        seconds, cpu = times.seconds.get(label, 0.0), times.cpu.get(label, 0.0)
        accounted += seconds
        accounted_cpu += cpu
        print(
            f"     {label:<46} {seconds / moved * 1e6:6.0f} {cpu / moved * 1e6:6.0f}  "
            f"({times.calls.get(label, 0)} calls)"
        )
    rest, rest_cpu = total - accounted, total_cpu - accounted_cpu
    print(
        f"     {'the rest (journey row, claim, commit)':<46} "
        f"{rest / moved * 1e6:6.0f} {rest_cpu / moved * 1e6:6.0f}"
    )


# -- run --------------------------------------------------------------------------------------


def run() -> list[Figure]:
    opts = _options()
    contacts = opts.contacts
    settings_used = {
        "MISSIVE_SEND_LANES": str(opts.lanes),
        "MISSIVE_SEND_BATCH_SIZE": str(opts.batch_size),
        "MISSIVE_SEND_FLUSH_EVERY": str(opts.flush_every),
        "MISSIVE_JOURNEY_BATCH": str(opts.journey_batch),
    }
    with scratch_database(), tempfile.TemporaryDirectory(prefix="missive-bench-") as tmp:
        from campaigns import services as campaign_services
        from contacts.models import Contact
        from journeys import engine
        from journeys.engine import Entrant
        from journeys.models import Enrollment

        started = time.perf_counter()
        world = _make_world(contacts)
        journey = _journey_of(world, "Welcome")
        journey_email = _email_of(journey)
        ids = list(
            Contact.objects.filter(account=world.account)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        print(f"   {contacts:,} contacts made in {time.perf_counter() - started:.1f} s")

        with smtp_sink() as sink:
            env = production_environment(EMAIL_URL=f"smtp://127.0.0.1:{sink.port}", **settings_used)
            with (
                celery_workers(env, opts.concurrency, Path(tmp)) as workers,
                PostgresCpu() as postgres,
            ):
                print(
                    f"   celery worker --concurrency={opts.concurrency}, "
                    + ", ".join(f"{k}={v}" for k, v in settings_used.items())
                )
                # The baseline: the campaign, from its start to the last message received.
                before = sink.count
                campaign_seconds, campaign_meter = _timed(
                    workers,
                    sink,
                    postgres,
                    lambda: campaign_services.campaign_start(
                        campaign=world.campaign, actor=world.owner
                    ),
                    before + contacts,
                    "the campaign",
                )
                ledger = _settled(world.campaign.pk, contacts)
                print(
                    f"   campaign: {contacts:,} messages received in {campaign_seconds:.1f} s "
                    f"({contacts / campaign_seconds:,.0f}/s); ledger {ledger}"
                )
                print("   CPU per message, the campaign:")
                _cpu_lines(campaign_meter, contacts, campaign_seconds)

                # The journey: from enrolling everyone to the last message received.
                before = sink.count
                journey_seconds, journey_meter = _timed(
                    workers,
                    sink,
                    postgres,
                    lambda: engine.enroll(journey, [Entrant(pk, "signed_up") for pk in ids]),
                    before + contacts,
                    "the journey",
                )
                ledger = _settled(journey_email, contacts)
                inside = Enrollment.objects.filter(journey=journey, status="active").count()
                print(
                    f"   journey: {contacts:,} messages received in {journey_seconds:.1f} s "
                    f"({contacts / journey_seconds:,.0f}/s); ledger {ledger}; "
                    f"{inside} enrollments still inside"
                )
                if ledger.get("sent") != contacts or inside:
                    print("   WARNING: the journey did not send every message exactly once")
                print("   CPU per message, the journey:")
                _cpu_lines(journey_meter, contacts, journey_seconds)
                campaign_meter.report_others("the campaign")
                journey_meter.report_others("the journey")
            if not opts.no_profile:
                profile_advance(world, opts.journey_batch)

    return [
        Figure(
            f"journey, {contacts:,} enrollments",
            contacts / journey_seconds,
            "campaign to the same contacts",
            contacts / campaign_seconds,
            "msg/s",
            target="ratio ≥ 0.8",
        ),
    ]
