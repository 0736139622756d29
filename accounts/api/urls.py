from django.urls import path

from accounts.api.views import AccountView, MemberListView

urlpatterns = [
    path("account/", AccountView.as_view(), name="api-account"),
    path("account/members/", MemberListView.as_view(), name="api-members"),
]
