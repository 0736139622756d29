"""The processor's duties in pages: closing an account (its export first, and reopening
before the data go); recipients' data requests (public pages, the emailed link is the
key) and the customer's log of them."""

from django.urls import path

from privacy.views import closure, contacts
from privacy.views import data_requests as views

# The acts on one customer's data, each a POST from the overview page.
ACTS = [
    ("show", views.your_data_show),
    ("download", views.your_data_download),
    ("correct", views.your_data_correct),
    ("unsubscribe", views.your_data_unsubscribe),
    ("object", views.your_data_object),
    ("erase", views.your_data_erase),
]

urlpatterns = [
    path("your-data/", views.your_data, name="your_data"),
    path(
        "your-data/erase/<str:token>/",
        views.your_data_erase_confirm,
        name="your_data_erase_confirm",
    ),
    path("your-data/<str:token>/", views.your_data_overview, name="your_data_overview"),
    *(
        path(f"your-data/<str:token>/<int:account_id>/{act}/", view, name=f"your_data_{act}")
        for act, view in ACTS
    ),
    path("data-requests/", views.data_requests_log, name="data_requests"),
    path("contacts/<int:contact_id>/erase/", contacts.contact_erase, name="contact_erase"),
    path("contacts/<int:contact_id>/export.json", contacts.contact_export, name="contact_export"),
    path("settings/export/", closure.account_export, name="account_export"),
    path("settings/close/", closure.account_close, name="account_close"),
    path("account/closed/", closure.account_closed, name="account_closed"),
    path("account/closed/<int:account_id>/reopen/", closure.account_reopen, name="account_reopen"),
    path(
        "account/closed/<int:account_id>/export/",
        closure.account_closed_export,
        name="account_closed_export",
    ),
]
