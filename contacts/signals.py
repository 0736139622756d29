"""What the contacts app tells the apps above it, which it cannot import: a contact was
subscribed to a list (confirmed, for double opt-in) or given a tag. Sent inside the
writing transaction; receivers act once it commits (``transaction.on_commit``)."""

from __future__ import annotations

from django.dispatch import Signal

# account_id: int, list_id: int, contact_ids: list[int]
subscribed = Signal()
# account_id: int, tag_id: int, contact_ids: list[int] | None (None: too many to list)
tagged = Signal()
