"""The report counters kept by the roll-up (stats/rollup.py), and where it stands."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_retention"),
        ("campaigns", "0004_failure_time"),
        ("stats", "0002_unique_provider_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupState",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("last_event_id", models.BigIntegerField(default=0)),
                ("as_of", models.DateTimeField(blank=True, null=True)),
                ("pending_event_id", models.BigIntegerField(blank=True, null=True)),
                ("pending_as_of", models.DateTimeField(blank=True, null=True)),
                ("pending_writers", models.JSONField(blank=True, default=list)),
                ("ran_at", models.DateTimeField(blank=True, null=True)),
                ("last_run_events", models.PositiveIntegerField(default=0)),
                ("last_run_seconds", models.FloatField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="CampaignStats",
            fields=[
                (
                    "campaign",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="campaigns.campaign",
                    ),
                ),
                ("sent", models.BigIntegerField(db_default=0, default=0)),
                ("delivered", models.BigIntegerField(db_default=0, default=0)),
                ("opens", models.BigIntegerField(db_default=0, default=0)),
                ("machine_opens", models.BigIntegerField(db_default=0, default=0)),
                ("opens_unique", models.BigIntegerField(db_default=0, default=0)),
                ("opens_unique_all", models.BigIntegerField(db_default=0, default=0)),
                ("clicks", models.BigIntegerField(db_default=0, default=0)),
                ("machine_clicks", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique_all", models.BigIntegerField(db_default=0, default=0)),
                ("anonymous_opens", models.BigIntegerField(db_default=0, default=0)),
                ("anonymous_clicks", models.BigIntegerField(db_default=0, default=0)),
                ("bounced", models.BigIntegerField(db_default=0, default=0)),
                ("bounced_hard", models.BigIntegerField(db_default=0, default=0)),
                ("bounced_soft", models.BigIntegerField(db_default=0, default=0)),
                ("bounced_other", models.BigIntegerField(db_default=0, default=0)),
                ("complaints", models.BigIntegerField(db_default=0, default=0)),
                ("unsubscribes", models.BigIntegerField(db_default=0, default=0)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.account",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "campaign stats",
            },
        ),
        migrations.CreateModel(
            name="LinkStats",
            fields=[
                (
                    "link",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="campaigns.link",
                    ),
                ),
                ("clicks", models.BigIntegerField(db_default=0, default=0)),
                ("machine_clicks", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique_all", models.BigIntegerField(db_default=0, default=0)),
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
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="campaigns.campaign",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "link stats",
            },
        ),
        migrations.CreateModel(
            name="DomainStats",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("domain", models.CharField(blank=True, max_length=255)),
                ("sent", models.BigIntegerField(db_default=0, default=0)),
                ("delivered", models.BigIntegerField(db_default=0, default=0)),
                ("opens_unique", models.BigIntegerField(db_default=0, default=0)),
                ("opens_unique_all", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique", models.BigIntegerField(db_default=0, default=0)),
                ("clicks_unique_all", models.BigIntegerField(db_default=0, default=0)),
                ("bounced", models.BigIntegerField(db_default=0, default=0)),
                ("bounced_hard", models.BigIntegerField(db_default=0, default=0)),
                ("bounced_soft", models.BigIntegerField(db_default=0, default=0)),
                ("complaints", models.BigIntegerField(db_default=0, default=0)),
                ("unsubscribes", models.BigIntegerField(db_default=0, default=0)),
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
                "verbose_name_plural": "domain stats",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign", "domain"), name="domain_stats_unique"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="HourlyStats",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("hour", models.DateTimeField()),
                ("opens", models.BigIntegerField(db_default=0, default=0)),
                ("machine_opens", models.BigIntegerField(db_default=0, default=0)),
                ("clicks", models.BigIntegerField(db_default=0, default=0)),
                ("machine_clicks", models.BigIntegerField(db_default=0, default=0)),
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
                "verbose_name_plural": "hourly stats",
                "constraints": [
                    models.UniqueConstraint(fields=("campaign", "hour"), name="hourly_stats_unique")
                ],
            },
        ),
    ]
