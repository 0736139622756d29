"""A contact deleted by a set-based statement (contacts.services.delete_contact_rows) leaves
its deliveries in place, counted and linked to no one, by the foreign key's own ON DELETE
SET NULL: contacts need not know about campaigns. The model says SET_NULL too; Django
5.2 does not declare it in the database, so this does."""

from django.db import migrations

from accounts.schema import replace_foreign_key


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_failure_time"),
        ("contacts", "0008_database_deletes"),
    ]

    operations = [
        migrations.RunSQL(
            replace_foreign_key("campaigns_delivery", "contact_id", "contacts_contact", "SET NULL"),
            reverse_sql=replace_foreign_key(
                "campaigns_delivery", "contact_id", "contacts_contact", "NO ACTION"
            ),
        ),
    ]
