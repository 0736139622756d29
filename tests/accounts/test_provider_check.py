"""Missive says at start when the provider it is set to send through lacks its library."""

from __future__ import annotations

import sys

from accounts.checks import provider_library_installed


def test_it_names_the_extra_to_install_when_the_providers_library_is_missing(settings, monkeypatch):
    settings.EMAIL_ESP = "amazon_ses"
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if boto3 were not installed
    monkeypatch.delitem(sys.modules, "anymail.backends.amazon_ses", raising=False)

    [error] = provider_library_installed()

    assert error.id == "missive.E003"
    assert "EMAIL_ESP=amazon_ses" in error.msg
    assert error.hint == "pip install 'missive[amazon-ses]'"


def test_it_says_nothing_when_the_provider_can_be_loaded(settings):
    settings.EMAIL_ESP = "postmark"
    assert provider_library_installed() == []
    settings.EMAIL_ESP = ""
    assert provider_library_installed() == []
