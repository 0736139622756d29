"""A local SMTP server that keeps every message for the staff Outbox page.

It accepts anything sent to it on loopback and delivers nowhere: the safe place for a
development installation to send mail.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import outbox


class OutboxHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        outbox.store(
            self.directory,
            envelope.original_content or b"",
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
        )
        return "250 Message accepted for delivery"


def start_catcher(directory: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(
        OutboxHandler(directory),
        hostname=host,
        port=port,
        data_size_limit=50 * 1024 * 1024,
        decode_data=False,
    )
    controller.start()
    return controller


class Command(BaseCommand):
    help = "Run the local SMTP catcher whose messages the staff Outbox page shows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        directory = outbox.outbox_dir()
        if directory is None:
            raise CommandError("Set MAIL_CATCHER_DIR to the directory where mail is kept.")
        controller = start_catcher(directory, host, port)
        self.stdout.write(f"Catching mail on smtp://{host}:{port}, kept in {directory}")
        stop = asyncio.Event()

        async def wait() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

        try:
            asyncio.run(wait())
        finally:
            controller.stop()
