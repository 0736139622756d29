"""What journeys keep about a contact goes with the contact, in the database's hands: the
set-based deletes of contacts (contacts.services.delete_contact_rows: an erasure, the
inactivity purge, the purge of a closed account) remove contacts by statement, without
knowing what points at them. The models say CASCADE; Django 5.2 does not declare it in
the database, so these statements do."""

from django.db import migrations

from accounts.schema import replace_foreign_key

TABLES = ("journeys_enrollment", "journeys_contactevent", "journeys_segmentmember")


class Migration(migrations.Migration):
    dependencies = [("journeys", "0001_initial")]

    operations = [
        migrations.RunSQL(
            replace_foreign_key(table, "contact_id", "contacts_contact", "CASCADE"),
            reverse_sql=replace_foreign_key(table, "contact_id", "contacts_contact", "NO ACTION"),
        )
        for table in TABLES
    ]
