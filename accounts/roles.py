"""Who may do what inside an account: the one table every permission check reads.

Roles are ordered (owner > admin > editor > viewer). A view, an API endpoint or a
service asks ``role_can(role, Perm.X)``; nothing else decides.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Perm(StrEnum):
    VIEW = "view"  # see lists, contacts, campaigns and statistics
    EDIT_CONTENT = "edit_content"  # contacts, lists, imports, templates, campaign drafts
    SEND = "send"  # start, schedule, pause and cancel campaigns
    EXPORT = "export"  # download contacts and reports
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    MANAGE_API_KEYS = "manage_api_keys"
    MANAGE_ACCOUNT = "manage_account"  # name, postal address, sender defaults, security rules
    VIEW_SECURITY = "view_security"  # failed logins, two-factor status of members
    CLOSE_ACCOUNT = "close_account"


PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.VIEWER: frozenset({Perm.VIEW}),
    Role.EDITOR: frozenset({Perm.VIEW, Perm.EDIT_CONTENT, Perm.SEND, Perm.EXPORT}),
    Role.ADMIN: frozenset(
        {
            Perm.VIEW,
            Perm.EDIT_CONTENT,
            Perm.SEND,
            Perm.EXPORT,
            Perm.MANAGE_MEMBERS,
            Perm.MANAGE_API_KEYS,
            Perm.MANAGE_ACCOUNT,
            Perm.VIEW_SECURITY,
        }
    ),
    Role.OWNER: frozenset(Perm),
}

RANK: dict[str, int] = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}

DESCRIPTIONS: dict[str, str] = {
    Role.OWNER: "Everything, including security rules and closing the account.",
    Role.ADMIN: "Everything but closing the account: members, API keys, settings.",
    Role.EDITOR: "Contacts, lists and campaigns: write, import, export and send.",
    Role.VIEWER: "Read-only: lists, campaigns and statistics.",
}


def role_can(role: str, perm: Perm) -> bool:
    return perm in PERMISSIONS.get(role, frozenset())


def can_grant(granter_role: str, role: str) -> bool:
    """A member may hand out roles up to their own; only an owner makes owners."""
    return role_can(granter_role, Perm.MANAGE_MEMBERS) and RANK[role] <= RANK[granter_role]
