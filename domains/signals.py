"""What the domains app tells the apps above it, which it cannot import. Sent inside the
writing transaction; receivers act once it commits (``transaction.on_commit``)."""

from __future__ import annotations

from django.dispatch import Signal

# domain_id: int. The domain's warm-up was turned off or its daily caps changed, so what
# it held until its next local midnight may go today.
warmup_changed = Signal()
