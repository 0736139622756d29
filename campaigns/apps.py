from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import audience_fields
        from campaigns.attribute_tags import campaigns_rename_tag, campaigns_using
        from contacts import merge_tags

        # Contacts cannot import campaigns: its attribute screens ask through this hook.
        merge_tags.register(find=campaigns_using, rename=campaigns_rename_tag)
        # Segments read deliveries and their events through the fields registered here.
        audience_fields.register_all()
