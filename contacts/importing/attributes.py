"""The attributes an import maps columns to. Those mapped to are locked FOR SHARE from
the moment the mapping is recorded until the import commits, so that a rename, a change
of type or a deletion waits for the import; those it declared for its own mapping are
removed again when it saves no contact.
"""

from __future__ import annotations

from django.db import transaction

from contacts.models import AttributeDefinition, Contact, ImportJob

UNFINISHED = (ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def lock_definitions(account_id: int, names: list[str]) -> dict[str, AttributeDefinition]:
    """The account's definitions of ``names``, by name, locked FOR SHARE until the end of
    the transaction: a rename, a change of type or a deletion (each of which moves or
    drops the contacts' values) waits for the import, and then applies to the contacts
    it added too; forget_declared passes them by. One renamed or deleted meanwhile is
    missing from the answer."""
    if not names:
        return {}
    definitions = AttributeDefinition.objects.raw(
        "SELECT * FROM contacts_attributedefinition WHERE account_id = %s AND name = ANY(%s) "
        "ORDER BY id FOR SHARE",
        [account_id, sorted(set(names))],
    )
    return {definition.name: definition for definition in definitions}


def forget_declared(job: ImportJob) -> None:
    """Remove the attributes this import declared for its mapping, when it saved nothing:
    otherwise the next upload would be mapped to them again. One still in use is kept:
    a contact holds a value of it meanwhile (set by hand, by another import), another
    import not finished maps a column to it, or one is being configured or run with it
    right now (it holds the definition locked, see lock_definitions)."""
    if not job.declared_attributes:
        return
    with transaction.atomic():
        # (SKIP LOCKED: a definition another transaction holds is in use, and waiting
        # for it could deadlock with an import that waits for this one)
        definitions = list(
            AttributeDefinition.objects.for_account(job.account)
            .filter(name__in=job.declared_attributes)
            .order_by("pk")
            .select_for_update(skip_locked=True)
        )
        if not definitions:
            return
        mapped = _mapped_by_unfinished(job)
        holders = Contact.objects.for_account(job.account)
        for definition in definitions:
            if definition.name in mapped:
                continue
            if not holders.filter(attributes__has_key=definition.name).exists():
                definition.delete()


def _mapped_by_unfinished(job: ImportJob) -> set[str]:
    """The attributes the account's other unfinished imports map a column to."""
    mappings = (
        ImportJob.objects.for_account(job.account)
        .filter(status__in=UNFINISHED)
        .exclude(pk=job.pk)
        .values_list("mapping", flat=True)
    )
    return {
        target.removeprefix("attribute:")
        for mapping in mappings
        for target in mapping.values()
        if target.startswith("attribute:")
    }
