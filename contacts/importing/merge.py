"""The second half of the run: the staged rows merged into the account's contacts and
the list's subscriptions by a few set-based statements, in the transaction of the
staging. Duplicates within the file are kept once, existing contacts are updated only if
the customer asked, addresses on the account's or the platform's suppression list are
never added, and people who unsubscribed from the list are never subscribed again.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from psycopg import Cursor
from psycopg.errors import InsufficientPrivilege, UniqueViolation

from contacts.importing.sniff import ImportFileError
from contacts.models import ImportJob, Subscription

# The values the statements below write and count, from the model's choices: parameters
# beside each import's own (see merge_rows).
SUBSCRIPTION_VALUES = {
    "subscribed": Subscription.Status.SUBSCRIBED,
    "unconfirmed": Subscription.Status.UNCONFIRMED,
    "unsubscribed": Subscription.Status.UNSUBSCRIBED,
    "source": Subscription.Source.IMPORT,
}


def merge_rows(job: ImportJob, cursor: Cursor[Any]) -> dict[str, int]:
    """Set-based: a few statements, each over the whole file.

    Where the time goes, for a million new addresses, is the inserts: a heap row and three
    index entries per contact, as many per subscription, and the foreign-key checks that
    PostgreSQL runs row by row. So:
    - one statement keeps one row per address, creates the new contacts and their
      subscriptions, and sets aside the addresses that are contacts already, without
      writing the million rows to a table in between;
    - the contacts go in sorted by address, so that each index is written at its right
      edge (in file order the same inserts take a third longer);
    - without ON CONFLICT, whose speculative insertion makes the contacts' insert half as
      long again: a conflict can only come from someone adding one of these addresses to
      the account during the import, and that rare case is done again with it;
    - without the per-row foreign-key checks where the database role may skip them,
      their guarantees being given for the whole statement (see _skip_row_checks)."""
    params = {
        "account": job.account_id,
        "list": job.contact_list_id,
        "now": timezone.now(),
        "legal_basis": job.legal_basis,
        "consent_text": job.consent_text,
        **SUBSCRIPTION_VALUES,
    }
    # The addresses that are contacts already (and not suppressed), for the steps after.
    cursor.execute(
        "CREATE TEMPORARY TABLE import_rows (email text NOT NULL, first_name text, "
        "last_name text, attributes jsonb NOT NULL, consent_at timestamptz, consent_ip inet, "
        "confirmed_at timestamptz, contact_id bigint NOT NULL) ON COMMIT DROP"
    )
    # An account without contacts yet (its first import) has nothing to look up; one
    # added meanwhile makes the insert conflict, and is then looked up.
    lookup = _has_contacts(cursor, params)
    consent = _has_consent_columns(job)
    try:
        counts = _insert_new(cursor, params, lookup=lookup, on_conflict=False, consent=consent)
    except UniqueViolation:
        counts = _insert_new(cursor, params, lookup=True, on_conflict=True, consent=consent)
    unique_rows, suppressed, known, created, subscribed, checks_skipped = counts

    updated = unsubscribed = already = 0
    if known:
        if job.update_existing:
            cursor.execute(
                """
                UPDATE contacts_contact c SET
                    first_name = COALESCE(NULLIF(r.first_name, ''), c.first_name),
                    last_name = COALESCE(NULLIF(r.last_name, ''), c.last_name),
                    attributes = c.attributes || r.attributes,
                    updated_at = %(now)s
                FROM import_rows r
                WHERE r.contact_id = c.id
                  AND (c.first_name <> COALESCE(NULLIF(r.first_name, ''), c.first_name)
                    OR c.last_name <> COALESCE(NULLIF(r.last_name, ''), c.last_name)
                    OR c.attributes <> c.attributes || r.attributes)
                """,
                params,
            )
            updated = cursor.rowcount
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE s.status = %(unsubscribed)s),
                   count(*) FILTER (WHERE s.status IN (%(subscribed)s, %(unconfirmed)s))
            FROM import_rows r
            JOIN contacts_subscription s
              ON s.contact_id = r.contact_id AND s.contact_list_id = %(list)s
            """,
            params,
        )
        unsubscribed, already = _one_row(cursor)
        subscribed += _subscribe_known(cursor, params)
    tags = _tag_rows(cursor, params) if "tags" in job.mapping.values() else {}
    return {
        **tags,
        "unique": unique_rows,
        "created": created,
        "updated": updated,
        "subscribed": subscribed,
        "already": already,
        "unsubscribed": unsubscribed,
        "suppressed": suppressed,
        "row_checks_skipped": checks_skipped,
    }


# One row per address (the first in the file), whether it is suppressed (a hashed lookup
# in the account's and the platform's lists, of the address's hash and, for an A-label
# domain, of its U-label form's, which older versions stored), and the contact it
# already is: a probe of the unique index per address, which keeps the addresses in
# order (a hash join need not) and costs what the file's size says, whatever the
# account's. The rows are then kept in memory for the three uses below, not written to
# a table.
_NEW_CONTACTS_SQL = """
    WITH addresses AS (
        SELECT d.email, d.first_name, d.last_name, d.attributes, d.consent_at, d.consent_ip,
               d.confirmed_at,
               (encode(sha256(convert_to(d.email, 'UTF8')), 'hex') IN (
                   SELECT s.email_sha256 FROM contacts_suppression s
                   WHERE s.account_id = %(account)s OR s.account_id IS NULL
               ) OR (d.unicode_sha256 IS NOT NULL AND d.unicode_sha256 IN (
                   SELECT s.email_sha256 FROM contacts_suppression s
                   WHERE s.account_id = %(account)s OR s.account_id IS NULL
               ))) AS suppressed,
               {lookup} AS contact_id
        FROM (
            SELECT DISTINCT ON (email) email, first_name, last_name, attributes, consent_at,
                   consent_ip, confirmed_at, unicode_sha256
            FROM import_staging ORDER BY email, row_number
        ) d
    ), known AS (
        INSERT INTO import_rows
            (email, first_name, last_name, attributes, consent_at, consent_ip, confirmed_at,
             contact_id)
        SELECT email, first_name, last_name, attributes, consent_at, consent_ip, confirmed_at,
               contact_id
        FROM addresses WHERE contact_id IS NOT NULL AND NOT suppressed
        RETURNING 1
    ), created AS (
        INSERT INTO contacts_contact
            (account_id, email, first_name, last_name, attributes, created_at, updated_at)
        SELECT %(account)s, email, COALESCE(first_name, ''), COALESCE(last_name, ''),
               attributes, %(now)s, %(now)s
        FROM addresses WHERE contact_id IS NULL AND NOT suppressed
        {conflict}
        RETURNING id, email
    ), subscribed AS (
        -- the ids come back from the insert: no join over the table is needed, unless
        -- the file gives each person's own consent proof (time, IP, confirmation)
        INSERT INTO contacts_subscription
            (contact_id, contact_list_id, status, source, legal_basis, consent_at,
             consent_ip, consent_user_agent, consent_text, confirmed_at, created_at,
             updated_at)
        SELECT c.id, %(list)s, %(subscribed)s, %(source)s, %(legal_basis)s, {consent_at},
               {consent_ip}, '', %(consent_text)s, {confirmed_at}, %(now)s, %(now)s
        FROM created c {consent_join}
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM addresses),
           (SELECT count(*) FROM addresses WHERE suppressed),
           (SELECT count(*) FROM known), (SELECT count(*) FROM created),
           (SELECT count(*) FROM subscribed)
"""
_LOOKUP_SQL = """(
    SELECT c.id FROM contacts_contact c
    WHERE c.account_id = %(account)s AND lower(c.email) = d.email
)"""


def _has_consent_columns(job: ImportJob) -> bool:
    return bool({"consent_at", "consent_ip", "confirmed_at"} & set(job.mapping.values()))


def _insert_new(
    cursor: Cursor[Any],
    params: dict[str, object],
    *,
    lookup: bool,
    on_conflict: bool,
    consent: bool = False,
) -> tuple[int, int, int, int, int, bool]:
    """New contacts and their subscriptions, the known ones set aside in import_rows:
    (addresses, suppressed, known, contacts created, subscriptions, whether the per-row
    foreign-key checks were skipped)."""
    statement = _NEW_CONTACTS_SQL.format(
        lookup=_LOOKUP_SQL if lookup else "NULL::bigint",
        conflict="ON CONFLICT (account_id, lower(email)) DO NOTHING" if on_conflict else "",
        consent_at="COALESCE(a.consent_at, %(now)s)" if consent else "%(now)s",
        consent_ip="a.consent_ip" if consent else "NULL",
        confirmed_at="COALESCE(a.confirmed_at, %(now)s)" if consent else "%(now)s",
        consent_join="JOIN addresses a ON a.email = c.email" if consent else "",
    )
    checked_here = _skip_row_checks(cursor, params)
    try:
        # A savepoint: after a conflict the import goes on, and the switch is reset.
        with transaction.atomic():
            cursor.execute(statement, params)
        return (*_one_row(cursor), checked_here)
    finally:
        if checked_here:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def _one_row(cursor: Cursor[Any]) -> Any:
    """The row of a statement that always returns one (a SELECT of counts or EXISTS)."""
    row = cursor.fetchone()
    assert row is not None, "the statement returns one row"
    return row


def _has_contacts(cursor: Cursor[Any], params: dict[str, object]) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM contacts_contact WHERE account_id = %(account)s)", params
    )
    return _one_row(cursor)[0]


def _skip_row_checks(cursor: Cursor[Any], params: dict[str, object]) -> bool:
    """Let the next statement insert without PostgreSQL's per-row foreign-key checks,
    whose guarantees this one gives for the whole statement instead; False (and nothing
    changed) when the database role may not, or when something else would be skipped
    with them (a trigger of the tables' own, a foreign key this function does not know).

    The checks cost as much as the inserts: three per new contact (its account; its
    subscription's contact and list), each a query that locks the referenced row
    against deletion. For the statement of _insert_new they hold by construction or are
    done here once:
    - the subscriptions reference the contacts the same statement has just created, which
      no other transaction can see, let alone delete;
    - the account and the list are locked here as each check would lock them (FOR KEY
      SHARE, until the commit): deleting either waits for the import, then fails on the
      rows it added, exactly as with the checks.
    Subscriptions of contacts already stored are inserted with the checks, by another
    statement. The switch (session_replication_role, the one pg_restore and logical
    replication use) needs a superuser or, from PostgreSQL 15, GRANT SET ON PARAMETER
    session_replication_role; it is set for this transaction only, and reset after the
    statement. Without it the import is correct and slower.
    """
    # Nothing else may be skipped: no other trigger that fires on insert (one of the
    # tables' own, a deferred unique check), no foreign key but the three above.
    cursor.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM pg_trigger
            WHERE tgrelid IN ('contacts_contact'::regclass, 'contacts_subscription'::regclass)
              AND tgtype & 4 <> 0  -- on INSERT
              AND tgfoid <> 'pg_catalog."RI_FKey_check_ins"'::regproc
        ) OR EXISTS (
            SELECT 1 FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f'
              AND c.conrelid IN ('contacts_contact'::regclass, 'contacts_subscription'::regclass)
              AND (c.conrelid, a.attname, c.confrelid) NOT IN (
                  ('contacts_contact'::regclass, 'account_id', 'accounts_account'::regclass),
                  ('contacts_subscription'::regclass, 'contact_id', 'contacts_contact'::regclass),
                  ('contacts_subscription'::regclass, 'contact_list_id',
                   'contacts_contactlist'::regclass)
              )
        )
        """
    )
    if _one_row(cursor)[0]:
        return False
    try:
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    except InsufficientPrivilege:
        return False
    cursor.execute("SELECT 1 FROM accounts_account WHERE id = %(account)s FOR KEY SHARE", params)
    account = cursor.fetchone()
    cursor.execute("SELECT 1 FROM contacts_contactlist WHERE id = %(list)s FOR KEY SHARE", params)
    if account is None or cursor.fetchone() is None:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        raise ImportFileError("The list or its account was deleted during the import.")
    return True


# The tags of the file: those the account has no tag of created (in the spelling first met,
# ON CONFLICT for one created meanwhile), then put on the contacts of the rows that were
# imported (not those of suppressed addresses), by two statements over the whole file.
_CREATE_TAGS_SQL = """
    WITH named AS (
        SELECT DISTINCT ON (lower(n.name)) n.name
        FROM import_staging s, unnest(s.tags) WITH ORDINALITY AS n (name, position)
        WHERE s.tags IS NOT NULL
        ORDER BY lower(n.name), s.row_number, n.position
    ), created AS (
        INSERT INTO contacts_tag (account_id, name, created_at)
        SELECT %(account)s, name, %(now)s FROM named
        ON CONFLICT (account_id, lower(name)) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM created
"""
_TAG_CONTACTS_SQL = """
    WITH tagged AS (
        INSERT INTO contacts_contacttag (tag_id, contact_id, created_at)
        SELECT DISTINCT t.id, c.id, %(now)s
        FROM import_staging s
        CROSS JOIN unnest(s.tags) AS n (name)
        JOIN contacts_contact c ON c.account_id = %(account)s AND lower(c.email) = s.email
        JOIN contacts_tag t ON t.account_id = %(account)s AND lower(t.name) = lower(n.name)
        WHERE s.tags IS NOT NULL
          AND NOT encode(sha256(convert_to(s.email, 'UTF8')), 'hex') IN (
              SELECT x.email_sha256 FROM contacts_suppression x
              WHERE x.account_id = %(account)s OR x.account_id IS NULL)
          AND NOT (s.unicode_sha256 IS NOT NULL AND s.unicode_sha256 IN (
              SELECT x.email_sha256 FROM contacts_suppression x
              WHERE x.account_id = %(account)s OR x.account_id IS NULL))
        ON CONFLICT (tag_id, contact_id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM tagged
"""


def _tag_rows(cursor: Cursor[Any], params: dict[str, object]) -> dict[str, int]:
    """The file's tags on the contacts it imported: how many tags were created, and how
    many tags were put on contacts (a contact that had one already keeps it)."""
    cursor.execute(_CREATE_TAGS_SQL, params)
    created = _one_row(cursor)[0]
    cursor.execute(_TAG_CONTACTS_SQL, params)
    return {"tags_created": created, "tagged": _one_row(cursor)[0]}


def _subscribe_known(cursor: Cursor[Any], params: dict[str, object]) -> int:
    """Contacts already stored: subscribed unless they are on the list already (an
    unsubscribe is kept). In contact order, the order of the list's index; with the
    foreign-key checks, which lock these contacts against deletion until the commit."""
    statement = """
        INSERT INTO contacts_subscription
            (contact_id, contact_list_id, status, source, legal_basis, consent_at,
             consent_ip, consent_user_agent, consent_text, confirmed_at, created_at,
             updated_at)
        SELECT r.contact_id, %(list)s, %(subscribed)s, %(source)s, %(legal_basis)s,
               COALESCE(r.consent_at, %(now)s), r.consent_ip, '', %(consent_text)s,
               COALESCE(r.confirmed_at, %(now)s), %(now)s, %(now)s
        FROM import_rows r
        WHERE NOT EXISTS (
            SELECT 1 FROM contacts_subscription s
            WHERE s.contact_list_id = %(list)s AND s.contact_id = r.contact_id
        )
        ORDER BY r.contact_id
        """
    try:
        with transaction.atomic():  # a savepoint, to retry after a conflict
            cursor.execute(statement, params)
    except UniqueViolation:
        # Subscribed meanwhile by someone else (a form, the API): their row is kept.
        cursor.execute(statement + " ON CONFLICT (contact_list_id, contact_id) DO NOTHING", params)
    return cursor.rowcount
