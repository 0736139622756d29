"""Fixtures for sending campaigns with real workers: an SMTP server on loopback that keeps
what it receives in memory, and Celery workers started as subprocesses on the test
database.

The workers run ``config.settings.test``, which always sends Django's own mail through
locmem whatever EMAIL_URL says; campaign mail reaches the SMTP server through a named
sending backend instead (MISSIVE_BACKEND_CATCHER, given to the account), the way an
operator points one account at another server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent.parent
CELERY = Path(sys.executable).parent / "celery"
BACKEND_NAME = "catcher"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class SmtpSink:
    """Accepts every message, as a mail server would, and keeps it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        message = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
        )
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted for delivery"

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def per_recipient(self) -> Counter[str]:
        """How many messages each address received."""
        return Counter(rcpt.lower() for message in self.messages for rcpt in message.rcpt_tos)


@pytest.fixture
def smtp_sink(free_port) -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port, decode_data=False, ready_timeout=10
    )
    controller.start()
    try:
        yield sink, free_port
    finally:
        controller.stop()


class Worker:
    """``celery -A config worker`` in a session (process group) of its own, so that it and
    its pool processes can be killed together, as when the machine under it dies."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, args: list[str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "config",
                "worker",
                "-n",
                f"{name}@%h",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *args,
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """At teardown: the test is over and nothing of the worker's needs to survive."""
        self.kill()
        self._log.close()

    def wait_ready(self, timeout: float = 30) -> None:
        """Until the worker answers a ping over the broker."""
        from config.celery import app

        destination = f"{self.name}@{socket.gethostname()}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                pytest.fail(f"worker {self.name} exited:\n{self.log_tail()}")
            if app.control.ping(destination=[destination], timeout=0.5):
                return
        pytest.fail(f"worker {self.name} did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Workers:
    """Starts workers on the test database, talking to the test's SMTP server; stops
    every one of them at teardown."""

    def __init__(self, smtp_port: int, log_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.log_dir = log_dir
        self.started: list[Worker] = []

    def environment(self, **overrides: str | int) -> dict[str, str]:
        url = urlsplit(os.environ["DATABASE_URL"])
        test_db = connection.settings_dict["NAME"]  # what pytest-django created
        smtp = f"smtp://127.0.0.1:{self.smtp_port}?timeout=10"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": urlunsplit(url._replace(path=f"/{test_db}")),
            "EMAIL_URL": smtp,
            f"MISSIVE_BACKEND_{BACKEND_NAME.upper()}": smtp,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        env.update({key: str(value) for key, value in overrides.items()})
        return env

    def start(self, *args: str, **settings: str | int) -> Worker:
        """A worker with ``settings`` (MISSIVE_SEND_BATCH_SIZE=…) in its environment and
        ``args`` added to its command line (--pool, --concurrency)."""
        name = f"w{len(self.started) + 1}"
        worker = Worker(
            name,
            self.environment(**settings),
            self.log_dir / f"{name}.log",
            list(args) or ["--pool=solo"],
        )
        self.started.append(worker)
        return worker

    def assert_no_tracebacks(self) -> None:
        """A task that raised in a worker is invisible to the test unless we look."""
        for worker in self.started:
            log = worker.log_path.read_text(errors="replace")
            assert "Traceback" not in log, f"worker {worker.name} logged an error:\n{log[-4000:]}"

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {w.name} ({'alive' if w.alive else f'exit {w.process.returncode}'}):\n"
            f"{w.log_tail()}"
            for w in self.started
        )

    def wait_for(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float,
        what: str,
        every: float = 0.1,
        need_alive: Worker | None = None,
    ) -> float:
        """Poll ``predicate`` until it holds; fail saying ``what`` did not happen, with the
        workers' logs. Returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if predicate():
                return time.monotonic() - started
            if need_alive is not None and not need_alive.alive:
                pytest.fail(f"worker {need_alive.name} died while waiting: {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting: {what}\n{self.logs()}")
            time.sleep(every)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(transactional_db, smtp_sink, tmp_path) -> Iterator[Workers]:
    """Data written by the test is committed (transactional_db), so the workers see it.
    Torn down before the database is flushed."""
    _, port = smtp_sink
    pool = Workers(port, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
