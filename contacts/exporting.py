"""Exports of the customer's contacts, streamed straight from PostgreSQL.

``COPY (SELECT …) TO STDOUT`` does the CSV quoting in the server; Python only forwards
the bytes in chunks, so memory stays flat whatever the number of rows. Text cells that a
spreadsheet would read as a formula (starting with = + - @, tab or carriage return) get
a leading apostrophe, in SQL. The JSON export carries the same data unescaped, one
object per line, for portability (GDPR Art. 20).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from psycopg import sql

from accounts.models import Account
from contacts.models import AttributeDefinition, ContactList

CHUNK_BYTES = 256 * 1024

CONTACT_COLUMNS = [
    ("email", "c.email"),
    ("first_name", "c.first_name"),
    ("last_name", "c.last_name"),
]
SUBSCRIPTION_COLUMNS = [
    ("list", "l.name"),
    ("status", "s.status"),
    ("source", "s.source"),
    ("legal_basis", "s.legal_basis"),
    ("consent_at", "s.consent_at"),
    ("consent_ip", "host(s.consent_ip)"),
    ("consent_user_agent", "s.consent_user_agent"),
    ("consent_text", "s.consent_text"),
    ("confirmed_at", "s.confirmed_at"),
    ("unsubscribed_at", "s.unsubscribed_at"),
]
TRAILING_COLUMNS = [
    ("created_at", "c.created_at"),
    ("updated_at", "c.updated_at"),
    ("last_activity_at", "c.last_activity_at"),
]
# The contact's tag names, by name: in a CSV cell separated by commas, as an import reads
# them back (a name never holds a comma); in JSON a list.
_TAG_NAMES = (
    "FROM contacts_contacttag ct JOIN contacts_tag t ON t.id = ct.tag_id WHERE ct.contact_id = c.id"
)
TAGS_CSV = f"(SELECT string_agg(t.name, ', ' ORDER BY lower(t.name)) {_TAG_NAMES})"
TAGS_JSON = f"ARRAY(SELECT t.name {_TAG_NAMES} ORDER BY lower(t.name))"
TEXT_COLUMNS = {
    "email",
    "first_name",
    "last_name",
    "tags",
    "list",
    "consent_user_agent",
    "consent_text",
}


def _defused(expression: sql.Composable) -> sql.Composable:
    """Neutralise spreadsheet formulas: prefix the cell with an apostrophe."""
    return sql.SQL(
        "CASE WHEN left(({e}), 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
        "THEN '''' || ({e}) ELSE ({e}) END"
    ).format(e=expression)


def _columns(account: Account, *, for_csv: bool) -> list[tuple[str, sql.Composable]]:
    names = AttributeDefinition.objects.for_account(account).values_list("name", flat=True)
    attributes = [
        (f"attributes.{name}", sql.SQL("c.attributes ->> {}").format(sql.Literal(name)))
        for name in names
    ]
    plain = [(name, sql.SQL(expression)) for name, expression in CONTACT_COLUMNS]
    tags = [("tags", sql.SQL(TAGS_CSV if for_csv else TAGS_JSON))]
    subscription = [(name, sql.SQL(expression)) for name, expression in SUBSCRIPTION_COLUMNS]
    trailing = [(name, sql.SQL(expression)) for name, expression in TRAILING_COLUMNS]
    columns = []
    for name, expression in [*plain, *attributes, *tags, *subscription, *trailing]:
        if for_csv and (name in TEXT_COLUMNS or name.startswith("attributes.")):
            expression = _defused(expression)
        columns.append((name, expression))
    return columns


def _query(
    account: Account,
    contact_list: ContactList | None,
    *,
    for_csv: bool,
    only: sql.Composable | None = None,
) -> tuple[sql.Composable, list[str]]:
    columns = _columns(account, for_csv=for_csv)
    if contact_list is None:
        source = sql.SQL(
            "FROM contacts_contact c "
            "LEFT JOIN contacts_subscription s ON s.contact_id = c.id "
            "LEFT JOIN contacts_contactlist l ON l.id = s.contact_list_id "
            "WHERE c.account_id = {account}"
        ).format(account=sql.Literal(account.pk))
    else:
        source = sql.SQL(
            "FROM contacts_subscription s "
            "JOIN contacts_contact c ON c.id = s.contact_id "
            "JOIN contacts_contactlist l ON l.id = s.contact_list_id "
            "WHERE s.contact_list_id = {list} AND c.account_id = {account}"
        ).format(list=sql.Literal(contact_list.pk), account=sql.Literal(account.pk))
    if only is not None:
        # The contacts a segment matches: a statement selecting their ids.
        source = sql.SQL("{source} AND c.id IN ({only})").format(source=source, only=only)
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expr, sql.Identifier(name)) for name, expr in columns
    )
    query = sql.SQL("SELECT {select} {source} ORDER BY c.id").format(select=select, source=source)
    return query, [name for name, _ in columns]


def _stream(copy_statement: sql.Composable) -> Iterator[bytes]:
    with connection.cursor() as cursor:
        pg_cursor = cursor.cursor  # psycopg's own cursor, for COPY
        buffer = bytearray()
        with pg_cursor.copy(copy_statement) as copy:
            for data in copy:
                buffer += data
                if len(buffer) >= CHUNK_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)


def csv_chunks(
    account: Account,
    contact_list: ContactList | None = None,
    *,
    only: sql.Composable | None = None,
) -> Iterator[bytes]:
    """The export as UTF-8 CSV with a header row, in chunks; ``only`` selects the ids of
    the contacts to export (all the account's, or the list's, without it)."""
    query, _names = _query(account, contact_list, for_csv=True, only=only)
    yield from _stream(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query))


def ndjson_chunks(
    account: Account,
    contact_list: ContactList | None = None,
    *,
    only: sql.Composable | None = None,
) -> Iterator[bytes]:
    """The export as newline-delimited JSON, one object per row, values unescaped.

    COPY's CSV mode with a delimiter and quote that JSON text never contains (JSON escapes
    control characters) passes each object through untouched."""
    query, _names = _query(account, contact_list, for_csv=False, only=only)
    rows = sql.SQL("SELECT row_to_json(t)::text FROM ({}) t").format(query)
    yield from _stream(
        sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')").format(
            rows
        )
    )
