"""Who a segment's conditions match, now: a count, a page, the contacts themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from psycopg import sql

from accounts.models import Account
from audiences.conditions import (
    Context,
    Invalid,
    clean_definition,
    context_for,
    matching_sql,
)
from audiences.models import Segment
from contacts.models import Contact


def segments(account: Account) -> QuerySet[Segment]:
    return Segment.objects.for_account(account)


def checked(
    account: Account, definition: object, *, now: dt.datetime | None = None
) -> tuple[dict[str, Any], Context]:
    """The definition made clean against the account, and the context it was checked in;
    ``Invalid`` names what is wrong."""
    ctx = context_for(account, now)
    return clean_definition(definition, ctx), ctx


def matching(
    account: Account, definition: object, *, now: dt.datetime | None = None
) -> QuerySet[Contact]:
    """The account's contacts who match ``definition`` (``Invalid`` when it cannot be
    read), as a queryset that other querysets can filter by (``contact__in=``)."""
    clean, ctx = checked(account, definition, now=now)
    return matching_clean(clean, ctx)


def matching_ids(definition: Mapping[str, Any], ctx: Context) -> RawSQL:
    """The ids of the account's contacts who match, as a subquery other querysets filter
    by (``contact_id__in=``): the compiler's statement, constants and parameters only."""
    q = matching_sql(definition, ctx)
    return RawSQL(q.sql, q.params)  # noqa: S611


def matching_clean(definition: Mapping[str, Any], ctx: Context) -> QuerySet[Contact]:
    return Contact.objects.for_account(ctx.account).filter(pk__in=matching_ids(definition, ctx))


def matching_ids_statement(definition: Mapping[str, Any], ctx: Context) -> sql.Composable:
    """The ids of the contacts who match, as a composed statement with its values quoted
    by psycopg, for statements that cannot take parameters (COPY)."""
    q = matching_sql(definition, ctx)
    pieces = q.sql.split("%s")
    assert len(pieces) == len(q.params) + 1
    parts: list[sql.Composable] = [sql.SQL(pieces[0])]
    for value, piece in zip(q.params, pieces[1:], strict=True):
        parts += [sql.Literal(value), sql.SQL(piece)]
    return sql.Composed(parts)


def count(account: Account, definition: object, *, now: dt.datetime | None = None) -> int:
    clean, ctx = checked(account, definition, now=now)
    q = matching_sql(clean, ctx, select="count(*)")
    with connection.cursor() as cursor:
        cursor.execute(q.sql, q.params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def problem(segment: Segment) -> str:
    """What stops the segment being used now ("" when nothing): a condition that names an
    attribute, list, tag or campaign deleted since it was saved, for one."""
    try:
        checked(segment.account, segment.definition)
    except Invalid as invalid:
        where, message = next(iter(invalid.errors.items()))
        return f"The segment “{segment.name}” cannot be used: {message} (at {where})"
    return ""
