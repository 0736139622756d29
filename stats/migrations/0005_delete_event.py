"""The event model now lives in the events app (state only: its table stays)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0004_machine_reasons_and_deferrals"),
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(
            name="Event",
        ),
    ]
