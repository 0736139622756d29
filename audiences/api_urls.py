"""The segments endpoints, under /api/v1/ (segment_id names what it points to, so the
tenancy sweep can fill it)."""

from django.urls import path

from audiences import api

urlpatterns = [
    path("segments/", api.SegmentsView.as_view(), name="api-segments"),
    path("segments/preview/", api.SegmentPreviewView.as_view(), name="api-segment-preview"),
    path("segments/<int:segment_id>/", api.SegmentView.as_view(), name="api-segment"),
    path(
        "segments/<int:segment_id>/count/",
        api.SegmentCountView.as_view(),
        name="api-segment-count",
    ),
    path(
        "segments/<int:segment_id>/contacts/",
        api.SegmentContactsView.as_view(),
        name="api-segment-contacts",
    ),
    path("segments/<int:segment_id>/tag/", api.SegmentTagView.as_view(), name="api-segment-tag"),
    path(
        "segments/<int:segment_id>/export.<str:fmt>",
        api.SegmentExportView.as_view(),
        name="api-segment-export",
    ),
]
