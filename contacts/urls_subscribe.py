from django.urls import path

from contacts.views import subscribe

urlpatterns = [
    # Public: opened by the list's signed form key, or by a signed confirmation token.
    path("subscribe/<str:form_key>/", subscribe.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", subscribe.subscribe_confirm, name="subscribe_confirm"),
    path("lists/<int:list_id>/form/", subscribe.list_form, name="list_form"),
]
