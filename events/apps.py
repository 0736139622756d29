from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened to messages, as rows that know ids, not campaigns: the one place that
    writes them, the monthly partitions that hold them and their retention."""

    name = "events"
