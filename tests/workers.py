"""Real Celery workers, a real SMTP server on loopback, and waiting for what they do.

The fixtures are registered in tests/conftest.py:

- ``celery_worker``: one worker inside the test process (a thread, solo pool) consuming
  the test's Redis. It shares the test's settings, database connection settings and
  locmem outbox, so ``settings.X = …`` and ``mail.outbox`` reach it.
- ``workers``: ``celery -A config worker`` subprocesses on the test database, started by
  the test with the settings it wants, and killable with SIGKILL as when a machine dies.
  They run ``config.settings.test``, which always sends Django's own mail through
  locmem whatever EMAIL_URL says; campaign mail reaches ``smtp_sink`` through a named
  sending backend instead (``BACKEND_NAME``, given to the account), the way an operator
  points one account at another server.
- ``smtp_sink``: an SMTP server on loopback that accepts every message and keeps it.
  ``start_smtp_server`` starts others: with a handler of the test's (one that refuses some
  addresses, say), on a port of the test's choosing, or stopped, to be started later.
  Each can be stopped and started again on the same port.

``wait_until`` polls for what a worker or a server thread does; it fails the test, saying
what did not happen, when its timeout passes. A timeout there is a limit on waiting, never
an assertion about how fast something is.
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
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from django.db import connection

from config.celery import app

BASE_DIR = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).parent / "celery"
# The sending backend, named in the workers' environment, that reaches ``smtp_sink``.
BACKEND_NAME = "catcher"


# -- waiting ------------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    message: str | Callable[[], str] = "the condition to hold",
    every: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``predicate`` every ``every`` seconds until it returns something true.

    Fails the test when ``timeout`` seconds pass first, with ``message`` (a string, or a
    function called then, to say how far things got). ``abort``, when given, is asked at
    every round: a reason it returns fails the test at once (a worker that died will not
    make the predicate hold)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        reason = abort() if abort is not None else None
        if reason:
            pytest.fail(f"{reason}: gave up waiting for {_text(message)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {_text(message)}")
        time.sleep(every)


def _text(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message


def free_port() -> int:
    """A loopback port nothing listens on (the OS's choice, released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the SMTP server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class SmtpSink:
    """An aiosmtpd handler that accepts every message, as a mail server would, and keeps
    it. Subclass it and override ``handle_RCPT`` (or ``handle_MAIL``) to refuse some."""

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


class SmtpServer:
    """An SMTP server on ``127.0.0.1:port`` answering with ``handler``. Stopping it closes
    the port (a client is refused); starting it again opens the same port, with the same
    handler and what it kept."""

    def __init__(self, handler: object, port: int, *, smtputf8: bool = False) -> None:
        self.handler = handler
        self.port = port
        self.smtputf8 = smtputf8
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        if self._controller is None:
            # A new controller each time: a stopped one's event loop is not reused.
            controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                decode_data=False,
                enable_SMTPUTF8=self.smtputf8,
                ready_timeout=10,
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # What an SmtpSink handler received, read from the server for short.

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def __len__(self) -> int:
        return len(self.handler)

    def per_recipient(self) -> Counter[str]:
        return self.handler.per_recipient()


@pytest.fixture
def start_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """``start_smtp_server(handler=None, *, port=None, smtputf8=False, start=True)``: an
    SMTP server with ``handler`` (an ``SmtpSink`` if none), on ``port`` (a free one if
    none), announcing SMTPUTF8 or not, started unless ``start=False``. Every server is
    stopped at teardown."""
    servers: list[SmtpServer] = []

    def start_server(
        handler: object | None = None,
        *,
        port: int | None = None,
        smtputf8: bool = False,
        start: bool = True,
    ) -> SmtpServer:
        server = SmtpServer(
            handler if handler is not None else SmtpSink(),
            port if port is not None else free_port(),
            smtputf8=smtputf8,
        )
        servers.append(server)
        return server.start() if start else server

    yield start_server
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_sink(start_smtp_server) -> SmtpServer:
    """A running SMTP server that accepts everything and keeps it. A test module that
    needs other answers overrides this fixture (``workers`` then sends there)."""
    return start_smtp_server()


# -- a worker in the test process ---------------------------------------------------------------


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[WorkController]:
    """A Celery worker in this process, on the test broker, running each task it takes
    from the queue. Data written by the test is committed (transactional_db), so the
    worker's thread sees it."""
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING") as worker:
        yield worker


# -- workers as subprocesses --------------------------------------------------------------------


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
        predicate: Callable[[], object],
        *,
        timeout: float,
        what: str | Callable[[], str],
        every: float = 0.1,
        need_alive: Worker | None = None,
    ) -> None:
        """``wait_until`` with the workers' logs in the failure, and a quick failure
        should ``need_alive`` die meanwhile."""

        def died() -> str | None:
            if need_alive is None or need_alive.alive:
                return None
            return f"worker {need_alive.name} died"

        wait_until(
            predicate,
            timeout=timeout,
            every=every,
            message=lambda: f"{_text(what)}\n{self.logs()}",
            abort=died,
        )

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(transactional_db, smtp_sink, tmp_path) -> Iterator[Workers]:
    """Data written by the test is committed (transactional_db), so the workers see it.
    Torn down before the database is flushed."""
    pool = Workers(smtp_sink.port, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
