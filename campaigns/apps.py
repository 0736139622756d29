from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import audience_fields, receivers
        from campaigns.attribute_tags import campaigns_rename_tag, campaigns_using
        from contacts import merge_tags
        from domains import signals

        # Contacts cannot import campaigns: its attribute screens ask through this hook.
        merge_tags.register(find=campaigns_using, rename=campaigns_rename_tag)
        # Segments read deliveries and their events through the fields registered here.
        audience_fields.register_all()
        # A warm-up turned off or loosened releases what it held until midnight.
        signals.warmup_changed.connect(
            receivers.release_warmup_hold, dispatch_uid="campaigns.warmup_changed"
        )
