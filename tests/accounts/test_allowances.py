"""Hourly allowances slide: a use counts for the hour after it, not until the clock's
next hour, so a burst across the top of the hour is refused like any other."""

from __future__ import annotations

import time

import pytest

from accounts import allowances


def test_it_takes_uses_until_the_limit_and_says_what_is_left(db):
    assert allowances.take("probe", 1, count=3, limit=5) == 2
    assert allowances.take("probe", 1, count=2, limit=5) == 0

    with pytest.raises(allowances.AllowanceExceeded) as refused:
        allowances.take("probe", 1, count=1, limit=5)

    assert refused.value.left == 0
    assert 1 <= refused.value.retry_after <= allowances.WINDOW_SECONDS
    # and another account has its own
    assert allowances.take("probe", 2, count=5, limit=5) == 0


def test_a_refusal_takes_nothing(db):
    allowances.take("probe", 1, count=4, limit=5)

    with pytest.raises(allowances.AllowanceExceeded) as refused:
        allowances.take("probe", 1, count=2, limit=5)

    assert refused.value.left == 1
    assert allowances.take("probe", 1, count=1, limit=5) == 0


def test_uses_leave_the_window_one_by_one(db, monkeypatch):
    # given a window of two seconds, one use at the start and one a second later
    monkeypatch.setattr(allowances, "WINDOW_SECONDS", 2)
    allowances.take("probe", 1, count=1, limit=2)
    time.sleep(1)
    allowances.take("probe", 1, count=1, limit=2)
    with pytest.raises(allowances.AllowanceExceeded):
        allowances.take("probe", 1, count=1, limit=2)

    # when the first use is more than a window old
    time.sleep(1.2)

    # then one more fits, the second use still counting: the window slid by one use
    assert allowances.take("probe", 1, count=1, limit=2) == 0
    with pytest.raises(allowances.AllowanceExceeded):
        allowances.take("probe", 1, count=1, limit=2)
