"""Recipients' data requests: the public pages (no login, the emailed link is the key)
and the customer's log of them."""

from django.urls import path

from contacts.views import data_requests as views

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
]
