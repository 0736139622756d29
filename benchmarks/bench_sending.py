"""Campaign sending: a tracked newsletter to 100,000 recipients, pipeline against bare smtplib.

A personalized newsletter goes through the real pipeline (Celery workers, PostgreSQL,
Redis) and, as the baseline, through a bare smtplib loop to the same SMTP sink.

The pipeline is timed from ``campaign_start`` (which queues the snapshot once its
transaction commits) to the campaign's status ``sent``, with real ``celery worker``
processes running the production settings, and every message received by an aiosmtpd
sink in a process of its own that counts and discards. The baseline sends as many
pre-built messages of the same campaign (same size, same headers) with ``smtplib`` over
one connection to the same sink.

The sink reads each message in blocks (aiosmtpd's own DATA reader, a line at a time,
costs it ~3x the CPU and makes it the limit of both figures); ``--stock-sink`` uses
aiosmtpd as it comes. This machine is shared: the rates move with what else runs, so the
CPU time of each process (workers, PostgreSQL, Redis, the sink) per message is printed
too, with what it allows on idle cores. Then, to show where the time goes, one batch of
the same campaign runs in this process, timed by step (wall clock and CPU), and another
under cProfile.

    make bench BENCH_ARGS="sending --recipients 5000"          (or BENCH_RECIPIENTS=5000)
    make bench BENCH_ARGS="sending --concurrency 3 --lanes 3 --batch-size 200 --flush-every 50"
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import io
import logging
import multiprocessing
import os
import pstats
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from django.db import connection, connections
from psycopg import sql

from benchmarks.harness import (
    BASE_URL,
    CpuMeter,
    Figure,
    PostgresCpu,
    bench_options,
    production_environment,
    redis_pid,
    scratch_database,
    stop_process,
)

if TYPE_CHECKING:
    from accounts.models import Account, User
    from campaigns.models import Campaign
    from contacts.models import ContactList

CELERY = str(Path(sys.executable).parent / "celery")
BASE_DIR = Path(__file__).resolve().parent.parent
FROM_EMAIL = "news@shop.example.com"


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sending", allow_abbrev=False)
    parser.add_argument(
        "--recipients", type=int, default=int(os.environ.get("BENCH_RECIPIENTS", "100000"))
    )
    # Two cores, and four worker processes (and lanes): a worker waits for the SMTP
    # server and for its commits a good part of the time, so two per core keep both busy.
    # Batches of 500 make a task's fixed cost (a new database connection, the campaign,
    # the SMTP session: some 8 ms of CPU) small per message, and a flush every 100 halves
    # the commits of the default (50) while a killed worker still repeats at most 100.
    parser.add_argument("--concurrency", type=int, default=4, help="celery worker processes")
    parser.add_argument("--lanes", type=int, default=4, help="MISSIVE_SEND_LANES")
    parser.add_argument("--batch-size", type=int, default=500, help="MISSIVE_SEND_BATCH_SIZE")
    parser.add_argument("--flush-every", type=int, default=100, help="MISSIVE_SEND_FLUSH_EVERY")
    parser.add_argument("--no-profile", action="store_true", help="skip the one-batch profile")
    parser.add_argument(
        "--stock-sink",
        action="store_true",
        help="aiosmtpd reading DATA line by line, as it comes (costs the sink ~3x the CPU)",
    )
    return bench_options(parser)


# -- the newsletter --------------------------------------------------------------------------

_SHOP = "https://shop.example.com"
_ARTICLES = [
    ("The autumn collection is here", f"{_SHOP}/collections/autumn?utm_source=newsletter"),
    ("How we source our wool", f"{_SHOP}/journal/how-we-source-our-wool"),
    ("Five ways to layer for the cold", f"{_SHOP}/journal/five-ways-to-layer"),
    ("Meet the makers in Porto", f"{_SHOP}/journal/meet-the-makers-porto"),
    ("Repair, don't replace: our free mending service", f"{_SHOP}/services/mending"),
    ("Gift cards for the holidays", f"{_SHOP}/gift-cards?utm_campaign=holidays"),
]
_FOOTER_LINKS = [
    ("Instagram", "https://instagram.example.com/shop"),
    ("Stores", f"{_SHOP}/stores"),
    ("Help", f"{_SHOP}/help"),
    ("Your account", f"{_SHOP}/account"),
]
_PARAGRAPH = (
    "Our knitters in the north of Portugal have spent the summer on this one: a heavier "
    "gauge, a softer hand and colours taken from the hills around the workshop. Every piece "
    "is made in small runs, so when a colour is gone it is gone until next year. We have "
    "kept the prices where they were last season, and the mending service still comes free "
    "with every garment for as long as you own it. "
)


def newsletter_html() -> str:
    """A realistic newsletter: layout tables, inline styles, a <style> block, images,
    ten distinct links (each article's headline and button share one), merge tags."""
    articles = "".join(
        f"""
<tr><td style="padding:24px 32px 0 32px">
  <img src="https://cdn.example.com/newsletter/2024-10/article-{n}.jpg" width="536"
       height="300" alt="{title}" style="display:block;width:100%;height:auto;border:0">
  <h2 class="headline" style="font-family:Georgia,serif;font-size:22px;color:#111827;
      margin:16px 0 8px 0"><a href="{url}"
      style="color:#111827;text-decoration:none">{title}</a></h2>
  <p style="font-family:Arial,sans-serif;font-size:15px;line-height:1.6;color:#374151;
     margin:0 0 12px 0">{_PARAGRAPH * (1 + n % 2)}</p>
  <table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>
    <td class="button" bgcolor="#1f2937" style="border-radius:4px;padding:10px 18px">
      <a href="{url}" style="font-family:Arial,sans-serif;font-size:14px;color:#ffffff;
         text-decoration:none;font-weight:bold">Read more</a></td></tr></table>
</td></tr>"""
        for n, (title, url) in enumerate(_ARTICLES)
    )
    footer_links = " · ".join(
        f'<a href="{url}" style="color:#6b7280">{label}</a>' for label, url in _FOOTER_LINKS
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Autumn at the shop</title>
<style>
  .headline a:hover {{ text-decoration: underline; }}
  .button {{ mso-padding-alt: 0; }}
  @media only screen and (max-width: 620px) {{ .container {{ width: 100% !important; }} }}
</style></head>
<body style="margin:0;padding:0;background-color:#f3f4f6">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"
       bgcolor="#f3f4f6"><tr><td align="center" style="padding:24px 0">
<table class="container" role="presentation" width="600" cellpadding="0" cellspacing="0"
       border="0" bgcolor="#ffffff" style="width:600px;max-width:600px">
<tr><td style="padding:24px 32px;border-bottom:1px solid #e5e7eb">
  <img src="https://cdn.example.com/newsletter/logo.png" width="140" height="40" alt="The Shop"
       style="display:block;border:0"></td></tr>
<tr><td style="padding:24px 32px 0 32px;font-family:Arial,sans-serif;font-size:16px;
    line-height:1.6;color:#111827">
  <p style="margin:0 0 12px 0">Hi {{{{ first_name|default:"there" }}}},</p>
  <p style="margin:0">Autumn has arrived at the shop, and with it the news from
  {{{{ attributes.city|default:"your town" }}}}'s favourite knitters. Here is what we have
  been working on this month.</p></td></tr>
{articles}
<tr><td style="padding:32px;font-family:Arial,sans-serif;font-size:13px;color:#6b7280;
    text-align:center">{footer_links}<br>
  This message was sent to {{{{ email }}}}.
  <a href="{{{{ preferences_url }}}}" style="color:#6b7280">Choose what you receive</a> or
  <a href="{{{{ view_in_browser_url }}}}" style="color:#6b7280">read it in your browser</a>.
</td></tr>
</table></td></tr></table>
</body></html>"""


_FIRST_NAMES = [
    *("Alice", "Bruno", "Chloé", "Dmitri", "Emma", "Farid", "Giulia", "Hugo", "Inès"),
    *("Jonas", "Karin", "Léa", "Marek", "Nadia", "Oscar", "Paula", "Quentin", "Rosa"),
    *("Samir", "Tomás", "Ursula", "Victor", "Wanda", "Xavier", "Yara", "Zoé"),
]
_CITIES = ["Lyon", "Porto", "Ghent", "Bologna", "Graz", "Utrecht", "Malmö", "Bilbao", "Aarhus"]


def _make_audience(account_id: int, list_id: int, count: int, first: int = 0) -> None:
    """``count`` subscribed contacts, in one statement; names and a city attribute vary."""
    from contacts.models import Contact, Subscription

    statement = sql.SQL("""
        WITH new AS (
            INSERT INTO {contacts}
                (account_id, email, first_name, last_name, attributes, created_at, updated_at)
            SELECT %(account)s, 'reader.' || n || '@mail' || (n %% 50) || '.example.net',
                   CASE WHEN n %% 10 = 0 THEN ''
                        ELSE (%(names)s::text[])[1 + n %% cardinality(%(names)s::text[])] END,
                   'Reader' || n,
                   jsonb_build_object(
                       'city', (%(cities)s::text[])[1 + n %% cardinality(%(cities)s::text[])]),
                   now(), now()
            FROM generate_series(%(first)s, %(last)s) AS n
            RETURNING id
        )
        INSERT INTO {subscriptions}
            (contact_id, contact_list_id, status, source, legal_basis, consent_at,
             consent_user_agent, consent_text, created_at, updated_at)
        SELECT new.id, %(list)s, 'subscribed', 'import', 'consent', now(), '', 'Benchmark',
               now(), now()
        FROM new
    """).format(
        contacts=sql.Identifier(Contact._meta.db_table),
        subscriptions=sql.Identifier(Subscription._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "account": account_id,
                "list": list_id,
                "first": first,
                "last": first + count - 1,
                "names": _FIRST_NAMES,
                "cities": _CITIES,
            },
        )
        cursor.execute("ANALYZE")


def _make_suppressions(account_id: int) -> None:
    """Suppressed addresses, none of them on the list: the claim still looks them up."""
    from contacts.models import Suppression

    statement = sql.SQL("""
        INSERT INTO {table} (account_id, email_sha256, reason, note, created_at)
        SELECT %s, encode(sha256(convert_to('gone' || n || '@example.org', 'UTF8')), 'hex'),
               'manual', '', now()
        FROM generate_series(1, 1000) AS n
    """).format(table=sql.Identifier(Suppression._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(statement, [account_id])


@dataclass
class World:
    owner: User
    account: Account
    contact_list: ContactList
    campaign: Campaign


def _make_world(recipients: int) -> World:
    from campaigns import services as campaign_services
    from contacts import services
    from tests.factories import make_account, make_user, verified_domain

    owner = make_user("bench@example.com")
    account = make_account(
        owner, "The Shop", default_from_email=FROM_EMAIL, default_from_name="The Shop"
    )
    # As in production: the From domain is verified, and every message is DKIM-signed.
    verified_domain(account, FROM_EMAIL.rpartition("@")[2])
    services.attribute_define(account=account, actor=owner, name="city", type="text")
    contact_list = services.list_create(account=account, actor=owner, name="Newsletter")
    _make_suppressions(account.pk)
    _make_audience(account.pk, contact_list.pk, recipients)
    campaign = campaign_services.campaign_create(
        account=account,
        actor=owner,
        name="Autumn newsletter",
        subject='{{ first_name|default:"Hello" }}, the autumn collection is here',
        preheader="New knitwear, a free mending service and stories from Porto.",
        html=newsletter_html(),
        lists=[contact_list],
    )
    return World(owner=owner, account=account, contact_list=contact_list, campaign=campaign)


# -- the SMTP sink ---------------------------------------------------------------------------


def _sink_main(port: ctypes.c_int, count: ctypes.c_longlong, ready: EventType, stock: bool) -> None:
    """An aiosmtpd server that counts each message and discards it.

    aiosmtpd reads DATA a line at a time (some 250 lines of quoted-printable here), which
    costs it more CPU than the client spends on the whole message: unless ``stock``, the
    message is read in blocks up to its end instead, so the sink is not what limits the
    baseline. Everything else (commands, replies, the handler hook) is aiosmtpd's own.
    """
    from aiosmtpd.smtp import SMTP, Envelope, Session

    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Counter:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            count.value += 1
            return "250 2.0.0 Ok: queued"

    class BlockReadingSMTP(SMTP):
        async def smtp_DATA(self, arg: str) -> None:
            if await self.check_helo_needed():
                return
            assert self.envelope is not None, "aiosmtpd makes one per session"
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            # The client waits for our reply before its next command: nothing is read
            # past the end of the message.
            tail = b"\r\n"
            while not tail.endswith(b"\r\n.\r\n"):
                block = await self._reader.read(1 << 16)
                if not block:
                    return
                tail = (tail + block)[-5:]
            self.envelope.content = self.envelope.original_content = b""
            status = await self._call_handler_hook("DATA")
            await self.push(status)
            self._set_post_data_state()

    server_class = SMTP if stock else BlockReadingSMTP

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: server_class(Counter(), hostname="sink.localhost", ident="Missive bench"),
            "127.0.0.1",
            0,
        )
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(serve())


@dataclass
class Sink:
    process: BaseProcess
    port: int
    counter: ctypes.c_longlong

    @property
    def count(self) -> int:
        return self.counter.value

    @property
    def pid(self) -> int:
        assert self.process.pid is not None, "the sink is started"
        return self.process.pid


@contextmanager
def smtp_sink(*, stock: bool = False) -> Iterator[Sink]:
    context = multiprocessing.get_context("fork")
    port = context.Value("i", 0, lock=False)
    count = context.Value("q", 0, lock=False)
    ready = context.Event()
    connections.close_all()  # the child must not share this process's database socket
    process = context.Process(target=_sink_main, args=(port, count, ready, stock), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the SMTP sink did not start")
    try:
        yield Sink(process=process, port=port.value, counter=count)
    finally:
        process.terminate()
        process.join(10)


# -- the baseline: bare smtplib --------------------------------------------------------------


def _prebuilt_messages(world: World, count: int) -> list[tuple[str, bytes]]:
    """Messages of the campaign exactly as the workers write them (same base URL, so
    the same size), for recipients of the list."""
    from django.test import override_settings

    from campaigns.messages import MessageFactory, Recipient
    from campaigns.models import Link
    from contacts.models import Contact

    with override_settings(MISSIVE_BASE_URL=BASE_URL):
        positions = dict(
            Link.objects.filter(campaign=world.campaign).values_list("url", "position")
        )
        factory = MessageFactory(world.campaign, positions=positions)
        messages = []
        contacts = Contact.objects.filter(account=world.account).order_by("pk")[:count]
        for n, contact in enumerate(contacts):
            message = factory.build(
                Recipient(
                    delivery_id=10_000_000 + n,
                    email=contact.email,
                    first_name=contact.first_name,
                    last_name=contact.last_name,
                    attributes=contact.attributes,
                )
            )
            messages.append((message.to, factory.as_bytes(message)))
    return messages


def bare_smtplib(port: int, messages: list[tuple[str, bytes]], total: int) -> float:
    """Seconds to send ``total`` messages over one connection, cycling through ``messages``."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for n in range(total):
            to, data = messages[n % len(messages)]
            smtp.sendmail(FROM_EMAIL, [to], data)
    return time.perf_counter() - started


# -- the pipeline ----------------------------------------------------------------------------


@dataclass
class Workers:
    process: subprocess.Popen
    log: Path


@contextmanager
def celery_workers(env: dict[str, str], concurrency: int, workdir: Path) -> Iterator[Workers]:
    from config.celery import app

    app.control.purge()  # tasks another benchmark left in this run's Redis
    log = workdir / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                f"--hostname=bench-{os.getpid()}@%h",
            ],
            env=env,
            cwd=BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the celery worker did not start:\n{log.read_text()[-3000:]}")
        yield Workers(process=process, log=log)
    finally:
        stop_process(process, timeout=30)


def wait_until_sent(campaign_id: int, workers: Workers, timeout: float) -> str:
    from campaigns.models import Campaign
    from campaigns.states import State

    deadline = time.monotonic() + timeout
    while True:
        status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True)[0]
        if status not in (State.SENDING, State.SCHEDULED):
            return status
        if workers.process.poll() is not None:
            raise RuntimeError(f"the celery worker died:\n{workers.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"still {status} after {timeout:.0f} s:\n{workers.log.read_text()[-3000:]}"
            )
        time.sleep(0.05)


def _ledger(campaign_id: int) -> dict[str, int]:
    from django.db.models import Count

    from campaigns.models import Delivery, DeliveryBody
    from events.models import Event

    statuses = dict(
        Delivery.objects.filter(campaign_id=campaign_id)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        **statuses,
        "bodies": DeliveryBody.objects.filter(delivery__campaign_id=campaign_id).count(),
        "sent events": Event.objects.filter(campaign_id=campaign_id, type="sent").count(),
    }


# -- one batch, in this process, timed by step ------------------------------------------------


@dataclass
class StepTimes:
    """Wall-clock and CPU seconds (this process's) spent in each wrapped step."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, name: str, function: Callable) -> Callable:
        def timed(*args: object, **kwargs: object) -> object:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed


# (label, object, attribute); an indented label is a part of the step above it.
def _steps() -> list[tuple[str, object, str]]:
    from campaigns import composing, messages, sending, tokens, transports
    from campaigns.models import DeliveryBody

    return [
        ("claim_batch (claim + recipients' rows)", sending, "claim_batch"),
        ("MessageFactory.build", messages.MessageFactory, "build"),
        ("  Composed.render (subject, html, text)", composing.Composed, "render"),
        ("  tokens (recipient + click)", tokens, "make"),
        ("SmtpTransport.send", transports.SmtpTransport, "send"),
        ("  MessageFactory.as_bytes (MIME)", messages.MessageFactory, "as_bytes"),
        ("  smtplib sendmail (the SMTP exchange)", smtplib.SMTP, "sendmail"),
        ("flush (ledger, bodies, events, counters)", sending, "flush"),
        ("  DeliveryBody bulk_create", DeliveryBody.objects, "bulk_create"),
        ("  record_events", sending, "record_events"),
        ("finish_if_done", sending, "finish_if_done"),
        ("_has_due", sending, "_has_due"),
    ]


def profile_one_batch(world: World, sink: Sink, batch: int, flush_every: int) -> None:
    """Run batches of a small campaign of the same content in this process and show where
    the time of one goes."""
    from django.test import override_settings
    from django.utils import timezone

    from campaigns import sending
    from campaigns import services as campaign_services
    from campaigns.models import Campaign
    from campaigns.states import State
    from campaigns.transports import SmtpTransport
    from contacts import services

    small = services.list_create(account=world.account, actor=world.owner, name="Profiled")
    # Three batches: one to warm the factory up, one timed by step, one under cProfile.
    _make_audience(world.account.pk, small.pk, 3 * batch, first=10_000_000)
    campaign = campaign_services.campaign_create(
        account=world.account,
        actor=world.owner,
        name="Profiled batch",
        subject=world.campaign.subject,
        preheader=world.campaign.preheader,
        html=world.campaign.html,
        lists=[small],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENDING, started_at=timezone.now())
    sending.take_snapshot(campaign.pk)
    options = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": sink.port}
    with override_settings(
        MISSIVE_BASE_URL=BASE_URL,
        MISSIVE_SEND_BATCH_SIZE=batch,
        MISSIVE_SEND_FLUSH_EVERY=flush_every,
    ):
        sending.send_batch(campaign.pk, transport=SmtpTransport(options))  # warm-up
        times = StepTimes()
        with ExitStack() as stack:
            for label, owner, attribute in _steps():
                original = getattr(owner, attribute)
                stack.enter_context(
                    mock.patch.object(owner, attribute, times.wrap(label, original))
                )
            started, cpu = time.perf_counter(), time.process_time()
            report = sending.send_batch(campaign.pk, transport=SmtpTransport(options))
            total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        sent = max(report.sent, 1)
        print(
            f"   one batch in this process ({report.sent} messages, flush every {flush_every}): "
            f"{total * 1000:.0f} ms, per message {total / sent * 1e6:.0f} µs, of which CPU "
            f"{total_cpu / sent * 1e6:.0f} µs (the rest: waiting for the sink, PostgreSQL)"
        )
        print(f"     {'µs per message':<44} {'wall':>6} {'CPU':>6}")
        accounted = accounted_cpu = 0.0
        for label, _owner, _attribute in _steps():
            seconds, cpu = times.seconds.get(label, 0.0), times.cpu.get(label, 0.0)
            if not label.startswith("  "):
                accounted += seconds
                accounted_cpu += cpu
            print(
                f"     {label:<44} {seconds / sent * 1e6:6.0f} {cpu / sent * 1e6:6.0f}  "
                f"({times.calls.get(label, 0)} calls)"
            )
        rest, rest_cpu = total - accounted, total_cpu - accounted_cpu
        print(
            f"     {'the rest (loop, DeliveryBody objects, …)':<44} "
            f"{rest / sent * 1e6:6.0f} {rest_cpu / sent * 1e6:6.0f}"
        )

        profiler = cProfile.Profile()
        profiler.enable()
        sending.send_batch(campaign.pk, transport=SmtpTransport(options))
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(n for n, line in enumerate(lines) if "ncalls" in line)
    print("   cProfile of a third batch, by own time (cProfile slows Python code down):")
    for line in lines[start:]:
        print("     " + line.replace(str(BASE_DIR) + "/", "").replace(sys.prefix + "/", ""))


# -- run --------------------------------------------------------------------------------------


def run() -> list[Figure]:
    opts = _options()
    recipients = opts.recipients
    settings_used = {
        "MISSIVE_SEND_LANES": str(opts.lanes),
        "MISSIVE_SEND_BATCH_SIZE": str(opts.batch_size),
        "MISSIVE_SEND_FLUSH_EVERY": str(opts.flush_every),
    }
    with scratch_database(), tempfile.TemporaryDirectory(prefix="missive-bench-") as tmp:
        from campaigns import services as campaign_services

        started = time.perf_counter()
        world = _make_world(recipients)
        print(f"   {recipients:,} contacts made in {time.perf_counter() - started:.1f} s")

        with smtp_sink(stock=opts.stock_sink) as sink:
            messages = _prebuilt_messages(world, min(recipients, 1000))
            sizes = sorted(len(data) for _to, data in messages)
            print(
                f"   message size {sizes[len(sizes) // 2] / 1024:.1f} KiB (median), "
                f"{len(world.campaign.links.all())} tracked links, open pixel, "
                f"{len(world.campaign.html) / 1024:.1f} KiB of stored HTML"
            )

            # The baseline, with the sink's own CPU time per message.
            meter = CpuMeter({"sink": sink.pid, "client": time.process_time})
            before = sink.count
            meter.start()
            bare_seconds = bare_smtplib(sink.port, messages, recipients)
            meter.stop()
            assert sink.count - before == recipients, "the sink did not receive them all"
            bare_rate = recipients / bare_seconds
            sink_cpu = meter.used["sink"] / recipients
            print(
                f"   bare smtplib: {recipients:,} messages in {bare_seconds:.1f} s; CPU per "
                f"message: sink {sink_cpu * 1e6:.0f} µs, smtplib client "
                f"{meter.used['client'] / recipients * 1e6:.0f} µs, interrupts "
                f"{meter.interrupts / recipients * 1e6:.0f} µs"
            )
            meter.report_others("the baseline")
            kind = "stock aiosmtpd" if opts.stock_sink else "aiosmtpd reading DATA in blocks"
            print(
                f"   the sink's ceiling ({kind}, one core, from its CPU per message): "
                f"{1 / sink_cpu if sink_cpu else float('inf'):,.0f} messages/s"
            )

            # The pipeline.
            env = production_environment(EMAIL_URL=f"smtp://127.0.0.1:{sink.port}", **settings_used)
            with (
                celery_workers(env, opts.concurrency, Path(tmp)) as workers,
                PostgresCpu() as postgres,
            ):
                print(
                    f"   celery worker --concurrency={opts.concurrency}, "
                    + ", ".join(f"{k}={v}" for k, v in settings_used.items())
                )
                meter = CpuMeter(
                    {
                        "celery worker": workers.process.pid,
                        "postgresql": postgres,
                        "redis": redis_pid(),
                        "smtp sink": sink.pid,
                        "this process (polling)": time.process_time,
                    }
                )
                before = sink.count
                meter.start()
                started = time.perf_counter()
                campaign_services.campaign_start(campaign=world.campaign, actor=world.owner)
                status = wait_until_sent(
                    world.campaign.pk, workers, timeout=max(600, recipients / 20)
                )
                pipeline_seconds = time.perf_counter() - started
                meter.stop()
            received = sink.count - before
            ledger = _ledger(world.campaign.pk)
            print(
                f"   pipeline: {status} in {pipeline_seconds:.1f} s; the sink received "
                f"{received:,}; ledger {ledger}"
            )
            if status != "sent" or received != recipients or ledger.get("sent") != recipients:
                print("   WARNING: the pipeline did not deliver every message exactly once")
            pipeline_rate = recipients / pipeline_seconds
            cores = meter.machine_total / pipeline_seconds
            print(f"   CPU per message during the pipeline ({cores:.0f} cores):")
            used = {**meter.used, "interrupts (loopback network)": meter.interrupts}
            for name, seconds in used.items():
                print(
                    f"     {name:<30} {seconds / recipients * 1e6:7.0f} µs "
                    f"({seconds:6.1f} s, {100 * seconds / meter.machine_total:4.1f} % of the "
                    f"machine)"
                )
            ours = sum(used.values())
            print(
                f"     {'all of the above':<30} {ours / recipients * 1e6:7.0f} µs: on {cores:.0f} "
                f"idle cores, at most {cores * recipients / ours:,.0f} messages/s"
            )
            meter.report_others("the pipeline")

            if not opts.no_profile:
                profile_one_batch(world, sink, opts.batch_size, opts.flush_every)

    return [
        Figure(
            f"pipeline, {recipients:,} recipients",
            pipeline_rate,
            "bare smtplib",
            bare_rate,
            "msg/s",
            target="ratio ≥ 0.5 (aim ≥ 0.8)",
        ),
    ]
