"""Contacts at a million rows: import, export, and the pages that list them."""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.db import connection, connections
from django.test import Client
from psycopg import sql

from benchmarks.harness import Figure, median, percentile, scratch_database, timings_ms

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
PAGE_REQUESTS = 50


def _write_csv(path: Path, rows: int) -> None:
    """email, names, 3 attributes; 1% invalid addresses, 2% duplicates."""
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write("email,first_name,last_name,city,points,joined\n")
        for n in range(rows):
            roll = rng.random()
            if roll < 0.01:
                email = f"broken-{n}.example.com"
            elif roll < 0.03 and n > 0:
                email = f"person{rng.randrange(n)}@example.com"
            else:
                email = f"person{n}@example.com"
            out.write(
                f"{email},First{n},Last{n},City{n % 500},{n % 1000},2020-0{1 + n % 9}-1{n % 9}\n"
            )


def _in_child(target: Callable[..., None], *args: object) -> tuple[float, int]:
    """Run ``target`` in a forked process: (seconds, its peak resident memory in MB)."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child() -> None:
        started = time.perf_counter()
        target(*args)
        queue.put(time.perf_counter() - started)

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    process = context.Process(target=child)
    process.start()
    seconds = queue.get()
    process.join()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) // 1024


def _baseline_copy(path: Path) -> float:
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (email text, first_name text, last_name text, "
            "city text, points text, joined text, account_id bigint DEFAULT 1)"
        )
        # The contacts table's index, without uniqueness: the file has duplicates on purpose.
        cursor.execute("CREATE INDEX ON bench_copy (account_id, lower(email))")
        started = time.perf_counter()
        with (
            path.open("rb") as handle,
            cursor.copy(
                "COPY bench_copy (email, first_name, last_name, city, points, joined) "
                "FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def _idle() -> None:
    """The same forked process doing nothing: the memory any worker starts with."""


def _import(job_id: int) -> None:
    from contacts.importing.jobs import run_import

    run_import(job_id)


def _export(url: str, user_id: int) -> None:
    from accounts.models import User

    client = Client()
    client.force_login(
        User.objects.get(pk=user_id), backend="allauth.account.auth_backends.AuthenticationBackend"
    )
    response = client.get(url)
    received = sum(len(chunk) for chunk in response)  # streamed, never held whole
    print(f"   export over HTTP: {received / 1e6:.0f} MB")


def _baseline_export(account_id: int) -> tuple[float, float]:
    """COPY TO STDOUT of the same rows: (the exporter's own SELECT, the bare contacts
    table's columns). The first is the baseline; the second shows what the consent-proof
    columns and the join cost."""
    from accounts.models import Account
    from contacts.exporting import _query

    same, _names = _query(Account.objects.get(pk=account_id), None, for_csv=True)
    bare = sql.SQL(
        "SELECT c.email, c.first_name, c.last_name, c.attributes, c.created_at "
        "FROM contacts_contact c WHERE c.account_id = {}"
    ).format(sql.Literal(account_id))
    results = []
    for select in (same, bare):
        statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(select)
        started = time.perf_counter()
        with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
            size = sum(len(data) for data in copy)
        results.append(time.perf_counter() - started)
        print(f"   COPY TO STDOUT: {size / 1e6:.0f} MB")
    return results[0], results[1]


def run() -> list[Figure]:
    with scratch_database():
        from contacts import services
        from contacts.importing.jobs import import_configure, import_upload
        from contacts.models import ImportJob
        from tests.factories import make_account, make_api_key, make_user

        owner = make_user("bench@example.com")
        account = make_account(owner, "Bench Inc")
        for name, kind in (("city", "text"), ("points", "number"), ("joined", "date")):
            services.attribute_define(account=account, actor=owner, name=name, type=kind)
        contact_list = services.list_create(account=account, actor=owner, name="Everyone")

        workdir = Path(tempfile.mkdtemp(prefix="missive-bench-"))
        path = workdir / "contacts.csv"
        _write_csv(path, ROWS)
        size_mb = path.stat().st_size / 1e6

        copy_seconds = _baseline_copy(path)
        _idle_seconds, idle_mb = _in_child(_idle)
        with path.open("rb") as handle:
            job = import_upload(
                account=account,
                actor=owner,
                contact_list=contact_list,
                upload=UploadedFile(handle, name="contacts.csv", size=path.stat().st_size),
            )
        import_configure(
            job=job,
            actor=owner,
            mapping=job.mapping,
            legal_basis="consent",
            consent_text="Benchmark",
            update_existing=False,
        )
        # Queued by the configure step; the benchmark runs it itself, in a child process.
        import_seconds, import_mb = _in_child(_import, job.pk)
        job = ImportJob.objects.get(pk=job.pk)
        print(
            f"   import of {ROWS:,} rows ({size_mb:.0f} MB): {job.status}, "
            f"created {job.created_count:,}, duplicates {job.duplicate_count:,}, "
            f"invalid {job.invalid_count:,}"
        )

        export_copy_seconds, bare_copy_seconds = _baseline_export(account.pk)
        export_seconds, export_mb = _in_child(_export, "/contacts/export.csv", owner.pk)

        client = Client()
        client.force_login(owner, backend="allauth.account.auth_backends.AuthenticationBackend")
        list_url = f"/lists/{contact_list.pk}/"
        list_ms = timings_ms(lambda: client.get(list_url), PAGE_REQUESTS)
        second_page = client.get(list_url).context["page"].next_cursor
        deep_ms = timings_ms(lambda: client.get(list_url, {"after": second_page}), PAGE_REQUESTS)
        _key, secret = make_api_key(account)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        api_ms = timings_ms(
            lambda: api.get("/api/v1/contacts/", {"list": contact_list.pk}), PAGE_REQUESTS
        )
        health_ms = timings_ms(lambda: client.get("/healthz"), PAGE_REQUESTS)
    return [
        Figure(
            "import 1M-row CSV", import_seconds, "COPY of the file", copy_seconds, "s", "ratio ≤ 3"
        ),
        Figure("importer peak memory", import_mb, "an idle worker", idle_mb, "MB", "< 300 MB"),
        Figure(
            "export as CSV over HTTP",
            export_seconds,
            "COPY of the same SELECT",
            export_copy_seconds,
            "s",
            "ratio ≤ 2",
        ),
        Figure(
            "export as CSV over HTTP",
            export_seconds,
            "COPY of contacts columns only",
            bare_copy_seconds,
            "s",
        ),
        Figure("exporter peak memory", export_mb, "an idle worker", idle_mb, "MB", "flat"),
        Figure("list page p50", median(list_ms), "GET /healthz p50", median(health_ms), "ms"),
        Figure(
            "list page p99",
            percentile(list_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 200 ms",
        ),
        Figure(
            "list page 2 p99",
            percentile(deep_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 200 ms",
        ),
        Figure(
            "contacts API page p50", median(api_ms), "GET /healthz p50", median(health_ms), "ms"
        ),
        Figure(
            "contacts API page p99",
            percentile(api_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 200 ms",
        ),
    ]
