"""Deleting a contact is one statement in the database's hands: its subscriptions go with
it and the rows that only point at it (data-request log entries) keep their place, by the
foreign keys' own ON DELETE, so set-based deletes need not know who points at a contact.
The models say the same (CASCADE, SET_NULL); Django 5.2 does not declare it in the
database, so these statements do. tests/contacts/test_deleting.py checks it stays so."""

from django.db import migrations

from accounts.schema import replace_foreign_key


class Migration(migrations.Migration):
    dependencies = [("contacts", "0007_names_single_line")]

    operations = [
        migrations.RunSQL(
            replace_foreign_key(
                "contacts_subscription", "contact_id", "contacts_contact", "CASCADE"
            ),
            reverse_sql=replace_foreign_key(
                "contacts_subscription", "contact_id", "contacts_contact", "NO ACTION"
            ),
        ),
        migrations.RunSQL(
            replace_foreign_key(
                "contacts_datarequest", "contact_id", "contacts_contact", "SET NULL"
            ),
            reverse_sql=replace_foreign_key(
                "contacts_datarequest", "contact_id", "contacts_contact", "NO ACTION"
            ),
        ),
    ]
