from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"

    def ready(self) -> None:
        from contacts import signals
        from journeys import receivers

        signals.subscribed.connect(receivers.nudge, dispatch_uid="journeys.subscribed")
        signals.tagged.connect(receivers.nudge, dispatch_uid="journeys.tagged")
