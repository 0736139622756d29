from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stats import bounces


class Command(BaseCommand):
    help = (
        "Read the bounce mailbox (MISSIVE_BOUNCE_MAILBOX, imaps://… or pop3s://…): record "
        "bounces and complaints, unsubscribe, and delete what was processed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="a mailbox URL instead of MISSIVE_BOUNCE_MAILBOX")
        parser.add_argument("--limit", type=int, default=500, help="messages per run")

    def handle(
        self, *args: Any, mailbox: str | None = None, limit: int = 500, **options: Any
    ) -> None:
        url = mailbox or settings.MISSIVE_BOUNCE_MAILBOX
        if not url:
            raise CommandError("No mailbox: set MISSIVE_BOUNCE_MAILBOX or pass --mailbox.")
        try:
            counts = bounces.fetch_mailbox(url, limit=limit)
        except ValueError as error:
            raise CommandError(str(error)) from error
        summary = ", ".join(f"{count} {result}" for result, count in sorted(counts.items()))
        self.stdout.write(summary or "No new messages.")
