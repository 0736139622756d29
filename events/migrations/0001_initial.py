"""The event model moves here from stats; its table (stats_event, range-partitioned by
month) stays where stats' first migration created it. State only: the model is unmanaged."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("stats", "0004_machine_reasons_and_deferrals"),
    ]

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("campaign_id", models.BigIntegerField(blank=True, null=True)),
                ("delivery_id", models.BigIntegerField(blank=True, null=True)),
                ("link_id", models.BigIntegerField(blank=True, null=True)),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("sent", "Sent"),
                            ("delivered", "Delivered"),
                            ("deferred", "Deferred"),
                            ("bounce", "Bounce"),
                            ("complaint", "Complaint"),
                            ("unsubscribe", "Unsubscribe"),
                            ("open", "Open"),
                            ("click", "Click"),
                            ("rejected", "Rejected"),
                            ("failed", "Failed"),
                        ],
                        max_length=12,
                    ),
                ),
                ("occurred_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("machine", models.BooleanField(default=False)),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("dedup_key", models.CharField(blank=True, max_length=200, null=True)),
            ],
            options={
                "db_table": "stats_event",
                "ordering": ["-occurred_at"],
                "managed": False,
            },
        ),
    ]
