"""The development DNS of `make run`: publish a sending domain's records in it.

    python manage.py dev_dns publish news.example.test   the records Missive shows, as shown
    python manage.py dev_dns remove news.example.test    every record at or under the name
    python manage.py dev_dns show                        the zone
    python manage.py dev_dns demo                        the demo account's domain, verified

It writes var/dns.zone, which the DNS server of `make run` answers from; it has no use
with a real DNS, and refuses to run outside development (MISSIVE_DEBUG).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Account
from config.devdns import ZoneFile
from domains import services
from domains.models import SendingDomain
from domains.names import clean_domain_name

DEMO_DOMAIN = "demo.missive.test"


class Command(BaseCommand):
    help = "Publish sending domains' records in the development DNS of `make run`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["publish", "remove", "show", "demo"])
        parser.add_argument("domain", nargs="?", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("dev_dns writes the development DNS of `make run` only.")
        zone = ZoneFile(settings.VAR_DIR / "dns.zone")
        action, name = options["action"], options["domain"]
        if action == "show":
            for line in zone.read():
                self.stdout.write(" ".join(line))
            return
        if action == "demo":
            self._demo(zone)
            return
        if not name:
            raise CommandError(f"dev_dns {action} needs a domain name.")
        name = clean_domain_name(name)
        if action == "remove":
            removed = zone.remove_under(name)
            self.stdout.write(f"Removed {removed} record(s) at or under {name}.")
            return
        domains = list(SendingDomain.objects.filter(name=name))
        if not domains:
            raise CommandError(f"No account has added {name}: add it under Sending domains.")
        for domain in domains:
            for record in services.records_to_publish(domain):
                zone.replace(record.name, record.rtype, record.value)
                self.stdout.write(f"{record.name} {record.rtype} {record.value}")
        self.stdout.write(f"Published. Now choose “Check now” on the page of {name}.")

    def _demo(self, zone: ZoneFile) -> None:
        account = Account.objects.filter(default_from_email__endswith="@" + DEMO_DOMAIN).first()
        if account is None:
            return
        domain = SendingDomain.objects.filter(account=account, name=DEMO_DOMAIN).first()
        if domain is None:
            domain = services.domain_add(account=account, actor=None, name=DEMO_DOMAIN)
        for record in services.records_to_publish(domain):
            zone.replace(record.name, record.rtype, record.value)
        if domain.status == SendingDomain.Status.PENDING:
            # The server reads the zone file again within half a second.
            import time

            time.sleep(1)
            services.domain_check(domain=domain)
