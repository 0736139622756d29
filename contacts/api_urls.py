"""The contacts endpoints of the API, under /api/v1/. Keywords are named after what they
point to (list_id, contact_id, suppression_id) so the tenancy sweep can fill them."""

from django.urls import path

from contacts.api import (
    attributes,
    contacts,
    exports,
    imports,
    lists,
    subscriptions,
    suppressions,
    tags,
)

urlpatterns = [
    path("tags/", tags.TagsView.as_view(), name="api-tags"),
    path("tags/<int:tag_id>/", tags.TagView.as_view(), name="api-tag"),
    path("tags/<int:tag_id>/add/", tags.TagAddView.as_view(), name="api-tag-add"),
    path("tags/<int:tag_id>/remove/", tags.TagRemoveView.as_view(), name="api-tag-remove"),
    path("lists/", lists.ContactListsView.as_view(), name="api-lists"),
    path("lists/<int:list_id>/", lists.ContactListView.as_view(), name="api-list"),
    path(
        "lists/<int:list_id>/subscriptions/",
        subscriptions.ListSubscribeView.as_view(),
        name="api-list-subscribe",
    ),
    path(
        "lists/<int:list_id>/subscriptions/unsubscribe/",
        subscriptions.ListUnsubscribeView.as_view(),
        name="api-list-unsubscribe",
    ),
    path(
        "lists/<int:list_id>/export.<str:fmt>",
        exports.ListExportView.as_view(),
        name="api-list-export",
    ),
    path("contacts/", contacts.ContactsView.as_view(), name="api-contacts"),
    path("contacts/upsert/", contacts.ContactUpsertView.as_view(), name="api-contacts-upsert"),
    path(
        "contacts/export.<str:fmt>",
        exports.ContactsExportView.as_view(),
        name="api-contacts-export",
    ),
    path("contacts/<int:contact_id>/", contacts.ContactView.as_view(), name="api-contact"),
    path("attributes/", attributes.AttributesView.as_view(), name="api-attributes"),
    path(
        "attributes/<int:attribute_id>/",
        attributes.AttributeView.as_view(),
        name="api-attribute",
    ),
    path("suppressions/", suppressions.SuppressionsView.as_view(), name="api-suppressions"),
    path(
        "suppressions/<int:suppression_id>/",
        suppressions.SuppressionView.as_view(),
        name="api-suppression",
    ),
    path(
        "lists/<int:list_id>/imports/",
        imports.ListImportsView.as_view(),
        name="api-list-imports",
    ),
    path("imports/", imports.ImportsView.as_view(), name="api-imports"),
    path("imports/<int:import_id>/", imports.ImportView.as_view(), name="api-import"),
    path(
        "imports/<int:import_id>/start/",
        imports.ImportStartView.as_view(),
        name="api-import-start",
    ),
    path(
        "imports/<int:import_id>/cancel/",
        imports.ImportCancelView.as_view(),
        name="api-import-cancel",
    ),
    path(
        "imports/<int:import_id>/rejects/",
        imports.ImportRejectsView.as_view(),
        name="api-import-rejects",
    ),
    path(
        "imports/<int:import_id>/warnings/",
        imports.ImportWarningsView.as_view(),
        name="api-import-warnings",
    ),
    path(
        "imports/<int:import_id>/rejects.csv",
        imports.ImportRejectsCsvView.as_view(),
        name="api-import-rejects-csv",
    ),
]
