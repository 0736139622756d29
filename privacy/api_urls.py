from django.urls import path

from privacy import api as views

urlpatterns = [
    path(
        "contacts/<int:contact_id>/erase/",
        views.ContactEraseView.as_view(),
        name="api-contact-erase",
    ),
    path(
        "contacts/<int:contact_id>/export/",
        views.ContactDataExportView.as_view(),
        name="api-contact-export",
    ),
]
