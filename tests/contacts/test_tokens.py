import base64
import binascii
import contextlib
import re
import zlib
from datetime import timedelta

import time_machine
from django.utils import timezone

from contacts.models import PublicLink
from contacts.tokens import link_issue, link_open, link_use, make_token, read_token


def test_it_reads_back_what_it_signed():
    token = make_token("confirm", {"s": 42})

    assert read_token("confirm", token) == {"s": 42}


def test_it_refuses_an_altered_token_or_another_purpose():
    token = make_token("confirm", {"s": 42})
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]

    assert read_token("confirm", altered) is None
    assert read_token("do-not-contact", token) is None
    assert read_token("confirm", "") is None
    assert read_token("confirm", "x" * 5000) is None


def test_it_refuses_an_expired_token():
    token = make_token("confirm", {"s": 42})

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert read_token("confirm", token) is None


# --- Opaque links: the address stays server-side ------------------------------------------


def readable(token: str) -> str:
    """Whatever a curious reader of the URL could decode from a token (Django's signed
    tokens are base64 of, possibly compressed, JSON)."""
    text = token
    for part in re.split(r"[.:]", token):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (ValueError, binascii.Error):
            continue
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        text += raw.decode("latin-1")
    return text


def test_it_keeps_the_address_out_of_the_link(db):
    token = link_issue(purpose="your_data", email="erin@alpha.test", lifetime=timedelta(hours=1))

    assert "erin" not in readable(token)
    link = PublicLink.objects.get()
    assert (link.email, link.purpose) == ("erin@alpha.test", "your_data")
    assert link.token_hash != token
    assert link_open("your_data", token).email == "erin@alpha.test"


def test_it_opens_a_link_only_for_its_purpose_and_lifetime(db):
    token = link_issue(purpose="your_data", email="erin@alpha.test", lifetime=timedelta(hours=1))

    assert link_open("do_not_contact", token) is None
    assert link_open("your_data", token[:-1]) is None
    assert link_open("your_data", "") is None
    assert link_open("your_data", "x" * 5000) is None
    # a token of the old, signed format opens nothing
    assert link_open("your_data", make_token("your-data", {"email": "erin@alpha.test"})) is None
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        assert link_open("your_data", token) is None


def test_it_uses_a_single_use_link_once(db):
    token = link_issue(purpose="erase", email="erin@alpha.test", lifetime=timedelta(hours=1))

    assert link_open("erase", token) is not None  # opening uses nothing
    assert link_use("erase", token).email == "erin@alpha.test"
    assert link_use("erase", token) is None
    assert link_open("erase", token) is None


def test_expired_links_are_purged_with_the_address_they_held(db):
    from privacy.runner import run_policies

    link_issue(purpose="your_data", email="old@alpha.test", lifetime=timedelta(hours=24))
    link_issue(purpose="do_not_contact", email="new@alpha.test", lifetime=timedelta(days=7))

    run_policies(names=["public_links"], now=timezone.now() + timedelta(days=2))

    assert list(PublicLink.objects.values_list("email", flat=True)) == ["new@alpha.test"]
