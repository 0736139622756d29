"""The journey pages (journeys/views/)."""

from django.urls import path

from journeys.views import manage, people, steps

urlpatterns = [
    path("journeys/", manage.journeys, name="journeys"),
    path("journeys/new/", manage.journey_new, name="journey_new"),
    path("journeys/<int:journey_id>/", manage.journey_detail, name="journey_detail"),
    path("journeys/<int:journey_id>/start/", manage.journey_start, name="journey_start"),
    path("journeys/<int:journey_id>/pause/", manage.journey_pause, name="journey_pause"),
    path("journeys/<int:journey_id>/resume/", manage.journey_resume, name="journey_resume"),
    path("journeys/<int:journey_id>/end/", manage.journey_end, name="journey_end"),
    path("journeys/<int:journey_id>/delete/", manage.journey_delete, name="journey_delete"),
    path("journeys/<int:journey_id>/publish/", manage.journey_publish, name="journey_publish"),
    path("journeys/<int:journey_id>/steps/add/", steps.journey_step_add, name="journey_step_add"),
    path(
        "journeys/<int:journey_id>/steps/<str:step_id>/",
        steps.journey_step,
        name="journey_step",
    ),
    path(
        "journeys/<int:journey_id>/steps/<str:step_id>/edit/",
        steps.journey_step_edit,
        name="journey_step_edit",
    ),
    path(
        "journeys/<int:journey_id>/steps/<str:step_id>/move/",
        steps.journey_step_move,
        name="journey_step_move",
    ),
    path(
        "journeys/<int:journey_id>/steps/<str:step_id>/remove/",
        steps.journey_step_remove,
        name="journey_step_remove",
    ),
    path("journeys/<int:journey_id>/report/", people.journey_report, name="journey_report"),
    path("journeys/<int:journey_id>/contacts/", people.journey_contacts, name="journey_contacts"),
    path(
        "journeys/<int:journey_id>/contacts/<int:enrollment_id>/remove/",
        people.journey_enrollment_remove,
        name="journey_enrollment_remove",
    ),
]
