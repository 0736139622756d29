import warnings

from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "stats"

    def ready(self) -> None:
        from anymail.exceptions import AnymailInsecureWebhookWarning, AnymailNotSupportedWarning
        from anymail.signals import tracking

        from contacts import activity
        from stats.selectors import contact_activity
        from stats.webhooks import receive_tracking

        tracking.connect(receive_tracking, dispatch_uid="missive.stats.tracking")
        # The contact page shows the recent events of the messages sent to the contact.
        activity.register(contact_activity)
        # Missive's guard answers 403 to an unauthenticated webhook instead of running it
        # (stats/webhooks.py), so anymail's warning about insecure webhooks never applies;
        # and its notice that SendGrid is no longer tested would repeat on every request.
        warnings.filterwarnings("ignore", category=AnymailInsecureWebhookWarning)
        warnings.filterwarnings("ignore", category=AnymailNotSupportedWarning)
