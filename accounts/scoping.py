"""The one path to customer data: every query starts from ``for_account(account)``.

Models that belong to an account use ``AccountScopedManager`` (or a manager built from
``AccountScopedQuerySet``). Views and API endpoints fetch single objects with
``get_for_account_or_404``, which answers 404 for "missing" and "not yours" alike, so an
outsider learns nothing. The tenancy sweep in tests/test_tenancy.py proves it for every
URL of the project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from accounts.models import Account

M = TypeVar("M", bound=models.Model)


class AccountScopedQuerySet(models.QuerySet[M]):
    #: The lookup from this model to its Account, e.g. "account" or "campaign__account".
    account_path = "account"

    def for_account(self, account: Account) -> Self:
        if account is None or account.pk is None:
            return self.none()
        return self.filter(**{self.account_path: account})


# The default manager of every model that belongs to an account.
AccountScopedManager = models.Manager.from_queryset(
    AccountScopedQuerySet, class_name="AccountScopedManager"
)


def account_queryset(model: type[M], account: Account) -> AccountScopedQuerySet[M]:
    """The rows of ``model`` that belong to ``account``, for code that is handed a model."""
    queryset = model._default_manager.all()
    if not isinstance(queryset, AccountScopedQuerySet):
        raise TypeError(f"{model._meta.label} does not belong to an account.")
    return queryset.for_account(account)


def get_for_account_or_404(model: type[M], account: Account, **lookup: Any) -> M:
    """One object of ``account``, or 404 whether it is missing or belongs to another."""
    queryset = account_queryset(model, account)
    try:
        return queryset.get(**lookup)
    except (ObjectDoesNotExist, ValueError, TypeError):
        raise Http404(f"No {model._meta.verbose_name} found.") from None
