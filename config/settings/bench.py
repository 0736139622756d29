"""Settings for `make bench`: the test overlay (its own database), with production's
password hasher so authentication costs what it costs in production."""

from config.settings.test import *  # noqa: F403

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
DATABASES["default"]["TEST"] = {"NAME": "bench_missive"}  # noqa: F405
