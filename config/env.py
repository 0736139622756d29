"""Typed helpers that read settings from the environment.

Every setting that differs between machines comes from an environment variable. A
secret may also be given as ``NAME_FILE`` (a path whose contents are the value), which
is how Docker and Kubernetes hand secrets to a process. A malformed value is an error at
start-up, never a silent default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or the contents of the file ``NAME_FILE`` points at."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json_object(name: str, default: dict | None = None) -> dict:
    """A JSON object, e.g. a storage backend's options."""
    raw = env_str(name)
    if not raw.strip():
        return dict(default or {})
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object ({{...}}), not {raw!r}.")
    return value


def _query_flag(query: dict[str, list[str]], key: str) -> bool:
    values = query.get(key, [])
    return bool(values) and values[-1].strip().lower() in _TRUE


def parse_database_url(url: str) -> dict:
    """``postgresql://user:pass@host:port/name?host=/socket/dir&sslmode=require``.

    The ``host`` query parameter (a unix socket directory, as the embedded server gives)
    wins over the network location; other query parameters become connection options.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgresql:// (Missive runs on PostgreSQL only), "
            f"got {parts.scheme or 'no scheme'!r}."
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.pop("host", None) or parts.hostname or ""
    name = unquote(parts.path.lstrip("/")) or "postgres"
    config: dict = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": query,
    }
    return config


def parse_email_url(url: str) -> dict:
    """``smtp://user:pass@host:587?starttls=true`` or ``smtps://…:465`` → Django settings.

    Also understood: ``console://`` (print), ``locmem://`` (tests) and ``file:///dir``.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    scheme = parts.scheme.lower()
    if scheme in {"smtp", "smtps", "submission"}:
        use_ssl = scheme == "smtps" or _query_flag(query, "ssl")
        use_tls = not use_ssl and (scheme == "submission" or _query_flag(query, "starttls"))
        default_port = 465 if use_ssl else (587 if use_tls else 25)
        timeout = query.get("timeout", ["30"])[-1]
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname or "localhost",
            "EMAIL_PORT": parts.port or default_port,
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": use_tls,
            "EMAIL_USE_SSL": use_ssl,
            "EMAIL_TIMEOUT": int(timeout),
        }
    if scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": unquote(parts.path),
        }
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {scheme!r} is not supported: use smtp://, smtps://, console:// "
        "or set EMAIL_ESP to use a provider's API."
    )


def redis_settings(url: str) -> tuple[str, str]:
    """(cache/client URL, Celery broker URL) for ``redis://``, ``rediss://`` or ``unix://``.

    redis-py spells a unix socket ``unix:///path?db=N``; kombu spells it
    ``redis+socket:///path?virtual_host=N``.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"redis", "rediss"}:
        return url, url
    if scheme in {"unix", "redis+socket"}:
        query = parse_qs(parts.query)
        db = (query.get("db") or query.get("virtual_host") or ["0"])[-1]
        return f"unix://{parts.path}?db={db}", f"redis+socket://{parts.path}?virtual_host={db}"
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {scheme or 'nothing'!r}."
    )
