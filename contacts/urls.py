from django.urls import path

from contacts.views import attributes, contacts, exports, lists

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
    path("attributes/", attributes.attributes, name="attributes"),
]
