"""Counts read as English: one row, two rows."""

from __future__ import annotations

from types import SimpleNamespace

from django.template.loader import render_to_string


def _progress(rows: int) -> str:
    job = SimpleNamespace(pk=1, status="done", is_finished=True, get_status_display=lambda: "Done")
    progress = {"rows": rows, "percent": 100, "rate": None, "seconds_left": None}
    return render_to_string(
        "contacts/_import_progress.html",
        {"job": job, "progress": progress, "perms_in_account": set()},
    )


def test_it_says_one_row_read_and_two_rows_read():
    # Given imports that read one row, and two
    # When their progress is shown
    one, two = _progress(1), _progress(2)

    # Then the noun agrees with the count
    assert "1 row read" in one
    assert "1 rows read" not in one
    assert "2 rows read" in two
