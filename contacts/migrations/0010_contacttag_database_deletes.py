"""A tag goes with its contact, and with its tag, in the database's hands: the set-based
deletes of contacts (contacts.services.delete_contact_rows, the purge of a closed
account) remove contacts by statement, without knowing what points at them. The model
says CASCADE; Django 5.2 does not declare it in the database, so these statements do."""

from django.db import migrations

from accounts.schema import replace_foreign_key


class Migration(migrations.Migration):
    dependencies = [("contacts", "0009_tags_and_engagement_stamps")]

    operations = [
        migrations.RunSQL(
            replace_foreign_key("contacts_contacttag", "contact_id", "contacts_contact", "CASCADE"),
            reverse_sql=replace_foreign_key(
                "contacts_contacttag", "contact_id", "contacts_contact", "NO ACTION"
            ),
        ),
        migrations.RunSQL(
            replace_foreign_key("contacts_contacttag", "tag_id", "contacts_tag", "CASCADE"),
            reverse_sql=replace_foreign_key(
                "contacts_contacttag", "tag_id", "contacts_tag", "NO ACTION"
            ),
        ),
    ]
