"""Why opens and clicks were judged machines' (MachineStats), and the receiving servers'
deferrals for the sender's sake (CampaignStats.deferred), kept by the roll-up."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_retention"),
        ("campaigns", "0004_failure_time"),
        ("stats", "0003_report_counters"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaignstats",
            name="deferred",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.CreateModel(
            name="MachineStats",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("reason", models.CharField(blank=True, max_length=32)),
                ("opens", models.BigIntegerField(db_default=0, default=0)),
                ("clicks", models.BigIntegerField(db_default=0, default=0)),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.account",
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="campaigns.campaign",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "machine stats",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign", "reason"), name="machine_stats_unique"
                    )
                ],
            },
        ),
    ]
