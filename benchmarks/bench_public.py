"""Open pixel and click redirect under an open-loop load, against /healthz, served by gunicorn.

gunicorn runs the production settings (config.settings.base, MISSIVE_DEBUG off) as the
Docker image does (``--workers 3``, sync workers, access log on), behind a pretend TLS
proxy (``TRUSTED_PROXY_COUNT=1``, ``X-Forwarded-Proto: https``). The tokens are real: the
deliveries of a sent campaign in the scratch database, each request for another one.

The load generator is here, in asyncio: requests are issued at a fixed rate whatever the
server does (open loop), over keep-alive HTTP/1.1 connections when the server keeps them
(gunicorn's sync workers close each one; then a new connection is opened), and each
latency counts from the moment the request was due, so queueing in front of a busy
server is in the figure.

    make bench BENCH_ARGS="public --rate 500 --seconds 30"
    make bench BENCH_ARGS="public --workers 2 --threads 8"   # gthread, keep-alive
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection
from psycopg import sql

from benchmarks.harness import (
    CpuMeter,
    Figure,
    PostgresCpu,
    bench_options,
    percentile,
    production_environment,
    scratch_database,
    stop_process,
)

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "news.example.com"
# A person's mail app: opens and clicks by machines are recorded differently (no first
# open, no activity), and cheaper.
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
TIMEOUT = 10.0


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="public", allow_abbrev=False)
    parser.add_argument("--rate", type=float, default=500, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30, help="per endpoint")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)"
    )
    return bench_options(parser)


# -- data --------------------------------------------------------------------------------------


@dataclass
class Sent:
    delivery_ids: list[int]
    positions: list[int]


def _sent_campaign(deliveries: int) -> Sent:
    """A campaign with ten tracked links, sent to ``deliveries`` contacts."""
    from django.utils import timezone

    from benchmarks.bench_sending import FROM_EMAIL, newsletter_html
    from campaigns import services as campaign_services
    from campaigns.models import Campaign, Delivery, Link
    from campaigns.states import State
    from contacts import services
    from contacts.models import Contact
    from tests.factories import make_account, make_user

    owner = make_user("bench@example.com")
    account = make_account(owner, "The Shop", default_from_email=FROM_EMAIL)
    services.attribute_define(account=account, actor=owner, name="city", type="text")
    contact_list = services.list_create(account=account, actor=owner, name="Newsletter")
    campaign = campaign_services.campaign_create(
        account=account,
        actor=owner,
        name="Autumn newsletter",
        subject="The autumn collection is here",
        html=newsletter_html(),
        lists=[contact_list],
    )
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        status=State.SENT, started_at=now, snapshot_at=now, finished_at=now
    )
    statement = sql.SQL("""
        WITH new AS (
            INSERT INTO {contacts} (account_id, email, first_name, last_name, attributes,
                                    created_at, updated_at)
            SELECT %(account)s, 'reader.' || n || '@example.net', 'Reader', 'N' || n, '{{}}',
                   now(), now()
            FROM generate_series(1, %(count)s) AS n
            RETURNING id
        )
        INSERT INTO {deliveries} (campaign_id, contact_id, status, attempts, sent_at,
                                  message_id)
        SELECT %(campaign)s, new.id, 'sent', 1, now(), '<' || new.id || '@shop.example.com>'
        FROM new
    """).format(
        contacts=sql.Identifier(Contact._meta.db_table),
        deliveries=sql.Identifier(Delivery._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement, {"account": account.pk, "count": deliveries, "campaign": campaign.pk}
        )
        cursor.execute("ANALYZE")
    return Sent(
        delivery_ids=list(Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True)),
        positions=list(Link.objects.filter(campaign=campaign).values_list("position", flat=True)),
    )


def _paths(sent: Sent, count: int) -> dict[str, list[str]]:
    """``count`` request paths per endpoint, each delivery in turn, in a random order."""
    from campaigns import tokens

    rng = random.Random(7)
    ids = list(sent.delivery_ids)
    rng.shuffle(ids)
    chosen = [ids[n % len(ids)] for n in range(count)]
    return {
        "GET /healthz": ["/healthz"] * count,
        "GET /t/o/<token> (pixel)": [f"/t/o/{tokens.recipient_token(i)}" for i in chosen],
        "GET /t/c/<token> (click)": [
            f"/t/c/{tokens.click_token(i, rng.choice(sent.positions))}" for i in chosen
        ],
    }


EXPECTED = {"GET /healthz": 200, "GET /t/o/<token> (pixel)": 200, "GET /t/c/<token> (click)": 302}


# -- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, workdir: Path) -> subprocess.Popen:
    env = production_environment(TRUSTED_PROXY_COUNT="1")
    command = [
        GUNICORN,
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        f"--access-logfile={workdir / 'access.log'}",
        f"--error-logfile={workdir / 'error.log'}",
    ]
    if threads > 1:
        command += ["--worker-class=gthread", f"--threads={threads}"]
    process = subprocess.Popen(command, env=env, cwd=BASE_DIR)
    deadline = time.monotonic() + 60
    while True:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/healthz",
                headers={"Host": HOST, "X-Forwarded-Proto": "https"},
            )
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310 - our own loopback server
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                log = (
                    (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
                )
                raise RuntimeError(f"gunicorn did not start:\n{log[-3000:]}") from None
            time.sleep(0.2)


# -- the load generator --------------------------------------------------------------------------


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    connections_opened: int = 0
    most_late_ms: float = 0.0  # how late the generator itself was to issue a request
    seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


async def _exchange(conn: _Connection, request: bytes) -> tuple[int, bool]:
    """Send one request, read its whole response: (status, whether the connection may
    be used again)."""
    conn.writer.write(request)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep = 0, lines[0].startswith("HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep = value.strip().lower() != "close"
    if length:
        await conn.reader.readexactly(length)
    return status, keep


async def _open_loop(
    port: int, paths: list[str], rate: float, expected: int, max_connections: int = 512
) -> Load:
    load = Load()
    idle: list[_Connection] = []
    opened = 0  # connections open or being opened, at most max_connections
    freed = asyncio.Condition()

    async def acquire(fresh: bool = False) -> tuple[_Connection, bool]:
        """An idle connection, or a new one (then True) while there is room."""
        nonlocal opened
        while True:
            if idle and not fresh:
                return idle.pop(), False
            if opened < max_connections:
                opened += 1
                load.connections_opened += 1
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    opened -= 1
                    raise
                return _Connection(reader, writer), True
            async with freed:
                await freed.wait()

    def discard(conn: _Connection) -> None:
        nonlocal opened
        conn.close()
        opened -= 1

    async def one(path: str, due: float) -> None:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept: */*\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.23\r\n\r\n"
        ).encode()
        conn = None  # while set, it holds one of the max_connections
        try:
            conn, new = await acquire()
            try:
                status, keep = await asyncio.wait_for(_exchange(conn, request), TIMEOUT)
            except (OSError, asyncio.IncompleteReadError):
                if new:
                    raise
                # The server closed this idle keep-alive connection as we reused it: like
                # any HTTP client, send the (idempotent) request again on a new one.
                discard(conn)
                conn = None
                conn, _ = await acquire(fresh=True)
                status, keep = await asyncio.wait_for(_exchange(conn, request), TIMEOUT)
            load.latencies_ms.append((time.perf_counter() - due) * 1000)
            if status != expected:
                load.error(f"HTTP {status}")
            if not keep:
                discard(conn)
                conn = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            load.error("connection error")
            if conn is not None:
                discard(conn)
                conn = None
        except TimeoutError:
            load.error(f"no answer in {TIMEOUT:.0f} s")
            if conn is not None:
                discard(conn)
                conn = None
        if conn is not None:
            idle.append(conn)
        async with freed:
            freed.notify()

    tasks = []
    interval = 1 / rate
    started = time.perf_counter()
    for n, path in enumerate(paths):
        due = started + n * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        load.most_late_ms = max(load.most_late_ms, (time.perf_counter() - due) * 1000)
        tasks.append(asyncio.create_task(one(path, due)))
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return load


def run_load(port: int, paths: list[str], rate: float, expected: int) -> Load:
    return asyncio.run(_open_loop(port, paths, rate, expected))


# -- run --------------------------------------------------------------------------------------


def run() -> list[Figure]:
    opts = _options()
    count = int(opts.rate * opts.seconds)
    results: dict[str, Load] = {}
    cpu: dict[str, CpuMeter] = {}
    with scratch_database(), tempfile.TemporaryDirectory(prefix="missive-bench-") as tmp:
        sent = _sent_campaign(opts.deliveries)
        paths = _paths(sent, count)
        port = _free_port()
        server = start_gunicorn(port, opts.workers, opts.threads, Path(tmp))
        kind = f"gthread, {opts.threads} threads each" if opts.threads > 1 else "sync"
        print(
            f"   gunicorn: {opts.workers} workers ({kind}); {opts.rate:.0f} requests/s for "
            f"{opts.seconds:.0f} s per endpoint, over {len(sent.delivery_ids):,} deliveries"
        )
        try:
            # Warm-up: every worker connected to the database, every view imported.
            warm = _paths(sent, max(int(opts.rate * 2), 50))
            for name, warm_paths in warm.items():
                run_load(port, warm_paths, opts.rate, EXPECTED[name])
            with PostgresCpu() as postgres:
                for name, endpoint_paths in paths.items():
                    meter = CpuMeter(
                        {
                            "gunicorn": server.pid,
                            "postgresql": postgres,
                            "load generator": time.process_time,
                        }
                    )
                    meter.start()
                    results[name] = run_load(port, endpoint_paths, opts.rate, EXPECTED[name])
                    meter.stop()
                    cpu[name] = meter
        finally:
            stop_process(server)

    for name, load in results.items():
        meter = cpu[name]
        done = len(load.latencies_ms)
        errors = ", ".join(f"{n} x {kind}" for kind, n in load.errors.items()) or "none"
        print(
            f"   {name}: {done:,} answered in {load.seconds:.1f} s "
            f"({done / load.seconds:.0f}/s), errors: {errors}; "
            f"{load.connections_opened:,} connections opened; generator at most "
            f"{load.most_late_ms:.1f} ms late"
        )
        print(
            "     CPU per request: "
            + ", ".join(f"{k} {v / count * 1e6:.0f} µs" for k, v in meter.used.items())
            + f", interrupts {meter.interrupts / count * 1e6:.0f} µs"
        )
        meter.report_others(name)

    baseline = results["GET /healthz"]
    figures = []
    for name, load in results.items():
        if name == "GET /healthz":
            continue
        for label, q in (("p50", 50), ("p99", 99), ("max", 100)):
            figures.append(
                Figure(
                    f"{name} {label}",
                    percentile(load.latencies_ms, q) if load.latencies_ms else float("inf"),
                    f"/healthz {label}",
                    percentile(baseline.latencies_ms, q) if baseline.latencies_ms else float("inf"),
                    "ms",
                    target="p99 < 50 ms" if label == "p99" else "",
                )
            )
        figures.append(
            Figure(
                f"{name} errors",
                load.error_count,
                "/healthz errors",
                baseline.error_count,
                "",
                target="0",
            )
        )
    return figures
