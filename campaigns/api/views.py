"""The campaigns endpoints of the API: drafts, test sends, the sending actions and their
progress, and templates.

Every campaign and template is fetched through ``get_for_account_or_404`` or a selector
that starts from ``for_account``, so another account's answers 404 like a missing one.
Writes go through ``campaigns.services``, which write the audit rows. An action the
campaign's state does not allow (editing a sent campaign, pausing a draft) is answered
409, as campaigns/states.py decides; a refusal of the service itself, such as every
reason a campaign cannot be sent yet, is a 400 in the shape of accounts/api/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer, ValidationErrorSerializer
from accounts.api.pagination import CursorPage
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from campaigns import ab, selectors, services
from campaigns.api.serializers import (
    ABTestSerializer,
    ABTestWriteSerializer,
    CampaignCreateSerializer,
    CampaignDetailSerializer,
    CampaignFilterSerializer,
    CampaignProgressSerializer,
    CampaignSerializer,
    ChecksSerializer,
    FollowUpSerializer,
    PublishSerializer,
    ScheduleSerializer,
    TemplateCreateSerializer,
    TemplateSerializer,
    TestSendSerializer,
    TestSentSerializer,
    WinnerSerializer,
)
from campaigns.checks import presend_checks
from campaigns.models import ABTest, Campaign, Template
from campaigns.rendering import TemplateRefused
from campaigns.states import JOURNEY_HUMAN_ACTIONS, Action, TransitionRefused, next_state

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT
SEND = Perm.SEND

CONFLICT = OpenApiResponse(
    ErrorSerializer, description="Not possible in the campaign's state (see `actions`)."
)


class StateConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This is not possible in the campaign's state."
    default_code = "conflict"


class MailServerUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The mail server could not be reached; try again later."
    default_code = "mail_server_unavailable"


def _check_possible(campaign: Campaign, action: str) -> None:
    """409 when the campaign's state does not allow ``action``. The service checks again
    with the row locked; this only answers the common case with the right status. A
    journey's email is only edited here: it starts, pauses and ends with its journey
    (resuming or starting it here would send it to its whole lists)."""
    if campaign.kind == Campaign.Kind.JOURNEY and action not in JOURNEY_HUMAN_ACTIONS:
        raise StateConflict(
            "A journey's email starts, pauses and ends with its journey: see /api/v1/journeys/."
        )
    try:
        next_state(campaign.status, action, campaign.kind)
    except TransitionRefused as refused:
        raise StateConflict(str(refused)) from None


class CampaignAPIView(AccountAPIMixin, APIView):
    def campaign(self, campaign_id: int) -> Campaign:
        return get_for_account_or_404(Campaign, self.account, pk=campaign_id)

    def get_serializer_context(self) -> dict[str, object]:
        return {"request": self.request, "view": self, "account": self.account}


# Campaigns


class CampaignPagination(CursorPage):
    ordering = ("-created_at", "-id")


class CampaignsView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = CampaignSerializer
    pagination_class = CampaignPagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Campaign]:
        params = CampaignFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        queryset = selectors.campaigns(self.account)
        if params.validated_data.get("status"):
            queryset = queryset.filter(status=params.validated_data["status"])
        return queryset

    def get_serializer_context(self) -> dict[str, object]:
        return {**super().get_serializer_context(), "account": self.account}

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[CampaignFilterSerializer],
        description="The account's campaigns, newest first, without their bodies, by cursor "
        "pages: follow `next` until it is null.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=CampaignCreateSerializer,
        responses={201: CampaignDetailSerializer},
        description="Create a draft: blank, from a `starter`, or from one of your "
        "`template`s; the sender defaults to the account's. The HTML is sanitized and its "
        "merge tags checked: a tag Missive does not know is refused with a 400 naming the "
        "field.",
    )
    def post(self, request: Request) -> Response:
        serializer = CampaignCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        campaign = services.campaign_create(
            account=self.account,
            actor=self.actor,
            lists=data.pop("lists", []),
            starter=data.pop("starter", ""),
            template=data.pop("template", None),
            **data,
        )
        return Response(CampaignDetailSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignView(CampaignAPIView):
    """One campaign, with its body."""

    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(responses=CampaignDetailSerializer)
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(CampaignDetailSerializer(self.campaign(campaign_id)).data)

    @extend_schema(
        request=CampaignDetailSerializer,
        responses={200: CampaignDetailSerializer, 409: CONFLICT},
        description="Change a draft: only the fields given change. A campaign that is no "
        "longer a draft answers 409; unschedule a scheduled one first.",
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        _check_possible(campaign, Action.EDIT)
        serializer = CampaignDetailSerializer(
            campaign, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        campaign = services.campaign_update(
            campaign=campaign, actor=self.actor, lists=data.pop("lists", None), **data
        )
        return Response(CampaignDetailSerializer(campaign).data)

    @extend_schema(
        responses={204: None, 409: CONFLICT},
        description="Delete a draft. A campaign that is no longer a draft answers 409.",
    )
    def delete(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        _check_possible(campaign, Action.DELETE)
        services.campaign_delete(campaign=campaign, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignTestView(CampaignAPIView):
    required_perms = {"POST": SEND}

    @extend_schema(
        operation_id="campaigns_test",
        request=TestSendSerializer,
        responses={
            200: TestSentSerializer,
            403: OpenApiResponse(
                ErrorSerializer, description="The account may not send: closed or suspended."
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="The account's test messages for this hour are used up.",
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="The mail server could not be reached."
            ),
        },
        description="Send the campaign as it stands to 1 to 5 addresses, the subject "
        "marked [Test], with the merge tags filled as for `contact` (one of your contacts), "
        "or with sample values. Any state. Nothing goes to a "
        "suppressed address (listed in `skipped`); at most "
        f"{services.TEST_SEND_HOURLY_LIMIT} test messages per account and hour.",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        serializer = TestSendSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            result = services.campaign_test_send(
                campaign=campaign,
                actor=self.actor,
                recipients=serializer.validated_data["recipients"],
                as_contact=serializer.validated_data.get("contact"),
            )
        except TemplateRefused as refused:
            raise DjangoValidationError(str(refused)) from None
        except services.TestSendLimitReached as limited:
            raise Throttled(wait=limited.retry_after, detail=str(limited)) from None
        except OSError as error:
            raise MailServerUnavailable(f"The test was not sent: {error}") from None
        skipped = [{"email": a, "reason": why} for a, why in result.skipped.items()]
        return Response(TestSentSerializer({"sent": result.sent, "skipped": skipped}).data)


class CampaignDuplicateView(CampaignAPIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        operation_id="campaigns_duplicate",
        request=None,
        responses={201: CampaignDetailSerializer},
        description="A new draft named “Copy of …” with the campaign's content, tracking "
        "settings, lists and segment, from a campaign in any state. Nothing of its send "
        "comes along: no schedule, no counts, no statistics.",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        copy = services.campaign_duplicate(campaign=self.campaign(campaign_id), actor=self.actor)
        return Response(CampaignDetailSerializer(copy).data, status=status.HTTP_201_CREATED)


class CampaignChecksView(CampaignAPIView):
    required_perms = {"GET": READ}

    @extend_schema(
        operation_id="campaigns_checks",
        responses=ChecksSerializer,
        description="What is worth a look before sending, each with what to do: broken "
        "links, links to Missive's own tracking address, images without alt text, an empty "
        "text part of your own, the subject's length, a missing preheader, and the "
        "SpamAssassin score when the installation has a spam filter. Advice: what forbids a "
        "send is answered by `…/start/`. (The pages ask a person who sends a message with "
        "errors to tick that they do; the API sends it as asked.)",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        checks = presend_checks(self.campaign(campaign_id))
        return Response(ChecksSerializer({"checks": checks}).data)


class CampaignActionView(CampaignAPIView):
    """One sending action: checked against the campaign's state, then done by its
    service. Answers the campaign as it now stands."""

    required_perms = {"POST": SEND}
    action: str = ""
    # The service doing the action: called with campaign=, actor= and ``arguments``.
    service: Callable[..., Campaign]
    answer_status: int = status.HTTP_200_OK

    def arguments(self, request: Request) -> dict[str, object]:
        """What the action needs beyond the campaign, read from the request."""
        return {}

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        _check_possible(campaign, self.action)
        campaign = self.service(campaign=campaign, actor=self.actor, **self.arguments(request))
        return Response(CampaignSerializer(campaign).data, status=self.answer_status)


def _action_schema(
    operation_id: str, description: str, request: object = None, ok: int = 200
) -> dict:
    return {
        "post": extend_schema(
            operation_id=operation_id,
            request=request,
            responses={
                ok: CampaignSerializer,
                400: OpenApiResponse(
                    ValidationErrorSerializer, description="Refused, with every reason in `errors`."
                ),
                409: CONFLICT,
            },
            description=description,
        )
    }


@extend_schema_view(
    **_action_schema(
        "campaigns_start",
        "Send now. Refused with a 400 listing every reason when the campaign is not ready "
        "(no subject, no list, nobody to send to, no postal address…). The audience is taken "
        "and sending begins in the background: follow it with `GET …/progress/`.",
        ok=202,
    )
)
class CampaignStartView(CampaignActionView):
    action = Action.START
    answer_status = status.HTTP_202_ACCEPTED

    service = staticmethod(services.campaign_start)


@extend_schema_view(
    **_action_schema(
        "campaigns_schedule",
        "Send at a given time. The checks of sending now are made at once, and again when "
        "the time comes; a campaign that can no longer be sent then fails with the reason.",
        request=ScheduleSerializer,
    )
)
class CampaignScheduleView(CampaignActionView):
    action = Action.SCHEDULE

    service = staticmethod(services.campaign_schedule)

    def arguments(self, request: Request) -> dict[str, object]:
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return {"when": serializer.validated_data["scheduled_at"]}


@extend_schema_view(
    **_action_schema(
        "campaigns_unschedule", "Take a scheduled campaign back to draft, to change it."
    )
)
class CampaignUnscheduleView(CampaignActionView):
    action = Action.UNSCHEDULE

    service = staticmethod(services.campaign_unschedule)


@extend_schema_view(
    **_action_schema(
        "campaigns_pause",
        "Stop sending after the messages already on their way. Nothing sent is sent again "
        "on resume.",
    )
)
class CampaignPauseView(CampaignActionView):
    action = Action.PAUSE

    service = staticmethod(services.campaign_pause)


@extend_schema_view(
    **_action_schema(
        "campaigns_resume",
        "Send to those not reached yet; who unsubscribed in between is skipped.",
        ok=202,
    )
)
class CampaignResumeView(CampaignActionView):
    action = Action.RESUME
    answer_status = status.HTTP_202_ACCEPTED

    service = staticmethod(services.campaign_resume)


@extend_schema_view(
    **_action_schema(
        "campaigns_cancel",
        "Stop for good, scheduled or sending: those not reached yet never will be. A "
        "cancelled campaign cannot be resumed.",
    )
)
class CampaignCancelView(CampaignActionView):
    action = Action.CANCEL

    service = staticmethod(services.campaign_cancel)


class CampaignFollowUpView(CampaignAPIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        operation_id="campaigns_follow_up",
        request=FollowUpSerializer,
        responses={
            201: CampaignDetailSerializer,
            400: OpenApiResponse(
                ValidationErrorSerializer,
                description="Not sent yet, opens not tracked, or a link of another campaign.",
            ),
        },
        description="A draft with this sent campaign's content and lists, for a segment "
        "made for it: those who received it and did not open it, or those who clicked one "
        "of its links. People only.",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        serializer = FollowUpSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        follow_up = services.campaign_follow_up(
            campaign=campaign, actor=self.actor, **serializer.validated_data
        )
        return Response(CampaignDetailSerializer(follow_up).data, status=status.HTTP_201_CREATED)


class CampaignPublishView(CampaignAPIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        operation_id="campaigns_publish",
        request=PublishSerializer,
        responses={200: CampaignDetailSerializer},
        description="Show the campaign in the account's public archive once it is sent, or "
        "take it out: rendered for nobody in particular (merge tags empty, their defaults "
        "shown), nothing tracked. Any state.",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_publish(
            campaign=campaign, actor=self.actor, public=serializer.validated_data["public"]
        )
        return Response(CampaignDetailSerializer(campaign).data)


class CampaignABTestView(CampaignAPIView):
    """The campaign's A/B test: set while a draft; its figures once sending."""

    required_perms = {"GET": READ, "PUT": WRITE, "DELETE": WRITE}

    def _test(self, campaign: Campaign) -> ABTest:
        test = ABTest.objects.filter(campaign=campaign).first()
        if test is None:
            raise NotFound("This campaign is not an A/B test.")
        return test

    @extend_schema(operation_id="campaigns_ab_test_read", responses={200: ABTestSerializer})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        return Response(ABTestSerializer.of(campaign, self._test(campaign)))

    @extend_schema(
        operation_id="campaigns_ab_test_set",
        request=ABTestWriteSerializer,
        responses={200: ABTestSerializer, 409: CONFLICT},
        description="Make the draft an A/B test, or change its test: B (and C, D) differ "
        "from A by subject, sender name, preheader or HTML content; `share` percent of the "
        "audience, drawn at random, is dealt evenly to the variants; after `wait_hours` the "
        "rest gets the variant with the most people's opens or clicks (`metric`), or the one "
        "chosen with `…/ab-test/winner/` (`hand`).",
    )
    def put(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        serializer = ABTestWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        test = ab.set_up(campaign=campaign, actor=self.actor, **serializer.validated_data)
        return Response(ABTestSerializer.of(campaign, test))

    @extend_schema(operation_id="campaigns_ab_test_remove", responses={204: None, 409: CONFLICT})
    def delete(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        self._test(campaign)
        ab.take_down(campaign=campaign, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignABWinnerView(CampaignAPIView):
    required_perms = {"POST": SEND}

    @extend_schema(
        operation_id="campaigns_ab_test_winner",
        request=WinnerSerializer,
        responses={200: ABTestSerializer},
        description="Choose the winner by hand (once): the rest of the audience is sent it.",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.campaign(campaign_id)
        serializer = WinnerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        test = ab.choose_winner(
            campaign=campaign, variant=serializer.validated_data["variant"], actor=self.actor
        )
        return Response(ABTestSerializer.of(campaign, test))


class CampaignProgressView(CampaignAPIView):
    required_perms = {"GET": READ}

    @extend_schema(
        operation_id="campaigns_progress",
        responses=CampaignProgressSerializer,
        description="How far the send has gone, from the campaign's counters: as cheap at a "
        "million recipients as at ten, so it may be polled every few seconds while "
        "`progress.finished` is false.",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(CampaignProgressSerializer.of(self.campaign(campaign_id)))


# Templates


class TemplatePagination(CursorPage):
    ordering = ("name", "id")


class TemplatesView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = TemplateSerializer
    pagination_class = TemplatePagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Template]:
        return selectors.templates(self.account)

    @extend_schema(
        operation_id="templates_list",
        description="The account's templates, by name, by cursor pages.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=TemplateCreateSerializer,
        responses={
            200: OpenApiResponse(TemplateSerializer, description="Replaced the one of this name."),
            201: OpenApiResponse(TemplateSerializer, description="Created."),
        },
        description="Keep a campaign's subject, preheader and body as a template. A template "
        "of the same name is replaced.",
    )
    def post(self, request: Request) -> Response:
        serializer = TemplateCreateSerializer(data=request.data, context={"account": self.account})
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["name"].strip()
        existed = selectors.templates(self.account).filter(name=name).exists()
        template = services.template_save(
            campaign=serializer.validated_data["campaign"], actor=self.actor, name=name
        )
        return Response(
            TemplateSerializer(template).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class TemplateView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "DELETE": WRITE}

    def _template(self, template_id: int) -> Template:
        return get_for_account_or_404(Template, self.account, pk=template_id)

    @extend_schema(responses=TemplateSerializer)
    def get(self, request: Request, template_id: int) -> Response:
        return Response(TemplateSerializer(self._template(template_id)).data)

    @extend_schema(
        responses={204: None},
        description="Delete the template. Campaigns made from it keep their content.",
    )
    def delete(self, request: Request, template_id: int) -> Response:
        services.template_delete(template=self._template(template_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
