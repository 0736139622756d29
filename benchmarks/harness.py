"""Small helpers shared by the benchmarks: timing, percentiles, printing."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection
from django.test.utils import setup_test_environment

_environment_ready = False


@contextmanager
def scratch_database() -> Iterator[None]:
    """A database of the benchmark's own (the settings' test name), dropped afterwards."""
    global _environment_ready
    if not _environment_ready:
        setup_test_environment()
        _environment_ready = True
    # autoclobber: a scratch database left by an interrupted run is replaced, not asked about.
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    target: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def timings_ms(call: Callable[[], object], repeat: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def print_figures(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    for f in figures:
        target = f"   target: {f.target}" if f.target else ""
        ratio = f"{f.ratio:6.2f}" if f.baseline else "     -"
        print(
            f"{f.name:<{width}}  {f.value:10.2f} {f.unit:<4}  vs {f.baseline_name}: "
            f"{f.baseline:10.2f} {f.unit:<4}  ratio {ratio}{target}"
        )


# -- for benchmarks that run Missive in processes of its own (workers, gunicorn) -------------


def bench_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """This benchmark's options from the command line, e.g.
    ``make bench BENCH_ARGS="sending --recipients 2000"``: the names of benchmarks and the
    options of the others are left alone."""
    return parser.parse_known_args(sys.argv[1:])[0]


def scratch_database_url() -> str:
    """DATABASE_URL pointing at the scratch database (inside ``scratch_database``)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def production_environment(**overrides: str) -> dict[str, str]:
    """The environment of a child process running Missive with the production settings
    (config.settings.base, MISSIVE_DEBUG off) on the scratch database and this run's
    Redis. Tokens made here verify there: the secret key is the same."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        MISSIVE_DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=scratch_database_url(),
        ALLOWED_HOSTS="news.example.com,127.0.0.1,localhost",
        MISSIVE_BASE_URL=BASE_URL,
        EMAIL_URL="smtp://127.0.0.1:25",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


# The public address of Missive in the benchmarks' messages and requests.
BASE_URL = "https://news.example.com"


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time; only the process we started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # from field 3 (state) on


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its live descendants and the children it
    has reaped."""
    children = _children()
    total, todo, root = 0.0, [pid], True
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])
        if root:
            total += int(fields[13]) + int(fields[14])
            root = False
        todo.extend(children.get(current, []))
    return total / _TICKS


@dataclass(frozen=True)
class MachineCpu:
    """CPU seconds of the whole machine since boot, all cores."""

    total: float
    busy: float  # everything but idle and I/O wait
    interrupts: float  # hard and soft interrupts: loopback networking is counted here
    steal: float  # taken by the hypervisor for other machines


def machine_cpu_seconds() -> MachineCpu:
    v = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    _user, _nice, _system, idle, iowait, irq, softirq, steal = v
    return MachineCpu(
        total=sum(v) / _TICKS,
        busy=(sum(v) - idle - iowait) / _TICKS,
        interrupts=(irq + softirq) / _TICKS,
        steal=steal / _TICKS,
    )


class CpuMeter:
    """CPU seconds spent by named process trees (a pid, with its descendants) or by
    anything else that counts CPU seconds (``time.process_time`` for this process alone,
    a ``PostgresCpu``) between ``start`` and ``stop``, and by the machine."""

    def __init__(self, groups: dict[str, int | Callable[[], float]]) -> None:
        self.groups = groups
        self.used: dict[str, float] = {}

    def _sample(self) -> tuple[dict[str, float], MachineCpu]:
        return {
            name: tree_cpu_seconds(what) if isinstance(what, int) else what()
            for name, what in self.groups.items()
        }, machine_cpu_seconds()

    def start(self) -> None:
        self._before, self._machine = self._sample()

    def stop(self) -> None:
        after, machine = self._sample()
        self.used = {n: after[n] - self._before[n] for n in self.groups}
        self.machine_total = machine.total - self._machine.total
        self.machine_busy = machine.busy - self._machine.busy
        self.interrupts = machine.interrupts - self._machine.interrupts
        self.steal = machine.steal - self._machine.steal

    @property
    def others(self) -> float:
        """CPU seconds of everything else: other programs, other sessions."""
        return self.machine_busy - sum(self.used.values()) - self.interrupts - self.steal

    def report_others(self, what: str) -> None:
        share = {
            "interrupts (loopback network)": self.interrupts,
            "stolen by the hypervisor": self.steal,
            "other processes": self.others,
        }
        print(
            f"   during {what}: machine {100 * self.machine_busy / self.machine_total:.0f} % "
            "busy; "
            + ", ".join(f"{k} {100 * v / self.machine_total:.0f} %" for k, v in share.items())
        )
        if self.others + self.steal > 0.1 * self.machine_total:
            print(
                "   NOTE: others were using this machine: rates are lower than on a quiet "
                "one; the CPU per message or request is not"
            )


class PostgresCpu:
    """CPU seconds of the PostgreSQL processes working for this benchmark: the backends
    connected to the scratch database and the server's WAL writer, checkpointer and
    background writer, followed by a thread every ``interval`` seconds (Celery closes its
    connection around every task, so backends come and go: one that exits loses what it
    used since the last look, ``interval`` at most). Other databases on the same server
    (another test run) are left out. Call it for the total so far."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.interval = interval
        self.first: dict[tuple[int, str], float] = {}
        self.last: dict[tuple[int, str], float] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.primed = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PostgresCpu:
        self._look()
        self.primed = True
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        from django.db import connection as thread_connection

        try:
            while not self.done.wait(self.interval):
                self._look()
        finally:
            thread_connection.close()

    def _look(self) -> None:
        from django.db import connection as thread_connection

        with thread_connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"
            )
            pids = [row[0] for row in cursor.fetchall()]
        with self.lock:
            for pid in pids:
                if fields := _stat(pid):
                    key = (pid, fields[19])  # the start time tells a reused pid apart
                    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
                    self.first.setdefault(key, cpu if not self.primed else 0.0)
                    self.last[key] = cpu

    def __call__(self) -> float:
        self._look()
        with self.lock:
            return sum(self.last[k] - self.first[k] for k in self.last)


def redis_pid() -> int:
    from django.conf import settings
    from redis import Redis

    return int(Redis.from_url(settings.REDIS_CLIENT_URL).info("server")["process_id"])
