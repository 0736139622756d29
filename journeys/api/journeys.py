"""The journeys endpoints: make and change a journey, edit its draft's steps, publish,
start, pause, resume, close and delete it.

Every journey is fetched through ``get_for_account_or_404``, so another account's answers
404 like a missing one; every write goes through journeys.services. What the journey's
state forbids (starting a live one, editing an ended one) is answered 409; what the
services refuse otherwise (a trigger's list that is not the account's, steps that cannot
be published, every reason it cannot start) is a 400 naming the field or the step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer, ValidationErrorSerializer
from accounts.api.pagination import CursorPage
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from journeys import selectors, services
from journeys import steps as stepping
from journeys.api.serializers import (
    ACTIONS,
    CloseSerializer,
    DeleteParamsSerializer,
    JourneyCreateSerializer,
    JourneyDetailSerializer,
    JourneyFilterSerializer,
    JourneyPublishSerializer,
    JourneySerializer,
    JourneyUpdateSerializer,
    PublishedSerializer,
    PublishPreviewSerializer,
    StepAddSerializer,
    StepSerializer,
    StepSettingsSerializer,
    StepsSerializer,
    steps_shape_errors,
)
from journeys.models import Enrollment, Journey

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT
SEND = Perm.SEND

REFUSED = OpenApiResponse(
    ValidationErrorSerializer, description="Refused: `errors` names each field at fault."
)
CONFLICT = OpenApiResponse(
    ErrorSerializer, description="Not possible in the journey's state (see `actions`)."
)
STEPS_REFUSED = OpenApiResponse(
    ValidationErrorSerializer,
    description="The steps cannot be saved: `errors` holds each step's problem under its "
    "path (`steps.2.yes.0`, `steps.1.amount`), or the document's under `steps`.",
)


class StateConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This is not possible in the journey's state."
    default_code = "conflict"


def check_possible(journey: Journey, action: str) -> None:
    """409 when the journey's state does not allow ``action`` (serializers.ACTIONS)."""
    if journey.status not in ACTIONS[action]:
        raise StateConflict(
            f"“{action}” is not possible while the journey is "
            f"{journey.get_status_display().lower()}."
        )


def journey_detail(journey: Journey, code: int = status.HTTP_200_OK) -> Response:
    """The journey as it now stands, read again after a service changed it."""
    fresh = selectors.journeys(journey.account).select_related("version").get(pk=journey.pk)
    return Response(JourneyDetailSerializer(fresh).data, status=code)


class JourneyAPIView(AccountAPIMixin, APIView):
    def journey(self, journey_id: int) -> Journey:
        return get_for_account_or_404(Journey, self.account, pk=journey_id)


# -- the journeys ------------------------------------------------------------------------------


class JourneyPagination(CursorPage):
    ordering = ("-created_at", "-id")


class JourneysView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = JourneySerializer
    pagination_class = JourneyPagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Journey]:
        params = JourneyFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        queryset = selectors.journeys(self.account).select_related("version")
        if params.validated_data.get("status"):
            queryset = queryset.filter(status=params.validated_data["status"])
        return queryset

    @extend_schema(
        operation_id="journeys_list",
        parameters=[JourneyFilterSerializer],
        description="The account's journeys, newest first, by cursor pages: follow `next` "
        "until it is null.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="journeys_create",
        request=JourneyCreateSerializer,
        responses={201: JourneyDetailSerializer, 400: REFUSED},
        examples=[
            OpenApiExample(
                "After an order",
                value={
                    "name": "Post-purchase",
                    "trigger": "event",
                    "trigger_config": {"event": "order_placed"},
                    "entry": "every_time",
                },
                request_only=True,
            ),
            OpenApiExample(
                "From a starter", value={"name": "Welcome", "starter": "welcome"}, request_only=True
            ),
        ],
        description="Make a draft journey: empty, or from a `starter` (its steps and their "
        "emails made at once). A `trigger_config` given is checked against the account "
        "(a list, tag, segment or campaign of its own, a declared date attribute); left "
        "out, it is chosen later with PATCH, before the journey can start.",
    )
    def post(self, request: Request) -> Response:
        serializer = JourneyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        config: dict[str, Any] = {}
        if "trigger_config" in data:
            try:
                config = services.clean_trigger(
                    self.account, data["trigger"], data["trigger_config"]
                )
            except DjangoValidationError as error:
                raise ValidationError({"trigger_config": error.messages}) from None
        journey = services.journey_create(
            account=self.account,
            actor=self.actor,
            name=data["name"],
            starter=data.get("starter", ""),
            trigger=data["trigger"],
            trigger_config=config,
            entry=data["entry"],
        )
        return journey_detail(journey, status.HTTP_201_CREATED)


class JourneyView(JourneyAPIView):
    """One journey: its settings, its steps and their figures."""

    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="journeys_retrieve", responses=JourneyDetailSerializer)
    def get(self, request: Request, journey_id: int) -> Response:
        return journey_detail(self.journey(journey_id))

    @extend_schema(
        operation_id="journeys_update",
        request=JourneyUpdateSerializer,
        responses={200: JourneyDetailSerializer, 400: REFUSED, 409: CONFLICT},
        description="Change its settings: only the fields given change. The trigger and "
        "the entry rule change only while it is a draft; an ended journey answers 409.",
    )
    def patch(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        serializer = JourneyUpdateSerializer(data=request.data, context={"account": self.account})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        check_possible(journey, "edit")
        if journey.status != Journey.Status.DRAFT:
            for field in ("trigger", "entry"):
                if field in data and data[field] != getattr(journey, field):
                    raise StateConflict(
                        f"The {field} of a journey that started cannot change: copy it instead."
                    )
        lists = data.pop("lists", None)
        services.journey_update(journey=journey, actor=self.actor, lists=lists, **data)
        return journey_detail(journey)

    @extend_schema(
        operation_id="journeys_delete",
        parameters=[DeleteParamsSerializer],
        responses={
            204: None,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Contacts are inside: say `?inside=remove`, or close it first.",
            ),
        },
        description="Delete the journey and the record of who went through it. With "
        "contacts inside, `?inside=remove` takes them out (nothing more is sent to them); "
        "its emails' reports stay with their campaigns.",
    )
    def delete(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        params = DeleteParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        inside = params.validated_data.get("inside", "")
        try:
            services.journey_delete(journey=journey, actor=self.actor, inside=inside)
        except DjangoValidationError as refused:
            # The one refusal: contacts are inside and the caller did not say to remove them.
            raise StateConflict(" ".join(refused.messages)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- the draft's steps -------------------------------------------------------------------------


def _with_ids(steps: list[Any]) -> list[dict[str, Any]]:
    """The steps, each with an id (a new step gets one now), so that what check_steps
    says of each can be told back by its place in the document."""
    result = []
    for step in steps:
        step = {**step, "id": step.get("id") or stepping.new_id()}
        if step["type"] == "condition":
            for branch in ("yes", "no"):
                if branch in step:
                    step[branch] = _with_ids(step[branch])
        result.append(step)
    return result


def _paths(steps: list[dict[str, Any]], prefix: str = "steps") -> dict[str, str]:
    paths: dict[str, str] = {}
    for position, step in enumerate(steps):
        here = f"{prefix}.{position}"
        paths[step["id"]] = here
        for branch in ("yes", "no"):
            paths.update(_paths(step.get(branch) or [], f"{here}.{branch}"))
    return paths


class JourneyStepsView(JourneyAPIView):
    required_perms = {"PUT": WRITE, "POST": WRITE}

    @extend_schema(
        operation_id="journeys_steps_replace",
        request=StepsSerializer,
        responses={200: StepsSerializer, 400: STEPS_REFUSED, 409: CONFLICT},
        description="Replace the whole draft, checked as for publishing: every step must "
        "be complete. Keep each step's `id`; leave it out for a new step. An email step "
        "sends one of this journey's own emails (add an email step with POST to make one), "
        "each email from one step only; an email left out that no published version sends "
        "is deleted. Contacts inside are not moved until the draft is published.",
    )
    def put(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        serializer = StepsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        check_possible(journey, "edit")
        steps = _with_ids(serializer.validated_data["steps"])
        duplicated = _duplicates(steps)
        if duplicated:
            raise ValidationError(
                {f"{path}.id": ["Another step has this id."] for path in duplicated}
            )
        paths = _paths(steps)
        try:
            saved = services.journey_set_steps(journey=journey, actor=self.actor, steps=steps)
        except stepping.StepsInvalid as invalid:
            raise ValidationError(
                {paths.get(step, "steps"): [message] for step, message in invalid.errors.items()}
            ) from None
        return Response(StepsSerializer({"steps": saved}).data)

    @extend_schema(
        operation_id="journeys_steps_add",
        request=StepAddSerializer,
        responses={201: StepSerializer, 400: REFUSED, 409: CONFLICT},
        description="Add a step of `type` to the draft, with its defaults: after the step "
        "`after` (first when left out), or first in the `branch` of the condition `after`. "
        "An email step comes with its own email, a campaign of kind `journey` whose id is "
        "the step's `campaign`: write its subject and content with "
        "`PATCH /api/v1/campaigns/{id}/`, then change the other steps' settings with "
        "`PATCH …/steps/{step_id}/`.",
    )
    def post(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        serializer = StepAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        check_possible(journey, "edit")
        after, branch = data["after"], data.get("branch", "")
        found = stepping.find(list(journey.draft or []), after) if after else None
        if after and found is None:
            raise ValidationError({"after": [f"No step {after} in the draft."]})
        if branch and (found is None or found[0][found[1]].get("type") != "condition"):
            raise ValidationError({"branch": ["A branch is a condition's: put it after one."]})
        step = services.step_add(
            journey=journey, actor=self.actor, type=data["type"], after=after, branch=branch
        )
        return Response(step, status=status.HTTP_201_CREATED)


def _duplicates(steps: list[dict[str, Any]]) -> list[str]:
    """The paths of the steps whose id an earlier step has."""
    seen: set[str] = set()
    twice = []
    for step_id, path in _id_paths(steps):
        if step_id in seen:
            twice.append(path)
        seen.add(step_id)
    return twice


def _id_paths(steps: list[dict[str, Any]], prefix: str = "steps") -> list[tuple[str, str]]:
    found = []
    for position, step in enumerate(steps):
        here = f"{prefix}.{position}"
        found.append((step["id"], here))
        for branch in ("yes", "no"):
            found.extend(_id_paths(step.get(branch) or [], f"{here}.{branch}"))
    return found


class JourneyStepView(JourneyAPIView):
    required_perms = {"PATCH": WRITE, "DELETE": WRITE}

    def step(self, journey: Journey, step_id: str) -> dict[str, Any]:
        found = stepping.find(list(journey.draft or []), step_id)
        if found is None:
            raise NotFound(f"No step {step_id[:40]} in the draft.")
        holder, position = found
        return holder[position]

    @extend_schema(
        operation_id="journeys_step_update",
        request=StepSettingsSerializer,
        responses={200: StepSerializer, 400: REFUSED, 409: CONFLICT},
        description="Change one step's settings in the draft, checked at once (a wait: "
        "`amount` and `unit`, or `until`; a condition: `definition` and `event`; a tag: "
        "`action` and `tag`; a list: `action` and `list`; an attribute: `name` and "
        "`value`). The settings not given are kept. An email step's message is its "
        "campaign's: `PATCH /api/v1/campaigns/{id}/`.",
    )
    def patch(self, request: Request, journey_id: int, step_id: str) -> Response:
        journey = self.journey(journey_id)
        serializer = StepSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        check_possible(journey, "edit")
        current = self.step(journey, step_id)
        given = {k: request.data[k] for k in serializer.validated_data}
        errors = steps_shape_errors([{"type": current["type"], **given}])
        if errors:
            raise ValidationError(
                {path.removeprefix("steps.0."): [message] for path, message in errors.items()}
            )
        step = services.step_change(
            journey=journey, actor=self.actor, step_id=step_id, settings=given
        )
        return Response(step)

    @extend_schema(
        operation_id="journeys_step_remove",
        responses={204: None, 409: CONFLICT},
        description="Take the step out of the draft (a condition with both its branches). "
        "Its email, if no published version sends it, is deleted.",
    )
    def delete(self, request: Request, journey_id: int, step_id: str) -> Response:
        journey = self.journey(journey_id)
        check_possible(journey, "edit")
        self.step(journey, step_id)
        services.step_remove(journey=journey, actor=self.actor, step_id=step_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- publishing and the journey's life ---------------------------------------------------------


class JourneyPublishView(JourneyAPIView):
    required_perms = {"GET": READ, "POST": SEND}

    @extend_schema(
        operation_id="journeys_publish_preview",
        responses=PublishPreviewSerializer,
        description="What publishing the draft would do: how many of those inside could "
        "move to it and how many stay where they are, and what stops it, if anything.",
    )
    def get(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        plan = services.move_plan(journey)
        return Response(
            PublishPreviewSerializer(
                {
                    "movable": plan.movable,
                    "staying": plan.staying,
                    "draft_changed": services.draft_changed(journey),
                    "problems": services.start_problems(journey),
                }
            ).data
        )

    @extend_schema(
        operation_id="journeys_publish",
        request=JourneyPublishSerializer,
        responses={
            201: PublishedSerializer,
            400: OpenApiResponse(
                ValidationErrorSerializer, description="Refused, with every reason in `errors`."
            ),
            409: CONFLICT,
        },
        description="Make the draft the version new contacts enter. Those inside finish the "
        "version they entered or, with `move`, go on in the new one from the step they "
        "are at.",
    )
    def post(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        serializer = JourneyPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        check_possible(journey, "publish")
        with transaction.atomic():
            version = services.journey_publish(
                journey=journey, actor=self.actor, move=serializer.validated_data["move"]
            )
            # In the same transaction nobody else can enter the new version yet: whoever
            # is in it was moved.
            inside = selectors.enrollments(self.account).filter(
                journey=journey, status=Enrollment.Status.ACTIVE
            )
            moved = inside.filter(version=version).count()
            staying = inside.exclude(version=version).count()
        return Response(
            PublishedSerializer(
                {"version": version.number, "moved": moved, "staying": staying}
            ).data,
            status=status.HTTP_201_CREATED,
        )


class JourneyActionView(JourneyAPIView):
    """One change of the journey's life, checked against its state, then done by its
    service. Answers the journey as it now stands."""

    required_perms = {"POST": SEND}
    action: str = ""
    # The service doing the action: called with journey=, actor= and ``arguments``.
    service: Callable[..., Journey]

    def arguments(self, request: Request) -> dict[str, Any]:
        """What the action needs beyond the journey, read from the request."""
        return {}

    def post(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        arguments = self.arguments(request)
        check_possible(journey, self.action)
        self.service(journey=journey, actor=self.actor, **arguments)
        return journey_detail(journey)


def _action_schema(operation_id: str, description: str, request: object = None) -> Any:
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            request=request,
            responses={
                200: JourneyDetailSerializer,
                400: OpenApiResponse(
                    ValidationErrorSerializer,
                    description="Refused, with every reason in `errors`.",
                ),
                409: CONFLICT,
            },
            description=description,
        )
    )


@_action_schema(
    "journeys_start",
    "Go live: the draft is published if it changed, its emails start, and the trigger is "
    "read from now on (who subscribed before does not enter). Refused with 400 listing "
    "every reason when it cannot start: a trigger to complete, no step, a step to finish, "
    "an email without a subject or an unsubscribe link…",
)
class JourneyStartView(JourneyActionView):
    action = "start"
    service = staticmethod(services.journey_start)


@_action_schema(
    "journeys_pause",
    "Hold everyone where they are: no one enters, no step runs, none of its emails goes.",
)
class JourneyPauseView(JourneyActionView):
    action = "pause"
    service = staticmethod(services.journey_pause)


@_action_schema(
    "journeys_resume",
    "Live again: the waits that ended during the pause run now; who subscribed during the "
    "pause enters.",
)
class JourneyResumeView(JourneyActionView):
    action = "resume"
    service = staticmethod(services.journey_resume)


@_action_schema(
    "journeys_close",
    "End the journey: with `inside` `finish`, no one new enters and it ends when the last "
    "one inside is through; with `remove`, everyone inside leaves now and it ends.",
    request=CloseSerializer,
)
class JourneyCloseView(JourneyActionView):
    action = "close"
    service = staticmethod(services.journey_close)

    def arguments(self, request: Request) -> dict[str, Any]:
        serializer = CloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return {"inside": serializer.validated_data["inside"]}
