from django.urls import path

from audiences import views

urlpatterns = [
    path("segments/", views.segments, name="segments"),
    path("segments/new/", views.segment_new, name="segment_new"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment_detail"),
    path("segments/<int:segment_id>/count/", views.segment_count, name="segment_count"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment_delete"),
    path("segments/<int:segment_id>/to-list/", views.segment_to_list, name="segment_to_list"),
    path("segments/<int:segment_id>/tag/", views.segment_tag, name="segment_tag"),
]
