"""The product's password rule: letters, digits and a special character.

Length, similarity and common passwords are Django's own validators (configured in
settings.AUTH_PASSWORD_VALIDATORS), so every place Django or allauth sets a password —
sign-up, reset, change, invitations, createsuperuser, changepassword, the admin —
applies the same rule.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class CharacterClassValidator:
    """At least one letter, one digit and one special (non-alphanumeric) character."""

    def validate(self, password: str, user: object = None) -> None:
        missing = []
        if not any(ch.isalpha() for ch in password):
            missing.append("a letter")
        if not any(ch.isdigit() for ch in password):
            missing.append("a digit")
        if all(ch.isalnum() for ch in password):
            missing.append("a special character such as ! ? # or %")
        if missing:
            raise ValidationError(
                "This password must contain %(missing)s.",
                code="password_missing_character_class",
                params={"missing": _join(missing)},
            )

    def get_help_text(self) -> str:
        return "Your password must contain a letter, a digit and a special character."


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]
