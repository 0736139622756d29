"""Django's createsuperuser, with the password rule enforced in every mode.

Django skips validation when the password comes from DJANGO_SUPERUSER_PASSWORD
(--noinput), and interactively it offers to bypass it. Missive's rule holds wherever a
password is set, so neither escape is offered here.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.management.commands import createsuperuser as django_command
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import User

BYPASS_PROMPT = "Bypass password validation"


def _input_without_bypass(prompt: str = "") -> str:
    if prompt.startswith(BYPASS_PROMPT):
        return "n"  # the question is answered for the operator: no bypass
    return builtins.input(prompt)


class Command(django_command.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("interactive"):
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
            if password:
                email = options.get(User.USERNAME_FIELD) or os.environ.get(
                    "DJANGO_SUPERUSER_EMAIL", ""
                )
                try:
                    password_validation.validate_password(password, User(email=email))
                except ValidationError as error:
                    raise CommandError(" ".join(error.messages)) from None
        # Django's command calls input() by name: a global of its module shadows the builtin.
        vars(django_command)["input"] = _input_without_bypass
        try:
            super().handle(*args, **options)
        finally:
            del vars(django_command)["input"]
