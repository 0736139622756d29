"""Fakes of the sending providers' HTTP APIs, on loopback: each answers its send endpoint
the way the provider does (the formats anymail's backends read), and keeps what it was
asked to send, read back from the provider's own request format.

A test points anymail at a fake with the provider's API URL setting (boto3's
``endpoint_url`` for Amazon SES), so the whole way out is exercised: Missive's message,
anymail's payload, the HTTP request, the provider's answer and how Missive reads it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

SENDER_DOMAIN = "alpha.test"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """A form body, urlencoded or multipart (Mailgun sends either)."""
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("multipart/"):
            parsed = email.message_from_bytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + self.body,
                policy=email.policy.HTTP,
            )
            return {
                part.get_param("name", header="content-disposition"): part.get_content()
                for part in parsed.iter_parts()
            }
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}


@dataclass(frozen=True)
class Sent:
    """One message as the provider was asked to send it."""

    to: str
    subject: str
    headers: dict[str, str]
    html: str
    text: str
    esp_id: str  # the id the provider gave it


@dataclass
class Provider:
    """How one provider's send endpoint is reached, answers and is read."""

    name: str  # anymail's backend module
    path: str  # the send endpoint, under the fake's root
    settings: Callable[[str], dict[str, object]]  # ANYMAIL settings for the fake at URL
    read: Callable[[Request, str], Sent]  # the request, and a number to make its id of
    answer: Callable[[Request, Sent], tuple[int, object]]  # (status, JSON body)


class FakeEsp:
    """An HTTP server on loopback standing in for ``provider``'s API."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.requests: list[Request] = []
        self.sent: list[Sent] = []
        # (status, JSON body) to answer instead of a success, when a test wants a refusal.
        self.refusal: tuple[int, object] | None = None
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                status, body = fake.handle(request)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # no per-request chatter in the test output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, request: Request) -> tuple[int, object]:
        with self._lock:
            self.requests.append(request)
            if request.path.split("?")[0] != self.provider.path:
                return 404, {"message": f"no such endpoint {request.path}"}
            if self.refusal is not None:
                return self.refusal
            sent = self.provider.read(request, str(next(self._ids)))
            self.sent.append(sent)
            return self.provider.answer(request, sent)

    def settings(self) -> dict[str, object]:
        return self.provider.settings(self.url)

    def __enter__(self) -> FakeEsp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the providers -----------------------------------------------------------------------------


def _mailjet_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    merged = {**data.get("Globals", {}), **data["Messages"][0]}
    return Sent(
        to=merged["To"][0]["Email"],
        subject=merged["Subject"],
        headers=merged.get("Headers", {}),
        html=merged["HTMLPart"],
        text=merged.get("TextPart", ""),
        esp_id=esp_id,
    )


def _mailjet_answer(request: Request, sent: Sent) -> tuple[int, object]:
    number = int(sent.esp_id)
    to = [
        {"Email": r["Email"], "MessageUUID": f"uuid-{number}", "MessageID": number}
        for r in request.json()["Messages"][0]["To"]
    ]
    return 200, {"Messages": [{"Status": "success", "To": to, "Cc": [], "Bcc": []}]}


def _brevo_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    return Sent(
        to=data["to"][0]["email"],
        subject=data["subject"],
        headers=data.get("headers", {}),
        html=data["htmlContent"],
        text=data.get("textContent", ""),
        esp_id=f"<{esp_id}@smtp-relay.brevo.test>",
    )


def _ses_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    raw = base64.b64decode(data["Content"]["Raw"]["Data"])
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return Sent(
        to=data["Destination"]["ToAddresses"][0],
        subject=str(message["Subject"]),
        headers={name: str(value) for name, value in message.items()},
        html=message.get_body(("html",)).get_content(),
        text=message.get_body(("plain",)).get_content(),
        esp_id=f"0100-{esp_id}",
    )


def _postmark_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    return Sent(
        to=data["To"],
        subject=data["Subject"],
        headers={h["Name"]: h["Value"] for h in data.get("Headers", [])},
        html=data["HtmlBody"],
        text=data.get("TextBody", ""),
        esp_id=f"pm-{esp_id}",
    )


def _postmark_answer(request: Request, sent: Sent) -> tuple[int, object]:
    return 200, {
        "To": request.json()["To"],
        "SubmittedAt": "2026-12-05T08:00:00Z",
        "MessageID": sent.esp_id,
        "ErrorCode": 0,
        "Message": "OK",
    }


def _mailgun_read(request: Request, esp_id: str) -> Sent:
    form = request.form()
    return Sent(
        to=form["to"],
        subject=form["subject"],
        headers={k.removeprefix("h:"): v for k, v in form.items() if k.startswith("h:")},
        html=form["html"],
        text=form.get("text", ""),
        esp_id=f"<{esp_id}@{SENDER_DOMAIN}>",
    )


def _sendgrid_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    (personalization,) = data["personalizations"]
    content = {part["type"]: part["value"] for part in data["content"]}
    return Sent(
        to=personalization["to"][0]["email"],
        subject=data["subject"],
        headers=data.get("headers", {}),
        html=content["text/html"],
        text=content.get("text/plain", ""),
        # SendGrid answers with no id: anymail makes one and passes it as a custom arg.
        esp_id=personalization.get("custom_args", {}).get("anymail_id", ""),
    )


def _postal_read(request: Request, esp_id: str) -> Sent:
    data = request.json()
    return Sent(
        to=data["to"][0],
        subject=data["subject"],
        headers=data.get("headers", {}),
        html=data["html_body"],
        text=data.get("plain_body", ""),
        esp_id=esp_id,
    )


def _postal_answer(request: Request, sent: Sent) -> tuple[int, object]:
    number = int(sent.esp_id)
    messages = {to: {"id": number, "token": f"t{number}"} for to in request.json()["to"]}
    return 200, {
        "status": "success",
        "time": 0.01,
        "flags": {},
        "data": {"message_id": f"{number}@postal.test", "messages": messages},
    }


PROVIDERS = {
    provider.name: provider
    for provider in [
        Provider(
            name="mailjet",
            path="/v3.1/send",
            settings=lambda url: {
                "MAILJET_API_URL": f"{url}/v3.1/",
                "MAILJET_API_KEY": "key",
                "MAILJET_SECRET_KEY": "secret",
            },
            read=_mailjet_read,
            answer=_mailjet_answer,
        ),
        Provider(
            name="brevo",
            path="/v3/smtp/email",
            settings=lambda url: {"BREVO_API_URL": f"{url}/v3/", "BREVO_API_KEY": "key"},
            read=_brevo_read,
            answer=lambda request, sent: (201, {"messageId": sent.esp_id}),
        ),
        Provider(
            name="amazon_ses",
            path="/v2/email/outbound-emails",
            settings=lambda url: {
                "AMAZON_SES_CLIENT_PARAMS": {
                    "endpoint_url": url,
                    "region_name": "eu-west-1",
                    "aws_access_key_id": "AKIAFAKE",
                    "aws_secret_access_key": "fake-secret",
                    "config": {"retries": {"max_attempts": 1}},
                }
            },
            read=_ses_read,
            answer=lambda request, sent: (200, {"MessageId": sent.esp_id}),
        ),
        Provider(
            name="postmark",
            path="/email",
            settings=lambda url: {
                "POSTMARK_API_URL": f"{url}/",
                "POSTMARK_SERVER_TOKEN": "token",
            },
            read=_postmark_read,
            answer=_postmark_answer,
        ),
        Provider(
            name="mailgun",
            path=f"/v3/{SENDER_DOMAIN}/messages",
            settings=lambda url: {"MAILGUN_API_URL": f"{url}/v3", "MAILGUN_API_KEY": "key"},
            read=_mailgun_read,
            answer=lambda request, sent: (
                200,
                {"id": sent.esp_id, "message": "Queued. Thank you."},
            ),
        ),
        Provider(
            name="sendgrid",
            path="/v3/mail/send",
            settings=lambda url: {"SENDGRID_API_URL": f"{url}/v3/", "SENDGRID_API_KEY": "key"},
            read=_sendgrid_read,
            answer=lambda request, sent: (202, None),
        ),
        Provider(
            name="postal",
            path="/api/v1/send/message",
            settings=lambda url: {"POSTAL_API_URL": url, "POSTAL_API_KEY": "key"},
            read=_postal_read,
            answer=_postal_answer,
        ),
    ]
}
