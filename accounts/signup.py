"""Sign-up that does not tell who already has a login.

allauth (ACCOUNT_PREVENT_ENUMERATION with mandatory verification) answers a known address
with the same "check your inbox" page as a new one, and mails its owner instead of
creating a login. What it leaves different is the work: a new address has its password
hashed (Argon2, the slowest step of the request), a known one did not, so the answer's
timing told them apart. Here both hash the password given, and both send one mail.
"""

from __future__ import annotations

from allauth.account.forms import SignupForm as AllauthSignupForm
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest


class SignupForm(AllauthSignupForm):
    def try_save(self, request: HttpRequest) -> tuple[object, object]:
        if self.account_already_exists:
            # The same hashing as the new path's set_password(), result thrown away.
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)
