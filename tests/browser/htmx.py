"""Waiting for htmx in browser tests.

htmx swaps new content in at once but wires its ``hx-*`` attributes only when the swap
settles (20 ms later, by ``setTimeout``). A test that picks an option in that window
changes a select htmx does not listen to yet, and the request it expects never goes.
Playwright's ``networkidle`` does not help: it is a page-load state, reached once.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def settled(page: Page) -> None:
    """Wait until no htmx request is in flight and the last swap has been wired up."""
    expect(page.locator(BUSY)).to_have_count(0)
