#!/usr/bin/env python
"""Django's command-line utility for Missive."""

import os
import sys
from pathlib import Path

# Written by `make run` / `make test` (config/devservices.py): the development settings
# and the embedded servers' addresses, so `python manage.py …` works in a checkout
# without exporting anything. Variables already set win; MISSIVE_DEBUG=false (production
# mode, asked for explicitly) ignores the file.
DEV_ENV = Path(__file__).resolve().parent / "var" / "dev.env"


def load_dev_env() -> None:
    if not DEV_ENV.is_file() or os.environ.get("MISSIVE_DEBUG", "").lower() in {
        "0",
        "false",
        "no",
        "off",
    }:
        return
    for line in DEV_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


def main() -> None:
    load_dev_env()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
