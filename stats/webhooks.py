"""The sending providers' event webhooks, through django-anymail.

anymail parses each provider's payload and checks its authentication: the shared HTTP
basic auth secret (``ANYMAIL_WEBHOOK_SECRET``) for every provider, and the provider's own
signature where it has one (Mailgun's webhook signing key, Postal's public key,
SendGrid's verification key). A request that fails gets a 4xx before anything is read
beyond what authenticating needs, and no signal is sent, so nothing is stored.

Missive adds one guard in front: a provider's URL answers 403 until some authentication
is configured for it. anymail itself accepts anything when no secret is set (with a
warning), which would let anyone suppress addresses or suspend an account.

Each event anymail sends on its ``tracking`` signal is matched to its delivery (by the
provider's message id, which the sender stored as ``esp_message_id``) and handed to the
rules in stats/feedback.py. Events of unknown messages are logged and dropped: they
belong to mail Missive did not send (transactional mail on the same provider account).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt

from campaigns.models import Delivery
from stats.feedback import (
    Feedback,
    Outcome,
    enhanced_status,
    feedback_record,
    outcome_of_status,
    outcome_of_temporary,
)

logger = logging.getLogger(__name__)

# Events Missive has no use for: its own ledger already knows a message was handed over.
_IGNORED = {
    EventType.QUEUED,
    EventType.SENT,
    EventType.AUTORESPONDED,
    EventType.SUBSCRIBED,
    EventType.INBOUND,
    EventType.INBOUND_FAILED,
    EventType.UNKNOWN,
}
# Providers whose one notification anymail splits into one event per recipient, all with
# the notification's id.
_FANNED_OUT = {"Amazon SES"}
# The value of X-Missive-Campaign: <account>-<campaign>-<delivery>.
_SUPPORT_ID = re.compile(r"^\s*(\d+)-(\d+)-(\d+)\s*$")
MAX_KEY = 200
# Sendinblue is Brevo now: its old URL is deprecated by anymail, Missive serves brevo/.
_DEPRECATED = {"sendinblue_tracking_webhook"}


def receive_tracking(
    sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object
) -> None:
    """anymail's ``tracking`` signal (connected in StatsConfig.ready). An exception here
    answers 500, and the provider sends the event again later."""
    feedback = feedback_from_event(event, esp_name)
    if feedback is None:
        return
    delivery = find_delivery(event, esp_name)
    if delivery is None:
        logger.info(
            "%s %s event for an unknown message %r: ignored",
            esp_name,
            event.event_type,
            event.message_id,
        )
        return
    feedback_record(delivery=delivery, feedback=feedback)


# -- what the event says ----------------------------------------------------------------------


def _raw(event: AnymailTrackingEvent) -> Mapping[str, Any]:
    return event.esp_event if isinstance(event.esp_event, Mapping) else {}


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def _provider_status(event: AnymailTrackingEvent, esp_name: str) -> str:
    """The RFC 3463 code some providers give in a field of its own."""
    raw = _raw(event)
    if esp_name == "SendGrid":
        return str(raw.get("status") or "")
    if esp_name == "Amazon SES":
        for recipient in _section(raw, "bounce").get("bouncedRecipients") or []:
            if isinstance(recipient, Mapping) and recipient.get("emailAddress") == event.recipient:
                return str(recipient.get("status") or "")
    return ""


def _provider_verdict(event: AnymailTrackingEvent, esp_name: str) -> Outcome | None:
    """Hard or soft, where the provider says so and anymail's normalized event does not
    (anymail reports Brevo's and Postmark's soft bounces as "bounced")."""
    raw = _raw(event)
    if esp_name in ("Brevo", "SendinBlue"):
        return {"hard_bounce": Outcome.HARD_BOUNCE, "soft_bounce": Outcome.SOFT_BOUNCE}.get(
            raw.get("event", "")
        )
    if esp_name == "Postmark":
        return {"HardBounce": Outcome.HARD_BOUNCE, "SoftBounce": Outcome.SOFT_BOUNCE}.get(
            raw.get("Type", "")
        )
    if esp_name == "Mailjet" and raw.get("event") == "bounce":
        return Outcome.HARD_BOUNCE if raw.get("hard_bounce") else Outcome.SOFT_BOUNCE
    if esp_name == "Amazon SES":
        return {"Permanent": Outcome.HARD_BOUNCE, "Transient": Outcome.SOFT_BOUNCE}.get(
            _section(raw, "bounce").get("bounceType", "")
        )
    if esp_name == "SendGrid" and raw.get("event") == "bounce":
        # SendGrid's "blocked": the receiving server refused the sender, not the address.
        return {"bounce": Outcome.HARD_BOUNCE, "blocked": Outcome.POLICY}.get(raw.get("type", ""))
    if esp_name == "Postal":
        payload = _section(raw, "payload")
        if payload.get("status") == "HardFail":
            return Outcome.HARD_BOUNCE
        if "bounce" in payload:
            # MessageBounced: a bounce came back, and Postal does not say what it says
            # (anymail's "bounced" reason is its placeholder, not Postal's word).
            return Outcome.SOFT_BOUNCE
    return None


_BY_REASON = {
    RejectReason.INVALID: Outcome.HARD_BOUNCE,
    RejectReason.BOUNCED: Outcome.HARD_BOUNCE,
    RejectReason.BLOCKED: Outcome.POLICY,
    RejectReason.SPAM: Outcome.POLICY,
    RejectReason.UNSUBSCRIBED: Outcome.UNSUBSCRIBE,
    RejectReason.TIMED_OUT: Outcome.SOFT_BOUNCE,
}
_UNEXPLAINED = {
    EventType.BOUNCED: Outcome.SOFT_BOUNCE,  # it bounced, nobody says why: not at once
    EventType.REJECTED: Outcome.REJECTED,
    EventType.FAILED: Outcome.FAILED,
}


def classify(event: AnymailTrackingEvent, esp_name: str) -> tuple[Outcome, str] | None:
    """The outcome of a provider event and its status code; None for events Missive
    does not keep. A failure is judged by its RFC 3463 code first (a 5.7.1 is a policy
    rejection whatever the provider calls it), then by the provider's own verdict, then
    by anymail's normalized reason."""
    kind = event.event_type
    if kind == EventType.DELIVERED:
        return Outcome.DELIVERED, ""
    if kind == EventType.DEFERRED:
        # Held against the address only when the code or the words name its mailbox.
        status = enhanced_status(event.mta_response, event.description)
        text = str(event.mta_response or event.description or "")
        return outcome_of_temporary(status, text, unexplained=Outcome.DEFERRED), status
    if kind in _UNEXPLAINED:
        status = enhanced_status(
            _provider_status(event, esp_name), event.mta_response, event.description
        )
        outcome = (
            outcome_of_status(status)
            or _provider_verdict(event, esp_name)
            or _BY_REASON.get(event.reject_reason)
            or _UNEXPLAINED[kind]
        )
        return outcome, status
    return {
        EventType.COMPLAINED: (Outcome.COMPLAINT, ""),
        EventType.UNSUBSCRIBED: (Outcome.UNSUBSCRIBE, ""),
        EventType.OPENED: (Outcome.OPEN, ""),
        EventType.CLICKED: (Outcome.CLICK, ""),
    }.get(kind)


def dedup_key(event: AnymailTrackingEvent, esp_name: str) -> str:
    """``<provider>:<event id>``; a hash of the raw event for providers that give no id
    (Mailjet, Brevo), so the same payload sent twice still counts once."""
    if event.event_id:
        key = f"{esp_name}:{event.event_id}"
        if esp_name in _FANNED_OUT and event.recipient:
            key = f"{key}:{event.recipient.lower()}"
    else:
        raw = json.dumps(event.esp_event, sort_keys=True, default=str)
        key = f"{esp_name}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"
    if len(key) > MAX_KEY:
        key = f"{esp_name[:40]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def _client_ip(raw: Mapping[str, Any]) -> str:
    for value in (
        raw.get("ip"),  # Mailjet, SendGrid
        _section(raw, "open").get("ipAddress"),  # Amazon SES
        _section(raw, "click").get("ipAddress"),
        _section(raw, "Geo").get("IP"),  # Postmark
    ):
        if isinstance(value, str) and value:
            return value
    return ""


def feedback_from_event(event: AnymailTrackingEvent, esp_name: str) -> Feedback | None:
    if event.event_type in _IGNORED:
        return None
    classified = classify(event, esp_name)
    if classified is None:
        return None
    outcome, status = classified
    raw = _raw(event)
    diagnostic = event.mta_response or event.description or ""
    return Feedback(
        outcome=outcome,
        source=esp_name,
        occurred_at=event.timestamp,
        dedup_key=dedup_key(event, esp_name),
        status=status,
        diagnostic=str(diagnostic),
        deferred=event.event_type == EventType.DEFERRED,
        # Brevo names the opens of Apple's and Google's proxies itself (Google's proxy
        # fetches when its user opens the message: stats/feedback.py counts it a person's).
        machine=str(raw.get("event", "")) in ("unique_proxy_open", "proxy_open"),
        user_agent=event.user_agent,
        ip=_client_ip(raw),
        url=event.click_url or "",
    )


# -- which message it is about ------------------------------------------------------------------


def _deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("campaign__account", "contact")


def _message_ids(message_id: object) -> list[str]:
    """The stored form may or may not have the angle brackets the event has."""
    if message_id in (None, ""):
        return []
    value = str(message_id).strip()
    bare = value.strip("<>")
    return list(dict.fromkeys([value, bare, f"<{bare}>"]))


def _support_ids(event: AnymailTrackingEvent) -> str:
    """X-Missive-Campaign, where the provider echoes it: in the message's metadata, or in
    its headers (Amazon SES)."""
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    value = metadata.get("missive") or metadata.get("X-Missive-Campaign")
    if value:
        return str(value)
    headers = _section(_raw(event), "mail").get("headers") or []
    for header in headers:
        if isinstance(header, Mapping) and str(header.get("name", "")).lower() == (
            "x-missive-campaign"
        ):
            return str(header.get("value", ""))
    return ""


def find_delivery(event: AnymailTrackingEvent, esp_name: str) -> Delivery | None:
    """The delivery an event is about, with its campaign, account and contact. The
    request is authenticated as the provider's, so its word on the ids is trusted."""
    ids = _message_ids(event.message_id)
    if ids:
        delivery = _deliveries().filter(esp_message_id__in=ids).exclude(esp_message_id="").first()
        if delivery is not None:
            return delivery
    match = _SUPPORT_ID.match(_support_ids(event))
    if match:
        account_id, campaign_id, delivery_id = (int(part) for part in match.groups())
        return (
            _deliveries()
            .filter(pk=delivery_id, campaign_id=campaign_id, campaign__account_id=account_id)
            .first()
        )
    return None


# -- the URLs -----------------------------------------------------------------------------------


def _authenticated_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """anymail's view, answering 403 while it has no way to authenticate a request."""
    view_class = view.view_class  # type: ignore[attr-defined]  # set by View.as_view()
    initkwargs = view.view_initkwargs  # type: ignore[attr-defined]  # likewise

    @csrf_exempt
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            instance = view_class(**initkwargs)
        except ImproperlyConfigured as error:  # a signing key missing (Mailgun, Postal),
            # or a package (Amazon SES needs boto3: django-anymail[amazon-ses])
            logger.warning("%s refused: %s", request.path, error)
            return HttpResponseForbidden("This webhook is not configured.")
        if instance.warn_if_no_basic_auth and not instance.basic_auth:
            return HttpResponseForbidden("This webhook is not configured.")
        instance.setup(request, *args, **kwargs)
        return instance.dispatch(request, *args, **kwargs)

    guarded.__name__ = f"{view_class.__name__}_guarded"
    return guarded


def tracking_urlpatterns() -> list[URLPattern]:
    """anymail's tracking webhook URLs (``<provider>/tracking/``), guarded. Its inbound
    webhooks are left out: Missive receives no mail through a provider."""
    from anymail import urls as anymail_urls

    patterns = []
    for entry in anymail_urls.urlpatterns:
        view_class = getattr(entry.callback, "view_class", None)
        if view_class is None or getattr(view_class, "signal", None) is not tracking:
            continue
        if entry.name in _DEPRECATED:
            continue
        patterns.append(
            URLPattern(entry.pattern, _authenticated_only(entry.callback), name=entry.name)
        )
    return patterns
