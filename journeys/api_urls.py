"""The journeys and events endpoints, under /api/v1/ (journeys/api/). Keywords are named
after what they point to (journey_id, enrollment_id, step_id) so the tenancy sweep can
fill them."""

from django.urls import path

from journeys.api import enrollments, events, journeys

J = "journeys/<int:journey_id>"

urlpatterns = [
    path("journeys/", journeys.JourneysView.as_view(), name="api-journeys"),
    path(f"{J}/", journeys.JourneyView.as_view(), name="api-journey"),
    path(f"{J}/steps/", journeys.JourneyStepsView.as_view(), name="api-journey-steps"),
    path(
        f"{J}/steps/<str:step_id>/",
        journeys.JourneyStepView.as_view(),
        name="api-journey-step",
    ),
    path(f"{J}/publish/", journeys.JourneyPublishView.as_view(), name="api-journey-publish"),
    path(f"{J}/start/", journeys.JourneyStartView.as_view(), name="api-journey-start"),
    path(f"{J}/pause/", journeys.JourneyPauseView.as_view(), name="api-journey-pause"),
    path(f"{J}/resume/", journeys.JourneyResumeView.as_view(), name="api-journey-resume"),
    path(f"{J}/close/", journeys.JourneyCloseView.as_view(), name="api-journey-close"),
    path(
        f"{J}/enrollments/",
        enrollments.EnrollmentsView.as_view(),
        name="api-journey-enrollments",
    ),
    path(
        f"{J}/enrollments/<int:enrollment_id>/",
        enrollments.EnrollmentView.as_view(),
        name="api-journey-enrollment",
    ),
    path("events/", events.EventsView.as_view(), name="api-events"),
]
