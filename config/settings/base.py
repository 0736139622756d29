"""Missive settings: one module, driven by the environment (see config/env.py).

Development defaults are safe only because ``MISSIVE_DEBUG`` is off unless asked for:
``make run`` turns it on; a production deployment that forgets a secret key or its
allowed hosts refuses to start instead of running insecurely.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_int,
    env_json_object,
    env_list,
    env_str,
    parse_database_url,
    parse_email_url,
    redis_settings,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("MISSIVE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("MISSIVE_DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random "
            "string; `make run` sets a development one for you."
        )
    SECRET_KEY = "development-only-insecure-key"  # noqa: S105 - DEBUG only, never production

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("ALLOWED_HOSTS is not set: list the host names Missive answers to.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The public address of this installation, used in links inside emails.
MISSIVE_BASE_URL = env_str("MISSIVE_BASE_URL", "http://127.0.0.1:8000" if DEBUG else "").rstrip("/")
if not MISSIVE_BASE_URL:
    raise ImproperlyConfigured(
        "MISSIVE_BASE_URL is not set: the public https:// address of this installation, "
        "used in every link Missive puts in an email."
    )
# One-click unsubscribe (RFC 8058) is only valid on an https URL, and the links Missive
# mails open pages that act; so production refuses a plain-http address. The test
# settings talk plain http to the test client; they are the one exception.
_TEST_SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE", "") in {
    "config.settings.test",
    "config.settings.bench",
}
if not DEBUG and not _TEST_SETTINGS and urlsplit(MISSIVE_BASE_URL).scheme != "https":
    raise ImproperlyConfigured(
        f"MISSIVE_BASE_URL must be an https:// address in production, not "
        f"{MISSIVE_BASE_URL!r}: one-click unsubscribe links (RFC 8058) require https, and "
        "the links Missive mails must not travel in the clear."
    )

# Missive's own apps, bottom layer first: each may import those before it, never those
# after it (the layers contract in pyproject.toml, checked by `make lint`).
MISSIVE_APPS = (
    "accounts",
    "media",
    "contacts",
    "events",
    "domains",
    "audiences",
    "campaigns",
    "journeys",
    "stats",
    "privacy",
)

INSTALLED_APPS = [
    # First, so its createsuperuser (which enforces the password rule) wins over Django's.
    "accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "anymail",
    *MISSIVE_APPS[1:],
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "accounts.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.CurrentAccountMiddleware",
    "accounts.middleware.RequireMFAMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_account",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. `make run` and `make test` start an embedded PostgreSQL "
        "and set it for you; otherwise point it at a PostgreSQL server, "
        "e.g. postgresql://user:password@localhost:5432/missive."
    )
DATABASES = {"default": parse_database_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery broker ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. `make run` and `make test` start an embedded Redis and set it "
        "for you; otherwise point it at a Redis server, e.g. redis://localhost:6379/0."
    )
REDIS_CLIENT_URL, CELERY_BROKER_URL = redis_settings(REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_CLIENT_URL,
        "KEY_PREFIX": "missive",
    }
}

CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Every periodic job lives here, each with how often, why, and an expiry so a backlog
# of missed runs never piles up behind a stopped worker.
CELERY_BEAT_SCHEDULE = {
    # Hourly: failed-login records are kept only as long as the security page shows them.
    "accounts-purge-login-failures": {
        "task": "accounts.purge_login_failures",
        "schedule": timedelta(hours=1),
        "options": {"expires": 30 * 60},
    },
    # Every 10 minutes: imports whose worker died are marked failed; uploads never mapped
    # are deleted after 24 hours.
    "contacts-sweep-imports": {
        "task": "contacts.sweep_imports",
        "schedule": timedelta(minutes=10),
        "options": {"expires": 5 * 60},
    },
    # Hourly: invitations nobody accepted stop being valid after their expiry date.
    # Every 30 seconds: scheduled campaigns that are due start.
    "campaigns-start-due": {
        "task": "campaigns.start_due",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 25},
    },
    # Every minute: claims of dead workers go back to the queue, retries that are due are
    # picked up, finished campaigns are closed.
    "campaigns-sweep-sending": {
        "task": "campaigns.sweep_sending",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    # Every minute: journeys read their triggers (new subscribers, tags, segment members,
    # dates, clicks) and due enrollments are moved on (journeys/triggers.py, engine.py).
    "journeys-tick": {
        "task": "journeys.tick",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    # Every minute: A/B tests whose wait is over get their winner, and the rest of their
    # audience is sent it (campaigns/ab.py).
    "campaigns-decide-ab-tests": {
        "task": "campaigns.decide_ab_tests",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    # Daily: the event table's monthly partitions exist three months ahead.
    "events-ensure-partitions": {
        "task": "events.ensure_partitions",
        "schedule": timedelta(days=1),
        "options": {"expires": 60 * 60},
    },
    # Every 10 seconds: new events are folded into the report counters, so reports are
    # 10 to 20 seconds behind (stats/rollup.py). A run that overlaps another does nothing.
    "stats-rollup": {
        "task": "stats.rollup",
        "schedule": timedelta(seconds=10),
        "options": {"expires": 9},
    },
    # Every minute: the bounce mailbox of SMTP sending is read (stats/bounces.py); the
    # task does nothing unless MISSIVE_BOUNCE_MAILBOX is set.
    "stats-fetch-bounces": {
        "task": "stats.fetch_bounces",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    # Every 10 minutes: sending domains due a DNS check (hourly once verified).
    "domains-check-domains": {
        "task": "domains.check_domains",
        "schedule": timedelta(minutes=10),
        "options": {"expires": 9 * 60},
    },
    # Every 10 minutes: contacts' domains whose names do not say their mailbox provider
    # are looked up by their mail exchangers (domains/providers.py), for pacing and
    # segments; each again after a month.
    "domains-classify-mailbox-domains": {
        "task": "domains.classify_mailbox_domains",
        "schedule": timedelta(minutes=10),
        "options": {"expires": 9 * 60},
    },
    # Daily: every retention policy of every app (privacy/runner.py).
    "privacy-run-retention": {
        "task": "privacy.run_retention",
        "schedule": timedelta(days=1),
        "options": {"expires": 6 * 60 * 60},
    },
    "accounts-purge-expired-invitations": {
        "task": "accounts.purge_expired_invitations",
        "schedule": timedelta(hours=1),
        "options": {"expires": 30 * 60},
    },
}

# --- Authentication ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First, as django-axes asks: it refuses any attempt while a lockout is in force.
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "accounts.validators.CharacterClassValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# Owners send mail in their company's name: their address is proven first. This also
# keeps the sign-up form from telling who already has a login.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"
# Said explicitly (it is allauth's default): sign-up, login and password reset answer a
# known and an unknown address alike; accounts/signup.py makes the work alike too.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_FORMS = {"signup": "accounts.signup.SignupForm"}
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Missive] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# django-axes is the one password throttle (10 failures, 15 minutes), so its rule is the
# one people meet; two-factor codes, which axes does not see, have their own
# (accounts.forms.MFAAuthenticateForm). allauth's other limits stay on.
ACCOUNT_RATE_LIMITS = {"login_failed": False}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Missive"
MFA_FORMS = {
    "authenticate": "accounts.forms.MFAAuthenticateForm",
    "reauthenticate": "accounts.forms.MFAReauthenticateForm",
}
MFA_FAILURE_LIMIT = 5
MFA_LOCKOUT = timedelta(minutes=15)

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# Either key alone locks: one address attacked from many places, or one place
# trying many addresses.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "accounts.throttling.login_identifier"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
# Not axes' own reset, which also forgets failures counted against the network: a
# successful login forgets only that address's failures (accounts/signals.py).
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
# How many reverse proxies in front of Missive append to X-Forwarded-For (0: none, the
# client's address is REMOTE_ADDR). Only hops added by trusted proxies are believed.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
LOGIN_FAILURE_RETENTION = timedelta(days=30)

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.auth.HasAccount"],
    "DEFAULT_SCHEMA_CLASS": "accounts.api.schema.MissiveAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "accounts.api.errors.exception_handler",
    # The API reads JSON only (uploads declare their multipart parser): a form body has no
    # null, no nesting and no types, so it could not mean what the schema says.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Missive API",
    "DESCRIPTION": (
        "Manage contacts, lists and campaigns of one Missive account. Authenticate with "
        "`Authorization: Bearer <api key>`; keys are created under *API keys* in the app."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Several resources have a "status" of their own values: each its own enum name.
    "ENUM_NAME_OVERRIDES": {
        "DomainStatusEnum": "domains.models.SendingDomain.Status",
        "RecordStatusEnum": "domains.api.serializers.RECORD_STATUSES",
        "ReadinessStatusEnum": "stats.readiness.STATUSES",
    },
    # Requests and responses as separate components: what a client may send (no read-only
    # fields, patterns on text) is not what it gets back.
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and its docs are public; every endpoint they describe is not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# --- Email ----------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Missive <no-reply@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# Missive's own mail (invitations, confirmation links, notices; accounts/mail.py): a
# transient failure is tried again after this many seconds, doubling each time, up to
# MISSIVE_NOTICE_MAX_ATTEMPTS attempts in all (about an hour with the defaults).
MISSIVE_NOTICE_RETRY_DELAY = env_int("MISSIVE_NOTICE_RETRY_DELAY", 30)
MISSIVE_NOTICE_MAX_ATTEMPTS = env_int("MISSIVE_NOTICE_MAX_ATTEMPTS", 8)
EMAIL_ESP = env_str("EMAIL_ESP").strip().lower()
# django-anymail's settings come as ANYMAIL_<NAME> variables (a secret also as
# ANYMAIL_<NAME>_FILE), e.g. ANYMAIL_POSTMARK_SERVER_TOKEN=…; read whatever the delivery,
# since the providers' webhooks (ANYMAIL_WEBHOOK_SECRET, stats/webhooks.py) need them too.
ANYMAIL = {
    name: env_str(f"ANYMAIL_{name}")
    for name in sorted(
        {
            key.removeprefix("ANYMAIL_").removesuffix("_FILE")
            for key in os.environ
            if key.startswith("ANYMAIL_")
        }
    )
}
if EMAIL_ESP:
    # Any of django-anymail's providers, e.g. EMAIL_ESP=postmark.
    EMAIL_BACKEND = f"anymail.backends.{EMAIL_ESP}.EmailBackend"
else:
    _email = parse_email_url(env_str("EMAIL_URL", "console://" if DEBUG else ""))
    globals().update(_email)
    if not env_str("EMAIL_URL") and not DEBUG:
        raise ImproperlyConfigured(
            "Email delivery is not configured: set EMAIL_URL (smtp://user:pass@host:587"
            "?starttls=true) or EMAIL_ESP with its ANYMAIL_* settings."
        )
# Sending campaigns. "default" is the delivery configured above; an operator may add
# named backends, MISSIVE_BACKEND_<NAME>=<an EMAIL_URL> or esp:<anymail provider>, and
# give one to an account in the admin (Account.sending_backend).
MISSIVE_SENDING_BACKENDS = {
    key.removeprefix("MISSIVE_BACKEND_").lower(): value
    for key, value in os.environ.items()
    if key.startswith("MISSIVE_BACKEND_") and value
}
# Recipients a worker claims at a time; pause, cancel and suppression are checked between
# batches. The ledger records outcomes every MISSIVE_SEND_FLUSH_EVERY messages, which
# bounds what a killed worker can send twice.
MISSIVE_SEND_BATCH_SIZE = env_int("MISSIVE_SEND_BATCH_SIZE", 500)
MISSIVE_SEND_FLUSH_EVERY = env_int("MISSIVE_SEND_FLUSH_EVERY", 100)
# Batches of one campaign in flight at once (across all workers).
MISSIVE_SEND_LANES = env_int("MISSIVE_SEND_LANES", 4)
# Journey enrollments moved on per transaction (journeys/engine.py).
MISSIVE_JOURNEY_BATCH = env_int("MISSIVE_JOURNEY_BATCH", 500)
# A claim older than this (seconds) belongs to a dead worker and goes back to the queue.
MISSIVE_SEND_CLAIM_TIMEOUT = env_int("MISSIVE_SEND_CLAIM_TIMEOUT", 300)
# Transient failures (4xx, timeouts, throttling) are retried with backoff this many times.
MISSIVE_SEND_MAX_ATTEMPTS = env_int("MISSIVE_SEND_MAX_ATTEMPTS", 5)
MISSIVE_SEND_RETRY_BASE = env_int("MISSIVE_SEND_RETRY_BASE", 60)
# Messages per second per account, across all workers (0: no limit); the operator can set
# another rate per account in the admin.
MISSIVE_DEFAULT_SEND_RATE = env_int("MISSIVE_DEFAULT_SEND_RATE", 0)
# The envelope sender (Return-Path) of campaign mail sent over SMTP, e.g.
# bounces@mail.example.com: each message then goes out from bounces+<signed id>@…, so the
# delivery status notifications that come back name their delivery (VERP). With {domain}
# in it (bounces@bounce.{domain}) each sending domain has its own bounce domain, which
# keeps SPF aligned with the From address (its MX is MISSIVE_BOUNCE_MX). Empty: the
# campaign's sender address.
MISSIVE_RETURN_PATH = env_str("MISSIVE_RETURN_PATH")
# The mailto: address of the List-Unsubscribe header (an https URL always comes first).
_base_host = urlsplit(MISSIVE_BASE_URL).hostname or ""
if "." not in _base_host or _base_host[-1].isdigit():  # an IP address or a bare name
    _base_host = "localhost"
MISSIVE_UNSUBSCRIBE_MAILTO = env_str("MISSIVE_UNSUBSCRIBE_MAILTO", f"unsubscribe@{_base_host}")
# The mailbox that receives the bounces of SMTP sending and the mailto: unsubscribes
# (imaps://user:password@host/INBOX or pop3s://user:password@host), read every minute.
MISSIVE_BOUNCE_MAILBOX = env_str("MISSIVE_BOUNCE_MAILBOX")
# SpamAssassin's spamd as host:port (127.0.0.1:783): the campaign page's pre-send checks
# then show the message's spam score. Empty: no spam check.
MISSIVE_SPAMC = env_str("MISSIVE_SPAMC")

# --- Sending domains ------------------------------------------------------------------
# A campaign's From address must be on a domain its account proved by DNS (domains/).
MISSIVE_REQUIRE_VERIFIED_DOMAIN = env_bool("MISSIVE_REQUIRE_VERIFIED_DOMAIN", True)
# The DNS servers sending domains are checked against ("host" or "host:port", comma
# separated); empty: the machine's resolver. `make run` points it at its own server.
MISSIVE_DNS_SERVERS = env_list("MISSIVE_DNS_SERVERS")
MISSIVE_DNS_TIMEOUT = env_int("MISSIVE_DNS_TIMEOUT", 5)
# The key that encrypts DKIM private keys at rest (any long random string; several,
# comma separated, to rotate it: the first encrypts, all decrypt). Empty: derived from
# SECRET_KEY, so changing SECRET_KEY then needs this set to the old one first.
MISSIVE_DKIM_KEY_SECRET = env_list("MISSIVE_DKIM_KEY_SECRET")
# What the SPF record of a sending domain (or of its bounce domain) must authorize: an
# include: of the operator's SPF record, and/or the addresses Missive sends from.
MISSIVE_SPF_INCLUDE = env_str("MISSIVE_SPF_INCLUDE")
MISSIVE_SENDING_IPS = env_list("MISSIVE_SENDING_IPS")
# Where DMARC aggregate reports go in the record Missive suggests when a domain has none.
MISSIVE_DMARC_RUA = env_str("MISSIVE_DMARC_RUA", f"mailto:dmarc@{_base_host}")
# The mail exchanger of per-domain bounce addresses (MISSIVE_RETURN_PATH with {domain}).
MISSIVE_BOUNCE_MX = env_str("MISSIVE_BOUNCE_MX", _base_host)
# A replaced DKIM key stays published (and valid) this long for messages in flight.
MISSIVE_DKIM_GRACE_DAYS = env_int("MISSIVE_DKIM_GRACE_DAYS", 7)
# The platform's shared domain, for accounts an operator allows to send before they have
# a domain of their own: From <account>@<this domain>, Reply-To the customer's address.
MISSIVE_SHARED_DOMAIN = env_str("MISSIVE_SHARED_DOMAIN")
# Receivers throttle a sender that opens too many connections or sends too many messages
# on one (Yahoo documents 20 a connection): limits per mailbox provider, shared by every
# worker through Redis (domains/pacing.py). MISSIVE_<PROVIDER>_CONNECTIONS,
# _PER_CONNECTION and _RATE (messages a second, 0: no limit) override them.
MISSIVE_PROVIDER_LIMITS = {
    provider: {
        "connections": env_int(f"MISSIVE_{provider.upper()}_CONNECTIONS", connections),
        "per_connection": env_int(f"MISSIVE_{provider.upper()}_PER_CONNECTION", per_connection),
        "rate": env_int(f"MISSIVE_{provider.upper()}_RATE", 0) or None,
    }
    for provider, connections, per_connection in (
        ("gmail", 10, 100),
        ("yahoo", 5, 20),
        ("microsoft", 5, 100),
        ("other", 20, 100),
    )
}
# How long a worker waits for a free connection to a provider before the rest of its
# batch goes back to the queue, and how long a connection's slot is held without news
# from its worker (a killed worker's slot is free again after this).
MISSIVE_CONNECTION_SLOT_WAIT = env_int("MISSIVE_CONNECTION_SLOT_WAIT", 30)
MISSIVE_CONNECTION_LEASE = env_int("MISSIVE_CONNECTION_LEASE", 300)
# A provider that defers for rate (4.7.x) has its pace halved, from this many messages a
# second when it had no limit, for this many minutes after its last deferral.
MISSIVE_DEFERRAL_START_RATE = env_int("MISSIVE_DEFERRAL_START_RATE", 20)
MISSIVE_DEFERRAL_MINUTES = env_int("MISSIVE_DEFERRAL_MINUTES", 15)

# Retention: how long each kind of data is kept (privacy/runner.py runs the policies
# declared in each app's retention.py once a day; `manage.py purge --dry-run` shows them).
MISSIVE_RETENTION = {
    # Tracking events, removed in whole months once a month's newest event is this old.
    "events_months": env_int("MISSIVE_RETAIN_EVENTS_MONTHS", 13),
    # The personalized copy of each message ("view in browser").
    "message_bodies_days": env_int("MISSIVE_RETAIN_BODIES_DAYS", 6),
    # Everything of a closed account but an anonymized stub.
    "closed_accounts_days": env_int("MISSIVE_RETAIN_CLOSED_ACCOUNTS_DAYS", 90),
    # Opt-ins never confirmed (and contacts that exist only for them).
    "unconfirmed_days": env_int("MISSIVE_RETAIN_UNCONFIRMED_DAYS", 30),
    # Uploaded import files not imported.
    "import_uploads_hours": env_int("MISSIVE_RETAIN_IMPORT_UPLOADS_HOURS", 24),
    # The accounts' audit logs of personal-data operations.
    "audit_log_days": env_int("MISSIVE_RETAIN_AUDIT_LOG_DAYS", 365),
    # Inactive contacts go after each account's own horizon, this many days after the
    # account was told how many would go.
    "inactivity_notice_days": env_int("MISSIVE_INACTIVITY_NOTICE_DAYS", 30),
    # Records of Missive's own mail that could not be sent (they hold addresses).
    "mail_failures_days": env_int("MISSIVE_RETAIN_MAIL_FAILURES_DAYS", 90),
}

# Where the local mail catcher (`manage.py mailcatcher`) stores what it receives; the
# staff Outbox page reads it. Empty in production.
MAIL_CATCHER_DIR = env_str("MAIL_CATCHER_DIR")

# --- Internationalisation, static files ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Campaign images (media/): files under MEDIA_ROOT/images by default, which web and
# workers must share. An S3-compatible store instead: MISSIVE_IMAGES_STORAGE names the
# storage class (e.g. storages.backends.s3.S3Storage, from `pip install django-storages
# boto3`) and MISSIVE_IMAGES_STORAGE_OPTIONS its options as a JSON object
# ({"bucket_name": "missive-images", "endpoint_url": "https://…"}).
STORAGES["images"] = {
    "BACKEND": env_str("MISSIVE_IMAGES_STORAGE", "django.core.files.storage.FileSystemStorage"),
    "OPTIONS": env_json_object(
        "MISSIVE_IMAGES_STORAGE_OPTIONS", {"location": str(MEDIA_ROOT / "images")}
    ),
}
# Uploads: the largest file, the most pixels (width times height, read from the header
# before any decoding, so a decompression bomb costs nothing), and each account's total.
MISSIVE_IMAGE_MAX_BYTES = env_int("MISSIVE_IMAGE_MAX_BYTES", 5 * 1024 * 1024)
MISSIVE_IMAGE_MAX_PIXELS = env_int("MISSIVE_IMAGE_MAX_PIXELS", 25_000_000)
MISSIVE_IMAGE_QUOTA_BYTES = env_int("MISSIVE_IMAGE_QUOTA_BYTES", 500 * 1024 * 1024)
# Imports: the largest CSV file accepted. Uploads are kept under MEDIA_ROOT/imports until
# their import ends (web and workers must share that directory).
MISSIVE_IMPORT_MAX_BYTES = env_int("MISSIVE_IMPORT_MAX_MB", 200) * 1024 * 1024

# --- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 14 * 24 * 3600
CSRF_COOKIE_HTTPONLY = True
# An API client refused for CSRF gets JSON, not the HTML page meant for a browser.
CSRF_FAILURE_VIEW = "accounts.api.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if TRUSTED_PROXY_COUNT:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SILENCED_SYSTEM_CHECKS = []
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a one-way door the operator opens deliberately.
        SILENCED_SYSTEM_CHECKS.append("security.W021")
# A strict policy: no inline script, no third-party origin. Sent in every mode so a page
# that breaks it breaks in development first. Inline styles stay allowed: the API docs
# and the admin set style attributes, and a style cannot run code.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd's per-connection chatter
    },
}

# Whether anyone may create an account from the sign-up page (an operator running a
# private installation turns it off and invites people instead).
MISSIVE_SIGNUP_OPEN = env_bool("MISSIVE_SIGNUP_OPEN", True)
