from datetime import timedelta

import time_machine
from django.utils import timezone

from contacts.tokens import make_token, read_token


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
