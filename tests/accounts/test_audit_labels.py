"""The activity log in words: every action Missive records has a plain phrase, and the
details read as text."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from accounts.models import AUDIT_LABELS, AuditEntry

ROOT = Path(__file__).resolve().parents[2]
APPS = (*settings.MISSIVE_APPS, "config")
ACTION = re.compile(r"""action=["']([a-z_]+\.[a-z_]+)["']""")


def _codes_in_the_code() -> set[str]:
    codes: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            codes.update(ACTION.findall(path.read_text(encoding="utf-8")))
    return codes


def test_it_has_a_label_for_every_action_code_used_in_the_code():
    # Given every action code the services record
    codes = _codes_in_the_code()
    assert "campaign.updated" in codes  # the scan does find them

    # Then each has a plain phrase for the activity log
    assert sorted(codes - AUDIT_LABELS.keys()) == []


def test_it_shows_labels_and_list_details_as_text_on_the_security_page(alice_client, world):
    # Given an attribute rename and a campaign edit in account A's log
    AuditEntry.objects.create(
        account=world.account_a, actor=world.alice, action="attribute.renamed", detail={}
    )
    AuditEntry.objects.create(
        account=world.account_a,
        actor=world.alice,
        action="campaign.updated",
        detail={"fields": ["from_email", "subject"]},
    )

    # When alice opens the security page
    page = alice_client.get("/settings/security/").content.decode()

    # Then the actions read as phrases and the list as comma-separated text
    assert "renamed a contact attribute" in page
    assert "attribute.renamed" not in page
    assert "from_email, subject" in page
    assert "[&#x27;from_email&#x27;" not in page
    assert "['from_email'" not in page
