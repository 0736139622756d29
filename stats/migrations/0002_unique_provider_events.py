"""A provider event delivered twice is stored once: its id and its own timestamp (the
partition key, which a unique index on a partitioned table must include) are unique."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            "DROP INDEX stats_event_dedup; "
            "CREATE UNIQUE INDEX stats_event_dedup ON stats_event (dedup_key, occurred_at) "
            "WHERE dedup_key IS NOT NULL",
            reverse_sql="DROP INDEX stats_event_dedup; "
            "CREATE INDEX stats_event_dedup ON stats_event (dedup_key) WHERE dedup_key IS NOT NULL",
        ),
    ]
