"""A static list made from contacts chosen elsewhere (a segment): each gets a subscription
to the new list that carries the consent proof of one of their current subscriptions, so
the list can be mailed with the same lawful basis and shown as such."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import audit_log
from contacts.models import Contact, ContactList, Subscription

_COPY_SQL = """
INSERT INTO contacts_subscription (
    contact_id, contact_list_id, status, source, legal_basis, consent_at, consent_ip,
    consent_user_agent, consent_text, confirmed_at, created_at, updated_at)
SELECT DISTINCT ON (s.contact_id) s.contact_id, %s, %s, s.source, s.legal_basis,
    s.consent_at, s.consent_ip, s.consent_user_agent, s.consent_text, s.confirmed_at, %s, %s
FROM contacts_subscription AS s
JOIN contacts_contactlist AS l ON l.id = s.contact_list_id
WHERE l.account_id = %s AND s.status = %s AND s.contact_list_id <> %s
    AND s.contact_id IN ({contacts})
ORDER BY s.contact_id, s.consent_at DESC NULLS LAST, s.id
ON CONFLICT (contact_list_id, contact_id) DO NOTHING
"""


@transaction.atomic
def subscribe_copying_consent(
    *,
    account: Account,
    actor: User | None,
    contact_list: ContactList,
    contacts: QuerySet[Contact],
    origin: str,
) -> int:
    """Subscribe to ``contact_list`` those of ``contacts`` who are subscribed to another
    list of the account, with that subscription's consent proof (the newest one when
    several). Unsubscribed and unconfirmed people are not added. How many were added."""
    assert contact_list.account_id == account.pk
    chosen_sql, chosen_params = contacts.values("pk").query.sql_with_params()
    now = timezone.now()
    subscribed = Subscription.Status.SUBSCRIBED.value
    with connection.cursor() as cursor:
        cursor.execute(
            _COPY_SQL.replace("{contacts}", chosen_sql),
            [
                *(contact_list.pk, subscribed, now, now),
                *(account.pk, subscribed, contact_list.pk),
                *chosen_params,
            ],
        )
        added = cursor.rowcount
    audit_log(
        account=account,
        actor=actor,
        action="list.filled",
        list=contact_list.name,
        added=added,
        origin=origin,
    )
    return added
