from django.apps import AppConfig


class DomainsConfig(AppConfig):
    """Sending domains: the domains an account proved it owns by DNS, their DKIM keys, the
    checks of their SPF, DKIM and DMARC records, and how fast each may send."""

    name = "domains"
