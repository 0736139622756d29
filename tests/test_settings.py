"""Settings from the environment: parsers, and refusal to run production unsafely."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_int,
    env_str,
    parse_database_url,
    parse_email_url,
    redis_settings,
)

ROOT = Path(__file__).resolve().parent.parent


def test_it_reads_the_embedded_servers_socket_url():
    config = parse_database_url("postgresql://postgres:@/missive?host=/srv/var/postgres")

    assert config["HOST"] == "/srv/var/postgres"
    assert config["NAME"] == "missive"
    assert config["USER"] == "postgres"


def test_it_reads_a_network_url_with_options():
    config = parse_database_url("postgres://app:p%40ss@db.internal:6543/mail?sslmode=require")

    assert (config["HOST"], config["PORT"], config["PASSWORD"]) == ("db.internal", "6543", "p@ss")
    assert config["OPTIONS"] == {"sslmode": "require"}


def test_it_refuses_a_database_that_is_not_postgresql():
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL only"):
        parse_database_url("sqlite:///db.sqlite3")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://u:p%21@mail.example.com:587?starttls=true",
            ("mail.example.com", 587, True, False, "p!"),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, False, True, "p")),
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, False, False, "")),
    ],
)
def test_it_reads_an_email_url(url, expected):
    config = parse_email_url(url)

    assert (
        config["EMAIL_HOST"],
        config["EMAIL_PORT"],
        config["EMAIL_USE_TLS"],
        config["EMAIL_USE_SSL"],
        config["EMAIL_HOST_PASSWORD"],
    ) == expected


def test_it_refuses_an_unknown_email_scheme():
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        parse_email_url("pigeon://loft")


def test_it_spells_a_unix_socket_for_redis_and_for_celery():
    client, broker = redis_settings("unix:///srv/redis.sock?db=1")

    assert client == "unix:///srv/redis.sock?db=1"
    assert broker == "redis+socket:///srv/redis.sock?virtual_host=1"
    assert redis_settings("redis://r:6379/2") == ("redis://r:6379/2", "redis://r:6379/2")


def test_it_reads_typed_values_and_secret_files(monkeypatch, tmp_path):
    monkeypatch.setenv("X_FLAG", "yes")
    monkeypatch.setenv("X_NUMBER", "12")
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))

    assert env_bool("X_FLAG") is True
    assert env_int("X_NUMBER", 0) == 12
    assert env_str("X_SECRET") == "s3cret"
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


PRODUCTION = {
    "SECRET_KEY": "x" * 10 + "K9#mQ2$vL8@pR4!tW7&zN1^bH6*cJ3(dF5)gS0-aE",
    "ALLOWED_HOSTS": "mail.example.com",
    "MISSIVE_BASE_URL": "https://mail.example.com",
    "EMAIL_URL": "smtp://user:pass@smtp.example.com:587?starttls=true",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "MISSIVE_DEBUG", *PRODUCTION}
    }
    # Production mode, asked for explicitly: no development defaults from var/dev.env.
    environment.update(MISSIVE_DEBUG="false", **env)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=environment,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "ALLOWED_HOSTS", "MISSIVE_BASE_URL", "EMAIL_URL"]
)
def test_it_refuses_to_start_in_production_without(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    result = _manage("check", **env)

    assert result.returncode != 0
    assert missing in result.stderr


def test_it_refuses_to_start_in_production_with_a_plain_http_base_url():
    # given production settings with an http:// public address
    env = {**PRODUCTION, "MISSIVE_BASE_URL": "http://mail.example.com"}

    # when Missive starts
    result = _manage("check", **env)

    # then it refuses, saying why
    assert result.returncode != 0
    assert "MISSIVE_BASE_URL must be an https:// address in production" in result.stderr
    assert "RFC 8058" in result.stderr


def test_it_says_why_in_the_deployment_checklist_when_the_base_url_is_http(settings):
    from accounts.checks import base_url_is_https

    # given an installation whose public address is plain http (DEBUG lets it start)
    settings.MISSIVE_BASE_URL = "http://mail.example.com"

    # when the deployment checklist runs
    messages = base_url_is_https()

    # then it names the problem and the reason
    assert [m.id for m in messages] == ["missive.E002"]
    assert "RFC 8058" in messages[0].hint
    settings.MISSIVE_BASE_URL = "https://mail.example.com"
    assert base_url_is_https() == []


def test_it_passes_the_deployment_checklist_in_production():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_sends_security_headers_on_every_page(client, db):
    response = client.get("/accounts/login/")

    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_it_shows_a_friendly_404_page(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_it_shows_a_friendly_500_page_even_without_context(rf):
    from accounts.views.errors import server_error

    response = server_error(rf.get("/"))

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_it_lets_manage_py_read_the_development_environment(tmp_path, monkeypatch):
    import manage

    env_file = tmp_path / "dev.env"
    env_file.write_text("# comment\nX_DEV_ONE=from-file\nX_DEV_TWO=from-file\n")
    monkeypatch.setattr(manage, "DEV_ENV", env_file)
    monkeypatch.setenv("X_DEV_TWO", "from-environment")
    monkeypatch.delenv("X_DEV_ONE", raising=False)
    monkeypatch.delenv("MISSIVE_DEBUG", raising=False)

    manage.load_dev_env()

    assert os.environ["X_DEV_ONE"] == "from-file"
    assert os.environ["X_DEV_TWO"] == "from-environment"  # what is already set wins
    monkeypatch.delenv("X_DEV_ONE")

    # production mode, asked for explicitly, reads nothing from the file
    monkeypatch.setenv("MISSIVE_DEBUG", "false")
    manage.load_dev_env()
    assert "X_DEV_ONE" not in os.environ
