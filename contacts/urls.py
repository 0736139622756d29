from django.urls import path

from contacts.views import attributes, contacts, exports, imports, lists, tags

urlpatterns = [
    path("lists/", lists.lists, name="lists"),
    path("lists/new/", lists.list_new, name="list_new"),
    path("lists/<int:list_id>/", lists.list_detail, name="list_detail"),
    path("lists/<int:list_id>/edit/", lists.list_edit, name="list_edit"),
    path("lists/<int:list_id>/delete/", lists.list_delete, name="list_delete"),
    path("lists/<int:list_id>/export.<str:fmt>", exports.export_list, name="list_export"),
    path("contacts/", contacts.contacts, name="contacts"),
    path("contacts/new/", contacts.contact_new, name="contact_new"),
    path("contacts/bulk/", contacts.contacts_bulk, name="contacts_bulk"),
    path("contacts/export.<str:fmt>", exports.export_all, name="contacts_export"),
    path("contacts/<int:contact_id>/", contacts.contact_detail, name="contact_detail"),
    path("contacts/<int:contact_id>/delete/", contacts.contact_delete, name="contact_delete"),
    path("contacts/<int:contact_id>/tags/", contacts.contact_tag, name="contact_tag"),
    path("contacts/tags/", tags.tags, name="tags"),
    path("contacts/tags/<int:tag_id>/", tags.tag_detail, name="tag_detail"),
    path("contacts/tags/<int:tag_id>/delete/", tags.tag_delete, name="tag_delete"),
    path("attributes/", attributes.attributes, name="attributes"),
    path(
        "attributes/<int:attribute_id>/rename/",
        attributes.attribute_rename,
        name="attribute_rename",
    ),
    path(
        "attributes/<int:attribute_id>/type/", attributes.attribute_retype, name="attribute_retype"
    ),
    path(
        "attributes/<int:attribute_id>/delete/",
        attributes.attribute_delete,
        name="attribute_delete",
    ),
    path("lists/<int:list_id>/import/", imports.import_upload, name="import_upload"),
    path("imports/", imports.imports, name="imports"),
    path("imports/<int:import_id>/", imports.import_detail, name="import_detail"),
    path("imports/<int:import_id>/progress/", imports.import_progress, name="import_progress"),
    path("imports/<int:import_id>/cancel/", imports.import_cancel, name="import_cancel"),
    path("imports/<int:import_id>/rejects.csv", imports.import_rejects, name="import_rejects"),
    path("imports/<int:import_id>/warnings.csv", imports.import_warnings, name="import_warnings"),
]
