"""The bounce endpoint: a mail server posts the raw reports it receives for the bounce
address (a pipe to curl), as an alternative to Missive reading a mailbox."""

from __future__ import annotations

from anymail.utils import get_anymail_setting, get_request_basic_auth
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.query import clean_text
from stats import bounces


def _secrets() -> list[str]:
    configured = get_anymail_setting("webhook_secret", default=[])
    if isinstance(configured, str):
        configured = [configured]
    return [secret for secret in configured if secret]


def webhook_authenticated(request: HttpRequest) -> bool:
    """HTTP basic auth with the same ``user:password`` as the providers' webhooks
    (ANYMAIL_WEBHOOK_SECRET); never true while none is configured."""
    given = get_request_basic_auth(request)
    if not given:
        return False
    # Every secret is compared, so the time taken says nothing about which one matched.
    matches = [constant_time_compare(given, secret) for secret in _secrets()]
    return any(matches)


@csrf_exempt
@require_POST
def bounce_report(request: HttpRequest) -> HttpResponse:
    """One received mail as the request body (message/rfc822). ``?recipient=`` may give
    the address it was delivered to. Answers what was done with it."""
    if not webhook_authenticated(request):
        response = HttpResponse("Authentication required.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Basic realm="Missive bounces"'
        return response
    result = bounces.process_message(
        request.body, envelope_to=clean_text(request.GET.get("recipient", ""), max_length=320)
    )
    return HttpResponse(result.value, content_type="text/plain")
