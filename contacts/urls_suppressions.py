from django.urls import path

from contacts.views import do_not_contact, suppressions

urlpatterns = [
    path("suppressions/", suppressions.suppressions, name="suppressions"),
    path("suppressions/add/", suppressions.suppressions_add, name="suppressions_add"),
    path("suppressions/import/", suppressions.suppressions_import, name="suppressions_import"),
    path("suppressions/check/", suppressions.suppressions_check, name="suppressions_check"),
    path("suppressions/export.csv", suppressions.suppressions_export, name="suppressions_export"),
    path(
        "suppressions/<int:suppression_id>/remove/",
        suppressions.suppression_remove,
        name="suppression_remove",
    ),
    path("do-not-contact/", do_not_contact.do_not_contact, name="do_not_contact"),
    path(
        "do-not-contact/confirm/<str:token>/",
        do_not_contact.do_not_contact_confirm,
        name="do_not_contact_confirm",
    ),
]
