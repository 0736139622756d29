"""Run the retention policies by hand, or see what they would remove."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.runner import all_policies, run_policies


class Command(BaseCommand):
    help = "Apply the retention policies (what each kind of data is kept for) now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; remove nothing."
        )
        parser.add_argument(
            "--policy",
            action="append",
            dest="policies",
            metavar="NAME",
            help="Only this policy (repeatable). Names: "
            + ", ".join(p.name for p in all_policies()),
        )

    def handle(
        self, *args: object, dry_run: bool, policies: list[str] | None, **options: object
    ) -> None:
        try:
            outcomes = run_policies(dry_run=dry_run, names=policies)
        except ValueError as unknown:
            raise CommandError(str(unknown)) from None
        verb = "would remove" if dry_run else "removed"
        width = max(len(o.policy.name) for o in outcomes) if outcomes else 0
        failed = False
        for outcome in outcomes:
            line = (
                f"{outcome.policy.name:<{width}}  {verb} {outcome.count:>10,}"
                f"  ({outcome.seconds:.2f} s)"
            )
            if outcome.error:
                failed = True
                line += f"  FAILED: {outcome.error}"
            self.stdout.write(line)
        if failed:
            raise CommandError("A retention policy failed; the others ran.")
