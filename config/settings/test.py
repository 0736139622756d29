"""Settings for the test suite: real PostgreSQL and Redis, fast hashing, locmem mail."""

import os

os.environ.setdefault("MISSIVE_DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EMAIL_URL", "locmem://")
os.environ.setdefault("MISSIVE_BASE_URL", "http://testserver")

from config.settings.base import *  # noqa: F403

# Tests talk plain HTTP to the test client and live server.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# Argon2 is the production hasher; the suite hashes thousands of passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MAIL_CATCHER_DIR = ""
# A test database per Redis DB number keeps the suite away from a running `make run`.
CACHES["default"]["KEY_PREFIX"] = "missive-test"  # noqa: F405
CELERY_TASK_ALWAYS_EAGER = False
# Two test runs at once (say, the browser tests beside the rest) each need their own.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("MISSIVE_TEST_DB", "test_missive")}  # noqa: F405
# No test asks the machine's resolver: those that look records up start their own DNS
# server on loopback (the ``dns`` fixture); any other lookup fails fast here.
MISSIVE_DNS_SERVERS = ["127.0.0.1:1"]
MISSIVE_DNS_TIMEOUT = 1
# Missive "sends" from loopback in the tests: the SPF record a domain is shown says so.
MISSIVE_SENDING_IPS = ["127.0.0.1"]
