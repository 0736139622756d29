"""The platform's shared domain (MISSIVE_SHARED_DOMAIN), for operators.

python manage.py shared_domain add     make its keys and print the records to publish
python manage.py shared_domain check   look them up; verified once the DKIM key is found
python manage.py shared_domain show    the records and the last check
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains import services
from domains.models import SendingDomain


class Command(BaseCommand):
    help = "Set up and verify the platform's shared sending domain (MISSIVE_SHARED_DOMAIN)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["add", "check", "show"])

    def handle(self, *args: Any, **options: Any) -> None:
        name = settings.MISSIVE_SHARED_DOMAIN.strip().lower()
        if not name:
            raise CommandError("Set MISSIVE_SHARED_DOMAIN first.")
        domain = SendingDomain.objects.filter(account=None, name=name).first()
        if options["action"] == "add":
            if domain is None:
                domain = services.domain_add(account=None, actor=None, name=name)
        elif domain is None:
            raise CommandError(f"{name} is not set up yet: run `shared_domain add` first.")
        if options["action"] == "check":
            report = services.domain_check(domain=domain)
            for check in report.checks:
                self.stdout.write(f"{check.label}: {check.status} {check.message}".rstrip())
        for record in services.records_to_publish(domain):
            self.stdout.write(f"{record.name} {record.rtype} {record.value}")
        self.stdout.write(f"{name}: {domain.get_status_display()}")
