from django.urls import path

from accounts import views
from accounts.views import api_keys, outbox, security, team

urlpatterns = [
    path("account/new/", views.account_new, name="account_new"),
    path("account/switch/<int:account_id>/", views.account_switch, name="account_switch"),
    path("settings/", views.account_settings, name="account_settings"),
    path("settings/security/", security.security, name="security"),
    path("team/", team.members, name="members"),
    path("team/invite/", team.member_invite, name="member_invite"),
    path("team/members/<int:membership_id>/role/", team.member_role, name="member_role"),
    path("team/members/<int:membership_id>/remove/", team.member_remove, name="member_remove"),
    path(
        "team/invitations/<int:invitation_id>/cancel/",
        team.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "team/invitations/<int:invitation_id>/resend/",
        team.invitation_resend,
        name="invitation_resend",
    ),
    path("invitations/<str:token>/", team.invitation_accept, name="invitation_accept"),
    path("settings/api-keys/", api_keys.api_keys, name="api_keys"),
    path(
        "settings/api-keys/<int:api_key_id>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"
    ),
    path("staff/outbox/", outbox.outbox_list, name="outbox"),
    path("staff/outbox/clear/", outbox.outbox_clear, name="outbox_clear"),
    path("staff/outbox/<str:message_id>/", outbox.outbox_detail, name="outbox_detail"),
    path("staff/outbox/<str:message_id>/html/", outbox.outbox_html, name="outbox_html"),
]
