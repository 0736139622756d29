"""The roll-up: new events folded into the report counters (CampaignStats, LinkStats,
HourlyStats, DomainStats, MachineStats in stats/models.py), so that a report reads a few
aggregate rows whatever the size of its campaign.

Why periodic, not counters bumped with each event: every open of a campaign would update
the same counter row, and at the peak of a send the pixel endpoint's requests would queue
on that row's lock; the public endpoints stay one cheap INSERT each. Beat runs the roll-up
every 10 seconds and a run takes a fraction of a second (figures below), so reports are
at most about 10 seconds behind (the target is under a minute), and the page says how
fresh they are (``RollupState.as_of``).

What is new: events whose id is above the watermark (``RollupState.last_event_id``). Ids
come from one sequence, but an id is drawn when an INSERT runs and becomes visible when
its transaction commits, so a plain "everything above the watermark" could step over an
event whose transaction commits a moment later, and never count it. So a run

1. reads the sequence's high-water mark H (every id drawn so far is at most H);
2. lists the transactions writing to the event table at that moment, from pg_locks (an
   INSERT holds ROW EXCLUSIVE on the table from before it draws its id until its
   transaction ends, and pg_locks is readable by any role);
3. waits for those transactions to end: they are single inserts and send batches,
   gone in milliseconds;
4. then every id up to H is visible or will never exist (rolled back), and the events in
   (watermark, H] are counted in one statement (a backlog in slices), in the
   transaction that moves the watermark to H.

If a writer is still at work after a short wait, H is remembered as *pending* with its
writers, and counted by a later run once they have ended, so a slow transaction delays
the counters without ever losing an event.

Exactly once: the state row is locked (FOR UPDATE SKIP LOCKED) for the whole run, so a
second run at the same time does nothing; counters and watermark move in one
transaction, so a failed run moves neither and a repeated run finds nothing new.

Recipient counts (``*_unique``: people who opened, clicked a link, bounced hard…): each
event carries keys ("open", "open:all", "link" 42…); a recipient counts once per key, the
first time one of its events carries it: the batch's keys are made distinct per
delivery, and those already carried by the delivery's earlier events (found through the
event table's delivery index) are left out. Events without a delivery (anonymous counts)
only add to the totals.
Events of a deleted campaign are passed over. Counters do not go down when events are
later deleted (erasure, retention): they are counts, not personal data.

Measured by benchmarks/bench_report.py on the 2-core machine, beside a 1,000,000-recipient
campaign and its 3,000,000 events: the first run folds all of them in 22 s (136,000
events/s; one plain GROUP BY over them takes 2 s, on every view of a report without
counters); a run after 10,000 new events takes 0.2 s; runs every second while another
session inserts 4,900 events/s one by one (as the pixel endpoint does) take 0.1 s each,
none held back by a writer, the counters 0.12 s behind at most right after a run.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from events.models import Event
from stats.feedback import Outcome

WORK_MEM = "64MB"
SLICE = 5_000_000  # event ids folded by one statement

# -- what each event counts for ----------------------------------------------------------------

T = Event.Type


def _sql(*values: str) -> str:
    """Values of the models' choices (and keys made of them) as SQL string literals,
    comma-separated. The statements are built once, as text, from these constants: each
    is checked to be a plain word, which needs no escaping."""
    for value in values:
        if not re.fullmatch(r"[a-z_]+(?::[a-z_]*)?", value):
            raise ValueError(f"Not a plain word: {value!r}")
    return ", ".join(f"'{value}'" for value in values)


# The events reports count (and policy rejections, as bounces; and the receiving servers'
# deferrals for the sender's sake, as sending problems); the mailbox's own deferrals (the
# bounce they end in counts), the provider's other rejections and failures to send are
# not the report's.
_TYPES = (T.SENT, T.DELIVERED, T.BOUNCE, T.COMPLAINT, T.UNSUBSCRIBE, T.OPEN, T.CLICK)
_TYPE_LIST = _sql(*_TYPES)
# Kinds of a deferral, or of a failure after deferrals, that are the sender's problem
# (stats/feedback.py: deferred, policy; a soft one is the mailbox's).
_SENDER_KINDS = _sql(Outcome.DEFERRED, Outcome.POLICY)
# Bounces are counted by kind: hard, soft, and "other" for the rest (policy rejections,
# anything unclassified).
_BOUNCE_KINDS = _sql(Outcome.HARD_BOUNCE, Outcome.SOFT_BOUNCE)
_OTHER = "other"

# Recipient-count keys are named after the events carrying them: the type itself (for
# opens and clicks, people's; ":all" counts machines' too), "bounce:<kind>", or "link"
# and "link:all" for the clicks on one link.
_OPENED, _OPENED_ALL = T.OPEN, f"{T.OPEN}:all"
_CLICKED, _CLICKED_ALL = T.CLICK, f"{T.CLICK}:all"
_LINK, _LINK_ALL = "link", "link:all"

# Recipient-count keys as (key, link_id, which events carry it); link_id is 0 but for the
# per-link keys. An event may carry several: a person's click is a first click, a first
# click of anyone, and a first click on its link.
_KEYS = [
    (
        "type::text",
        "0",
        f"type IN ({_sql(T.SENT, T.DELIVERED, T.BOUNCE, T.COMPLAINT, T.UNSUBSCRIBE)})",
    ),
    (f"{_sql(f'{T.BOUNCE}:')} || kind", "0", f"type = {_sql(T.BOUNCE)}"),
    (_sql(T.DEFERRED), "0", f"type = {_sql(T.DEFERRED)}"),
    (_sql(_OPENED), "0", f"type = {_sql(T.OPEN)} AND NOT machine"),
    (_sql(_OPENED_ALL), "0", f"type = {_sql(T.OPEN)}"),
    (_sql(_CLICKED), "0", f"type = {_sql(T.CLICK)} AND NOT machine"),
    (_sql(_CLICKED_ALL), "0", f"type = {_sql(T.CLICK)}"),
    (_sql(_LINK), "link_id", f"type = {_sql(T.CLICK)} AND NOT machine AND link_id IS NOT NULL"),
    (_sql(_LINK_ALL), "link_id", f"type = {_sql(T.CLICK)} AND link_id IS NOT NULL"),
]


def _keys(events: str) -> str:
    """The recipient-count keys carried by the rows of ``events`` (a CTE with
    delivery_id, type, machine, link_id and kind), one row per event and key. A UNION
    of filtered scans: several times cheaper than a LATERAL list per event."""
    return "\n        UNION ALL ".join(
        f"SELECT campaign_id, account_id, delivery_id, {key} AS key, "  # noqa: S608 - constants
        f"{link}::bigint AS link_id FROM {events} WHERE delivery_id IS NOT NULL AND {where}"
        for key, link, where in _KEYS
    )


def _counted_type(e: str) -> str:
    """The event's type as reports count it: a policy rejection (the receiving server
    refused the message for the sender's reputation or content, stats/feedback.py) is a
    bounce, of kind "other"; the provider's other rejections are not counted. A message
    given up on after the sender's deferrals is a deferral."""
    return (
        f"(CASE WHEN {e}.type = {_sql(T.REJECTED)} THEN {_sql(T.BOUNCE)} "
        f"WHEN {e}.type = {_sql(T.FAILED)} THEN {_sql(T.DEFERRED)} ELSE {e}.type END)"
    )


def _counted(e: str) -> str:
    """Whether reports count event ``e``."""
    return (
        f"({e}.type IN ({_TYPE_LIST}) "
        f"OR ({e}.type = {_sql(T.REJECTED)} AND {e}.detail->>'kind' = {_sql(Outcome.POLICY)}) "
        f"OR ({e}.type IN ({_sql(T.DEFERRED, T.FAILED)}) "
        f"AND {e}.detail->>'kind' IN ({_SENDER_KINDS})))"
    )


def _bounce_kind(detail: str) -> str:
    # Provider feedback classifies bounces as hard, soft or policy; policy rejections and
    # anything unclassified are "other".
    return (
        f"(CASE WHEN {detail}->>'kind' IN ({_BOUNCE_KINDS}) THEN {detail}->>'kind' "
        f"ELSE {_sql(_OTHER)} END)"
    )


# Event totals (column: condition on a raw event).
_OPEN = f"type = {_sql(T.OPEN)} AND NOT machine"
_MACHINE_OPEN = f"type = {_sql(T.OPEN)} AND machine"
_CLICK = f"type = {_sql(T.CLICK)} AND NOT machine"
_MACHINE_CLICK = f"type = {_sql(T.CLICK)} AND machine"
_ACTIVITY_TOTALS = {
    "opens": _OPEN,
    "machine_opens": _MACHINE_OPEN,
    "clicks": _CLICK,
    "machine_clicks": _MACHINE_CLICK,
}
_CAMPAIGN_TOTALS = {
    **_ACTIVITY_TOTALS,
    "anonymous_opens": f"{_OPEN} AND delivery_id IS NULL",
    "anonymous_clicks": f"{_CLICK} AND delivery_id IS NULL",
}
# Recipient counts (column: key).
_CAMPAIGN_RECIPIENTS = {
    "sent": T.SENT,
    "delivered": T.DELIVERED,
    "opens_unique": _OPENED,
    "opens_unique_all": _OPENED_ALL,
    "clicks_unique": _CLICKED,
    "clicks_unique_all": _CLICKED_ALL,
    "bounced": T.BOUNCE,
    "bounced_hard": f"{T.BOUNCE}:{Outcome.HARD_BOUNCE}",
    "bounced_soft": f"{T.BOUNCE}:{Outcome.SOFT_BOUNCE}",
    "bounced_other": f"{T.BOUNCE}:{_OTHER}",
    "deferred": T.DEFERRED,
    "complaints": T.COMPLAINT,
    "unsubscribes": T.UNSUBSCRIBE,
}
_DOMAIN_RECIPIENTS = {
    column: key
    for column, key in _CAMPAIGN_RECIPIENTS.items()
    if column not in ("bounced_other", "deferred")
}
_LINK_RECIPIENTS = {"clicks_unique": _LINK, "clicks_unique_all": _LINK_ALL}


def _counts(columns: dict[str, str], *, of_keys: bool) -> str:
    return ",\n            ".join(
        f"count(*) FILTER (WHERE key = {_sql(condition)}) AS {column}"
        if of_keys
        else f"count(*) FILTER (WHERE {condition}) AS {column}"
        for column, condition in columns.items()
    )


def _upsert(table: str, conflict: str, columns: list[str], counters: list[str], select: str) -> str:
    """INSERT the rows of ``select`` (``columns`` then ``counters``), adding the counters
    to those of a row already there."""
    updates = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in counters)
    if "updated_at" in columns:
        updates += ", updated_at = EXCLUDED.updated_at"
    return f"""INSERT INTO {table} AS t ({", ".join([*columns, *counters])})
        {select}
        ON CONFLICT ({conflict}) DO UPDATE SET {updates}
        RETURNING 1"""


_CAMPAIGNS_UPSERT = _upsert(
    "stats_campaignstats",
    "campaign_id",
    ["campaign_id", "account_id", "updated_at"],
    [*_CAMPAIGN_TOTALS, *_CAMPAIGN_RECIPIENTS],
    f"""SELECT a.campaign_id, a.account_id, %(now)s,
            {", ".join(f"a.{c}" for c in _CAMPAIGN_TOTALS)},
            {", ".join(f"coalesce(u.{c}, 0)" for c in _CAMPAIGN_RECIPIENTS)}
        FROM (
            SELECT campaign_id, account_id, {_counts(_CAMPAIGN_TOTALS, of_keys=False)}
            FROM raw GROUP BY campaign_id, account_id
        ) AS a
        LEFT JOIN (
            SELECT campaign_id, {_counts(_CAMPAIGN_RECIPIENTS, of_keys=True)}
            FROM firsts GROUP BY campaign_id
        ) AS u USING (campaign_id)""",  # noqa: S608 - built from this module's constants
)
_LINKS_UPSERT = _upsert(
    "stats_linkstats",
    "link_id",
    ["link_id", "campaign_id", "account_id"],
    ["clicks", "machine_clicks", *_LINK_RECIPIENTS],
    f"""SELECT a.link_id, a.campaign_id, a.account_id, a.clicks, a.machine_clicks,
            {", ".join(f"coalesce(u.{c}, 0)" for c in _LINK_RECIPIENTS)}
        FROM (
            SELECT r.link_id, r.campaign_id, r.account_id,
                count(*) FILTER (WHERE NOT r.machine) AS clicks,
                count(*) FILTER (WHERE r.machine) AS machine_clicks
            FROM raw AS r
            JOIN campaigns_link AS l ON l.id = r.link_id AND l.campaign_id = r.campaign_id
            WHERE r.type = {_sql(T.CLICK)}
            GROUP BY r.link_id, r.campaign_id, r.account_id
        ) AS a
        LEFT JOIN (
            SELECT link_id, {_counts(_LINK_RECIPIENTS, of_keys=True)}
            FROM firsts WHERE key IN ({_sql(_LINK, _LINK_ALL)}) GROUP BY link_id
        ) AS u USING (link_id)""",  # noqa: S608 - built from this module's constants
)
_HOURS_UPSERT = _upsert(
    "stats_hourlystats",
    "campaign_id, hour",
    ["campaign_id", "account_id", "hour"],
    list(_ACTIVITY_TOTALS),
    f"""SELECT campaign_id, account_id, hour, {_counts(_ACTIVITY_TOTALS, of_keys=False)}
        FROM raw WHERE type IN ({_sql(T.OPEN, T.CLICK)})
        GROUP BY campaign_id, account_id, hour""",  # noqa: S608 - built from this module's constants
)
# Machines' opens and clicks by why they were judged so (events/machines.py).
_MACHINES_UPSERT = _upsert(
    "stats_machinestats",
    "campaign_id, reason",
    ["campaign_id", "account_id", "reason"],
    ["opens", "clicks"],
    f"""SELECT campaign_id, account_id, reason,
            count(*) FILTER (WHERE type = {_sql(T.OPEN)}) AS opens,
            count(*) FILTER (WHERE type = {_sql(T.CLICK)}) AS clicks
        FROM raw WHERE machine AND type IN ({_sql(T.OPEN, T.CLICK)})
        GROUP BY campaign_id, account_id, reason""",  # noqa: S608 - built from this module's constants
)
_DOMAIN_KEYS = _sql(*_DOMAIN_RECIPIENTS.values())
_DOMAINS_UPSERT = _upsert(
    "stats_domainstats",
    "campaign_id, domain",
    ["campaign_id", "account_id", "domain"],
    list(_DOMAIN_RECIPIENTS),
    f"""SELECT r.campaign_id, r.account_id,
            coalesce(left(lower(substring(ct.email FROM '@([^@]*)$')), 255), '') AS domain,
            {", ".join(f"sum(r.{c})" for c in _DOMAIN_RECIPIENTS)}
        FROM (
            SELECT campaign_id, account_id, delivery_id,
                {_counts(_DOMAIN_RECIPIENTS, of_keys=True)}
            FROM firsts WHERE key IN ({_DOMAIN_KEYS})
            GROUP BY campaign_id, account_id, delivery_id
        ) AS r
        LEFT JOIN campaigns_delivery AS d ON d.id = r.delivery_id
        LEFT JOIN contacts_contact AS ct ON ct.id = d.contact_id
        GROUP BY 1, 2, 3""",  # noqa: S608 - built from this module's constants
)

# One statement: the new events, the recipient-count keys they carry (once per
# recipient), those no earlier event of the recipient carried (firsts), then the five
# upserts (data-modifying CTEs run to completion whether read or not).
_FOLD_SQL = f"""
WITH raw AS MATERIALIZED (
    SELECT e.campaign_id, c.account_id, e.delivery_id, e.link_id, {_counted_type("e")} AS type,
           e.machine, date_trunc('hour', e.occurred_at, 'UTC') AS hour,
           {_bounce_kind("e.detail")} AS kind,
           CASE WHEN e.machine THEN coalesce(left(e.detail->>'machine_reason', 32), '')
           END AS reason
    FROM stats_event AS e
    JOIN campaigns_campaign AS c ON c.id = e.campaign_id
    WHERE e.id > %(after)s AND e.id <= %(upto)s AND {_counted("e")}
),
keys AS MATERIALIZED (
    SELECT DISTINCT campaign_id, account_id, delivery_id, key, link_id FROM (
        {_keys("raw")}
    ) AS k
),
earlier AS MATERIALIZED (
    SELECT p.campaign_id, 0 AS account_id, p.delivery_id, {_counted_type("p")} AS type,
           p.machine, p.link_id, {_bounce_kind("p.detail")} AS kind
    FROM stats_event AS p
    WHERE p.id <= %(after)s AND {_counted("p")}
      AND p.delivery_id IN (SELECT delivery_id FROM keys)
),
prior AS MATERIALIZED (
    SELECT DISTINCT delivery_id, key, link_id FROM (
        {_keys("earlier")}
    ) AS k
),
firsts AS MATERIALIZED (
    SELECT f.campaign_id, f.account_id, f.delivery_id, f.key, f.link_id
    FROM keys AS f
    WHERE NOT EXISTS (
        SELECT 1 FROM prior AS p
        WHERE p.delivery_id = f.delivery_id AND p.key = f.key AND p.link_id = f.link_id
    )
),
campaigns AS ({_CAMPAIGNS_UPSERT}),
links AS ({_LINKS_UPSERT}),
hours AS ({_HOURS_UPSERT}),
domains AS ({_DOMAINS_UPSERT}),
machine_reasons AS ({_MACHINES_UPSERT})
SELECT count(*) FROM raw
"""  # noqa: S608 - built from this module's constants, values are parameters

# -- which events are final --------------------------------------------------------------------

_HORIZON_SQL = """
SELECT clock_timestamp(),
       coalesce(pg_sequence_last_value(pg_get_serial_sequence('stats_event', 'id')::regclass), 0)
"""
# Transactions (by virtual id) of other sessions holding a write lock on the event table
# or one of its partitions, in this database.
_WRITERS_SQL = """
SELECT DISTINCT l.virtualtransaction FROM pg_locks AS l
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                 'AccessExclusiveLock')
  AND l.relation IN (
      SELECT 'stats_event'::regclass
      UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = 'stats_event'::regclass)
"""
# Of those transactions, the ones still running: each holds a lock on its own virtual id
# until it ends.
_ALIVE_SQL = """
SELECT DISTINCT virtualxid FROM pg_locks
WHERE locktype = 'virtualxid' AND virtualxid = ANY(%s)
"""


def _alive(cursor: CursorWrapper, writers: list[str]) -> list[str]:
    if not writers:
        return []
    cursor.execute(_ALIVE_SQL, [writers])
    return sorted(row[0] for row in cursor.fetchall())


def _wait_for_writers(
    cursor: CursorWrapper, writers: list[str], wait: float, poll: float
) -> list[str]:
    """The writers still at work after waiting up to ``wait`` seconds for them to end."""
    deadline = time.monotonic() + wait
    alive = _alive(cursor, writers)
    while alive and time.monotonic() < deadline:
        time.sleep(poll)
        alive = _alive(cursor, alive)
    return alive


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupRun:
    events: int  # events counted by this run
    last_event_id: int  # the watermark after the run
    as_of: datetime | None  # every event recorded before this instant is counted
    seconds: float
    skipped: bool = False  # another run was at work
    held_back: bool = False  # a writer was still at work: newer events wait for next run


_STATE_SQL = """
SELECT last_event_id, as_of, pending_event_id, pending_as_of, pending_writers
FROM stats_rollupstate WHERE id = 1 FOR UPDATE SKIP LOCKED
"""
_CREATE_STATE_SQL = """
INSERT INTO stats_rollupstate (id, last_event_id, pending_writers, last_run_events,
                               last_run_seconds)
VALUES (1, 0, '[]', 0, 0) ON CONFLICT (id) DO NOTHING
RETURNING last_event_id, as_of, pending_event_id, pending_as_of, pending_writers
"""
_SAVE_STATE_SQL = """
UPDATE stats_rollupstate SET last_event_id = %s, as_of = %s, pending_event_id = %s,
    pending_as_of = %s, pending_writers = %s::jsonb, ran_at = %s, last_run_events = %s,
    last_run_seconds = %s
WHERE id = 1
"""


def rollup(*, wait: float = 2.0, poll: float = 0.005) -> RollupRun:
    """Fold the events recorded since the last run into the report counters. Safe to run
    at any time, twice, or from two workers at once (see the module's docstring)."""
    started = time.monotonic()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(_STATE_SQL)
        state = cursor.fetchone()
        if state is None:
            cursor.execute(_CREATE_STATE_SQL)
            state = cursor.fetchone()
        if state is None:
            return RollupRun(
                events=0,
                last_event_id=0,
                as_of=None,
                seconds=time.monotonic() - started,
                skipped=True,
            )
        last, as_of, pending_id, pending_as_of, pending_writers = state
        # Django hands jsonb to raw queries as text.
        pending_writers = json.loads(pending_writers) if pending_writers else []

        cursor.execute(_HORIZON_SQL)
        now, high = cursor.fetchone()
        cursor.execute(_WRITERS_SQL)
        writers = _wait_for_writers(cursor, [row[0] for row in cursor.fetchall()], wait, poll)
        pending_alive = _alive(cursor, pending_writers) if pending_id is not None else []

        # The horizon to fold next time: (last event id, as of, writers still open then).
        pending: tuple[int | None, datetime | None, list[str]]
        if not writers:
            upto, as_of = high, now
            pending = (None, None, [])
        elif pending_id is not None and not pending_alive:
            # The horizon read by an earlier run is final now; this one is kept for later.
            upto, as_of = pending_id, pending_as_of
            pending = (high, now, writers)
        else:
            upto = last
            pending = (
                (pending_id, pending_as_of, pending_alive)
                if pending_id is not None
                else (high, now, writers)
            )
        upto = max(upto, last)

        events = 0
        if upto > last:
            # Room to sort and hash a batch in memory; this transaction only.
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # A backlog (after an outage, or the first run on old data) goes in slices, so
        # that no statement sorts more than a slice.
        for after in range(last, upto, SLICE):
            cursor.execute(
                _FOLD_SQL,
                {"after": after, "upto": min(after + SLICE, upto), "now": timezone.now()},
            )
            events += cursor.fetchone()[0]
        seconds = time.monotonic() - started
        cursor.execute(
            _SAVE_STATE_SQL,
            [
                upto,
                as_of,
                pending[0],
                pending[1],
                json.dumps(pending[2]),
                timezone.now(),
                events,
                seconds,
            ],
        )
    return RollupRun(
        events=events,
        last_event_id=upto,
        as_of=as_of,
        seconds=seconds,
        held_back=bool(writers),
    )
