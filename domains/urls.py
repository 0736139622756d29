from django.urls import path

from domains.views import manage

urlpatterns = [
    path("settings/domains/", manage.domains, name="domains"),
    path("settings/domains/<int:domain_id>/", manage.domain_detail, name="domain_detail"),
    path("settings/domains/<int:domain_id>/check/", manage.domain_check, name="domain_check"),
    path("settings/domains/<int:domain_id>/rotate/", manage.domain_rotate, name="domain_rotate"),
    path("settings/domains/<int:domain_id>/warmup/", manage.domain_warmup, name="domain_warmup"),
    path("settings/domains/<int:domain_id>/delete/", manage.domain_delete, name="domain_delete"),
]
