"""The contacts' newest human open and click, from the events already recorded: from now
on campaigns.engagement stamps them as it records each one. On a large event table this
reads every open and click once; see README, Upgrading."""

from django.db import migrations

BACKFILL = """
UPDATE contacts_contact AS c
SET last_opened_at = x.opened, last_clicked_at = x.clicked
FROM (
    SELECT d.contact_id,
        max(e.occurred_at) FILTER (WHERE e.type = 'open') AS opened,
        max(e.occurred_at) FILTER (WHERE e.type = 'click') AS clicked
    FROM stats_event AS e
    JOIN campaigns_delivery AS d ON d.id = e.delivery_id
    WHERE e.type IN ('open', 'click') AND NOT e.machine AND e.delivery_id IS NOT NULL
        AND d.contact_id IS NOT NULL
    GROUP BY d.contact_id
) AS x
WHERE c.id = x.contact_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_campaign_segment"),
        ("contacts", "0009_tags_and_engagement_stamps"),
        ("events", "0001_initial"),
    ]

    operations = [migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop)]
