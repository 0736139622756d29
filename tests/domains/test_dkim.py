"""DKIM keys and signatures, checked by two verifiers that share no code with Missive:
dkimpy in this process and Perl's Mail::DKIM in a subprocess, both reading the keys over
the wire from the loopback DNS server, and by RFC 8463's published example."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date

import dkim
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from dkim.canonicalization import Relaxed
from dns.resolver import NXDOMAIN, NoAnswer, Resolver
from hypothesis import given
from hypothesis import strategies as st

from config.devdns import LoopbackDNS
from domains.dkim import (
    ED25519_SHA256,
    RSA_SHA256,
    SIGNED_HEADERS,
    KeyUnavailable,
    Signer,
    SigningKey,
    _body_hash,
    _header_data,
    _relaxed_body,
    _sign_data,
    _signed_fields,
    _split,
    decrypt_private_key,
    encrypt_private_key,
    generate_key,
    new_selector,
)
from domains.models import DkimKey, SendingDomain

DOMAIN = "news.example.com"

has_nacl = importlib.util.find_spec("nacl") is not None
needs_nacl = pytest.mark.skipif(
    not has_nacl, reason="dkimpy checks Ed25519 with PyNaCl, which is not installed"
)
BOTH = [RSA_SHA256, pytest.param(ED25519_SHA256, marks=needs_nacl)]


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[bytes, str]]:
    """One key pair per algorithm for the module: RSA-2048 takes a while to make."""
    return {algorithm: generate_key(algorithm) for algorithm in (RSA_SHA256, ED25519_SHA256)}


@pytest.fixture
def signer(pairs, dns: LoopbackDNS) -> Signer:
    """A Signer with an RSA and an Ed25519 key of DOMAIN, both published in DNS."""
    keys = []
    for algorithm, (pem, public_key) in pairs.items():
        record = DkimKey(
            domain=SendingDomain(name=DOMAIN),
            selector=new_selector(algorithm, date(2026, 12, 1)),
            algorithm=algorithm,
            public_key=public_key,
        )
        dns.publish(record.record_name, "TXT", record.record_value)
        keys.append(SigningKey.load(DOMAIN, record.selector, algorithm, encrypt_private_key(pem)))
    return Signer(keys)


def message(
    headers: list[str] | None = None, body: bytes = b"Hello,\r\n\r\nThe spring issue.\r\n"
) -> bytes:
    lines = headers or [
        "From: Missive News <news@news.example.com>",
        "To: Alice <alice@example.org>",
        "Subject: The spring issue",
        "Date: Tue, 01 Dec 2026 09:00:00 +0000",
        "Message-ID: <c1.d42@news.example.com>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def with_headers(*extra: str, body: bytes = b"Hello.\r\n") -> bytes:
    return message(
        [
            "From: Missive News <news@news.example.com>",
            "To: Alice <alice@example.org>",
            "Subject: The spring issue",
            "Date: Tue, 01 Dec 2026 09:00:00 +0000",
            "Message-ID: <c1.d42@news.example.com>",
            *extra,
        ],
        body=body,
    )


LONG_BODY = b"".join(
    b"Line %06d of a long newsletter, =C3=A9 quoted-printable, padded to 76 chars.\r\n" % i
    for i in range(2700)
)
assert len(LONG_BODY) > 200_000

MESSAGES = {
    "plain": message(),
    "folded long headers": with_headers(
        "List-Unsubscribe: <https://missive.example.com/u/"
        + "a" * 60
        + ">,\r\n\t<mailto:unsubscribe+"
        + "b" * 40
        + "@news.example.com?subject=unsubscribe>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "List-Id: The spring issue\r\n <spring.news.example.com>",
        "Feedback-ID: c1:a42:missive",
        "Reply-To: Editors   <editors@example.com>",
    ),
    "encoded-word subject": message(
        [
            "From: =?utf-8?q?Caf=C3=A9_Missive?= <news@news.example.com>",
            "To: alice@example.org",
            "Subject: =?utf-8?b?TGEgbGV0dHJlIGR1IGNhZsOpIOKAlCDDqXTDqQ==?=\r\n"
            " =?utf-8?q?_num=C3=A9ro_42?=",
            "Date: Tue, 01 Dec 2026 09:00:00 +0000",
            "Message-ID: <c1.d43@news.example.com>",
        ]
    ),
    "repeated headers": with_headers(
        "Received: from a by b; Tue, 01 Dec 2026 09:00:00 +0000",
        "Received: from c by d; Tue, 01 Dec 2026 09:00:01 +0000",
        "To: Bob <bob@example.org>",
        "Comments: one",
        "Comments: two",
    ),
    "trailing blank lines and spaces": message(
        body=b"Hello  \t\r\n\r\n\tindented \t text \r\nlast line   \r\n\r\n \r\n\t\r\n\r\n"
    ),
    "empty body": message(body=b""),
    "only blank lines": message(body=b"\r\n\r\n\r\n"),
    "200 KB body": message(body=LONG_BODY),
}


def _txt_lookup(server: LoopbackDNS) -> Callable[..., bytes | None]:
    """dkimpy's key lookup, sent to the loopback server over UDP."""
    resolver = Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except (NXDOMAIN, NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def dkimpy_verifies(signed: bytes, server: LoopbackDNS, algorithm: str) -> bool:
    verifier = dkim.DKIM(signed)
    signatures = [v for name, v in verifier.headers if name.lower() == b"dkim-signature"]
    index = next(i for i, v in enumerate(signatures) if f"a={algorithm};".encode() in v)
    try:
        return bool(verifier.verify(idx=index, dnsfunc=_txt_lookup(server)))
    except dkim.DKIMException:  # a body hash mismatch is raised, not returned
        return False


def signature_fields(signed: bytes) -> list[bytes]:
    fields, _body = _split(signed)
    return [f for f in fields if f.lower().startswith(b"dkim-signature:")]


def tags(field: bytes) -> dict[str, str]:
    value = field.partition(b":")[2].decode()
    value = re.sub(r"\s+", "", value)
    return dict(tag.split("=", 1) for tag in value.rstrip(";").split(";"))


# Keys


def test_it_makes_a_2048_bit_rsa_key_whose_record_holds_its_public_key():
    pem, public_key = generate_key(RSA_SHA256)

    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    published = serialization.load_der_public_key(base64.b64decode(public_key))
    assert published.public_numbers() == private.public_key().public_numbers()


def test_it_makes_an_ed25519_key_whose_record_holds_the_raw_public_key():
    pem, public_key = generate_key(ED25519_SHA256)

    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = base64.b64decode(public_key)
    assert len(raw) == 32  # RFC 8463: the key itself, not a SubjectPublicKeyInfo
    assert raw == private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def test_it_refuses_an_unknown_algorithm():
    with pytest.raises(ValueError, match="unknown DKIM algorithm"):
        generate_key("rsa-sha1")
    with pytest.raises(ValueError, match="unknown DKIM algorithm"):
        new_selector("rsa-sha1", date(2026, 12, 1))


def test_it_shows_the_record_to_publish(pairs):
    domain = SendingDomain(name=DOMAIN)
    rsa_key = DkimKey(
        domain=domain, selector="mv202612a1b2c3", algorithm=RSA_SHA256, public_key="QUJD"
    )
    ed_key = DkimKey(
        domain=domain, selector="mv202612a1b2c3-ed", algorithm=ED25519_SHA256, public_key="REVG"
    )

    assert rsa_key.record_name == f"mv202612a1b2c3._domainkey.{DOMAIN}"
    assert rsa_key.record_value == "v=DKIM1; k=rsa; p=QUJD"
    assert ed_key.record_value == "v=DKIM1; k=ed25519; p=REVG"


def test_it_makes_readable_selectors_that_are_dns_labels():
    rsa_selector = new_selector(RSA_SHA256, date(2026, 12, 24))
    ed_selector = new_selector(ED25519_SHA256, date(2026, 12, 24))

    assert re.fullmatch(r"mv202612[0-9a-f]{6}", rsa_selector)
    assert re.fullmatch(r"mv202612[0-9a-f]{6}-ed", ed_selector)
    many = {new_selector(RSA_SHA256, date(2026, 12, 24)) for _ in range(200)}
    assert len(many) == 200


# Private keys at rest


def test_it_encrypts_a_private_key_and_decrypts_it_back(settings):
    settings.MISSIVE_DKIM_KEY_SECRET = ["first secret, long and random"]
    pem, _public_key = generate_key(ED25519_SHA256)

    token = encrypt_private_key(pem)

    assert b"PRIVATE KEY" not in token.encode()
    assert pem.split(b"\n")[1].decode() not in token
    assert decrypt_private_key(token) == pem


def test_it_still_decrypts_keys_made_under_the_old_secret_after_rotation(settings):
    settings.MISSIVE_DKIM_KEY_SECRET = ["old secret"]
    pem, _public_key = generate_key(ED25519_SHA256)
    old_token = encrypt_private_key(pem)

    # when the operator lists a new secret first and keeps the old one
    settings.MISSIVE_DKIM_KEY_SECRET = ["new secret", "old secret"]

    assert decrypt_private_key(old_token) == pem
    new_token = encrypt_private_key(pem)
    settings.MISSIVE_DKIM_KEY_SECRET = ["new secret"]
    assert decrypt_private_key(new_token) == pem  # new keys use the new secret
    with pytest.raises(KeyUnavailable):
        decrypt_private_key(old_token)


def test_it_derives_the_key_from_secret_key_when_no_secret_is_set(settings):
    settings.MISSIVE_DKIM_KEY_SECRET = []
    settings.SECRET_KEY = "the secret key"
    pem, _public_key = generate_key(ED25519_SHA256)
    token = encrypt_private_key(pem)

    settings.MISSIVE_DKIM_KEY_SECRET = ["the secret key"]
    assert decrypt_private_key(token) == pem
    settings.MISSIVE_DKIM_KEY_SECRET = []
    settings.SECRET_KEY = "another secret key"
    with pytest.raises(KeyUnavailable):
        decrypt_private_key(token)


def test_it_says_the_key_is_unavailable_without_showing_any_key_material(settings):
    settings.MISSIVE_DKIM_KEY_SECRET = ["the right secret"]
    pem, _public_key = generate_key(RSA_SHA256)
    token = encrypt_private_key(pem)
    settings.MISSIVE_DKIM_KEY_SECRET = ["a wrong secret"]

    with pytest.raises(KeyUnavailable) as caught:
        SigningKey.load(DOMAIN, "mv202612a1b2c3", RSA_SHA256, token)

    error = caught.value
    said = str(error) + repr(error)
    assert "MISSIVE_DKIM_KEY_SECRET" in said
    for material in (token, token[20:60], "a wrong secret", "the right secret"):
        assert material not in said
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_it_keeps_key_material_out_of_reprs(settings, pairs):
    pem, _public_key = pairs[RSA_SHA256]
    token = encrypt_private_key(pem)
    key = SigningKey.load(DOMAIN, "mv202612a1b2c3", RSA_SHA256, token)
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    numbers = key.private_key.private_numbers()

    shown = repr(key) + str(key) + repr(Signer([key])) + str(Signer([key]))

    assert "SigningKey(domain='news.example.com', selector='mv202612a1b2c3'" in shown
    for material in (token, pem.decode(), pem.split(b"\n")[1].decode(), str(numbers.d)):
        assert material not in shown
    assert "private" not in shown.lower()


def test_it_refuses_a_key_of_the_wrong_algorithm(pairs):
    pem, _public_key = pairs[ED25519_SHA256]

    with pytest.raises(ValueError, match="not an RSA key"):
        SigningKey.load(DOMAIN, "mv202612a1b2c3", RSA_SHA256, encrypt_private_key(pem))


# The signature field


def test_it_prepends_one_folded_signature_per_key_rsa_first(signer):
    original = MESSAGES["folded long headers"]

    signed = signer.sign(original, timestamp=1_796_000_000)

    rsa_field, ed_field = signature_fields(signed)
    head = signed[: len(signed) - len(original)]
    assert head == rsa_field + b"\r\n" + ed_field + b"\r\n"
    for line in head.split(b"\r\n")[:-1]:
        assert len(line) < 78
        assert not re.search(rb"[\r\n]", line)  # CRLF line ends only
    for field, algorithm in ((rsa_field, RSA_SHA256), (ed_field, ED25519_SHA256)):
        found = tags(field)
        assert set(found) == {"v", "a", "c", "d", "s", "t", "h", "bh", "b"}  # no l=
        assert found["a"] == algorithm
        assert found["c"] == "relaxed/relaxed"
        assert found["d"] == DOMAIN
        assert found["t"] == "1796000000"


def test_it_signs_the_fields_present_and_over_signs_from(signer):
    signed = signer.sign(MESSAGES["repeated headers"])

    h = tags(signature_fields(signed)[0])["h"].split(":")

    assert h == ["from", "from", "to", "to", "subject", "date", "message-id"]
    assert set(h) <= {name.lower() for name in SIGNED_HEADERS}


def test_it_refuses_a_message_without_from(signer):
    with pytest.raises(ValueError, match="without a From"):
        signer.sign(b"To: alice@example.org\r\nSubject: Hi\r\n\r\nHello.\r\n")


# Verification by dkimpy, keys read over the wire


@pytest.mark.parametrize("algorithm", BOTH)
@pytest.mark.parametrize("name", list(MESSAGES))
def test_it_passes_dkimpy(signer, dns, algorithm, name):
    signed = signer.sign(MESSAGES[name])

    assert dkimpy_verifies(signed, dns, algorithm)


@pytest.mark.parametrize("algorithm", BOTH)
def test_it_passes_after_receivers_refold_and_pad_whitespace(signer, dns, algorithm):
    # relaxed canonicalization: what relays do to whitespace does not break the signature
    signed = signer.sign(MESSAGES["plain"])
    relayed = signed.replace(b"Subject: The spring issue", b"Subject:  The\r\n\tspring  issue ")
    relayed = relayed.replace(b"The spring issue.\r\n", b"The  spring issue. \t\r\n\r\n")

    assert dkimpy_verifies(relayed, dns, algorithm)


@pytest.mark.parametrize("algorithm", BOTH)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"The spring issue.\r\n", b"The summer issue.\r\n"),
        (b"Subject: The spring issue", b"Subject: The summer issue"),
        (b"To: Alice <alice@example.org>", b"To: Mallory <mallory@example.org>"),
    ],
    ids=["body", "subject", "to"],
)
def test_it_fails_dkimpy_when_the_message_is_changed(signer, dns, algorithm, old, new):
    signed = signer.sign(MESSAGES["plain"])
    changed = signed.replace(old, new)
    assert changed != signed

    assert not dkimpy_verifies(changed, dns, algorithm)


@pytest.mark.parametrize("algorithm", BOTH)
def test_it_fails_dkimpy_when_a_second_from_is_added(signer, dns, algorithm):
    # dkimpy counts one From more than h= lists, whatever the signer did; Mail::DKIM
    # follows RFC 6376 to the letter, so its test below is the one that needs over-signing.
    signed = signer.sign(MESSAGES["plain"])
    sender = b"From: Missive News <news@news.example.com>"
    forged = signed.replace(sender, b"From: Your Bank <alerts@bank.example>\r\n" + sender)
    assert forged.count(b"From: ") == 2

    assert not dkimpy_verifies(forged, dns, algorithm)


def test_it_fails_dkimpy_when_the_published_key_is_another(signer, dns, pairs):
    signed = signer.sign(MESSAGES["plain"])
    dns.clear()
    rsa_key = signer.keys[0]
    _pem, other_public_key = generate_key(RSA_SHA256)
    dns.publish(
        f"{rsa_key.selector}._domainkey.{DOMAIN}", "TXT", f"v=DKIM1; k=rsa; p={other_public_key}"
    )

    assert not dkimpy_verifies(signed, dns, RSA_SHA256)


@given(st.lists(st.sampled_from([b" ", b"\t", b"  \t ", b"a", b"b c", b"\r\n"]), max_size=40))
def test_it_canonicalizes_bodies_as_dkimpy_does(pieces):
    body = b"".join(pieces)
    if body:
        body += b"\r\n"  # as SMTP delivers it

    assert _relaxed_body(body) == Relaxed.canonicalize_body(body)


# RFC 8463's example: a known answer for canonicalization and for both algorithms

RFC8463_SIGNED = b"""\
DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
""".replace(b"\n", b"\r\n")
RFC8463_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
RFC8463_ED25519_PUBLIC = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_RSA_PUBLIC = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY"
    "/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZy"
    "VYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
)
RFC8463_H = [b"from", b"to", b"subject", b"date", b"message-id", b"from", b"subject", b"date"]


def _rfc8463_parts() -> tuple[bytes, bytes, bytes, bytes]:
    """(signed header data for the Ed25519 field, its b=, the same for RSA): the data as
    Missive canonicalizes it, the b= as the RFC publishes it."""
    (ed_field, rsa_field, *fields), _body = _split(RFC8463_SIGNED)
    found = _signed_fields(fields)
    out = []
    for field in (ed_field, rsa_field):
        blank = re.sub(rb"(\sb=)[^;]*\Z", rb"\1", field)
        published = re.sub(rb"\s", b"", field[len(blank) :])
        out += [_header_data(found, RFC8463_H, blank), published]
    return out[0], out[1], out[2], out[3]


def test_it_hashes_the_body_of_rfc_8463s_example_as_published():
    _fields, body = _split(RFC8463_SIGNED)

    assert _body_hash(body) == b"2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="


def test_it_reproduces_rfc_8463s_ed25519_signature_byte_for_byte():
    # Ed25519 is deterministic: the same key over the same data gives the same signature,
    # so matching the RFC proves the canonicalization and the RFC 8463 hashing step.
    key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(RFC8463_ED25519_SEED))
    data, published, _rsa_data, _rsa_published = _rfc8463_parts()

    assert (
        base64.b64encode(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )
        == RFC8463_ED25519_PUBLIC.encode()
    )
    assert base64.b64encode(_sign_data(key, data)) == published


def test_it_canonicalizes_rfc_8463s_example_as_its_rsa_signer_did():
    _ed_data, _ed_published, data, published = _rfc8463_parts()
    public_key = serialization.load_der_public_key(base64.b64decode(RFC8463_RSA_PUBLIC))
    assert isinstance(public_key, rsa.RSAPublicKey)

    # raises InvalidSignature unless Missive's header data is what the RFC's signer signed
    public_key.verify(base64.b64decode(published), data, padding.PKCS1v15(), hashes.SHA256())


# Verification by Perl's Mail::DKIM, keys read over the wire

PERL = shutil.which("perl")
MAIL_DKIM_VERIFY = r"""
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

Mail::DKIM::DNS::resolver(
    Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $ARGV[0], recurse => 0)
);
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
my $message = do { local $/; <STDIN> };
$dkim->PRINT($message);
$dkim->CLOSE;
for my $signature ($dkim->signatures) {
    print join("\t", $signature->algorithm, $signature->result_detail), "\n";
}
print join("\t", "message", $dkim->result_detail), "\n";
"""


def _perl_has(module: str) -> bool:
    if PERL is None:
        return False
    return subprocess.run([PERL, f"-M{module}", "-e1"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def mail_dkim() -> bool:
    """Whether Mail::DKIM checks Ed25519 too (Debian 12's does not: RSA only)."""
    if not _perl_has("Mail::DKIM::Verifier"):
        if os.environ.get("CI"):
            pytest.fail("Perl's Mail::DKIM is missing: .ci/run installs libmail-dkim-perl")
        pytest.skip("Perl's Mail::DKIM is not installed (Debian package libmail-dkim-perl)")
    return _perl_has("Mail::DKIM::Algorithm::ed25519_sha256")


def mail_dkim_results(signed: bytes, server: LoopbackDNS) -> dict[str, str]:
    """Mail::DKIM's result for each signature, by algorithm, and for the message."""
    assert PERL is not None
    done = subprocess.run(
        [PERL, "-e", MAIL_DKIM_VERIFY, str(server.port)],
        input=signed,
        capture_output=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.decode().splitlines()
    return dict(line.split("\t", 1) for line in lines)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_it_passes_mail_dkim(signer, dns, mail_dkim, name):
    signed = signer.sign(MESSAGES[name])

    results = mail_dkim_results(signed, dns)

    assert results[RSA_SHA256] == "pass"
    if mail_dkim:
        assert results[ED25519_SHA256] == "pass"
    else:
        # a receiver that does not know Ed25519 skips that signature and uses the RSA one
        assert results[ED25519_SHA256].startswith("invalid (unsupported algorithm")
    assert results["message"] == "pass"
    assert (signer.keys[0].selector + f"._domainkey.{DOMAIN}", "TXT") in dns.queries


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        (b"The spring issue.\r\n", b"The summer issue.\r\n", "fail (body has been altered)"),
        (
            b"Subject: The spring issue",
            b"Subject: The summer issue",
            "fail (message has been altered)",
        ),
        (
            b"From: Missive News <news@news.example.com>",
            b"From: Your Bank <alerts@bank.example>\r\nFrom: Missive News <news@news.example.com>",
            "fail (message has been altered)",
        ),
    ],
    ids=["body", "subject", "second from"],
)
def test_it_fails_mail_dkim_when_the_message_is_changed(signer, dns, mail_dkim, old, new, detail):
    signed = signer.sign(MESSAGES["plain"])
    changed = signed.replace(old, new)
    assert changed != signed

    results = mail_dkim_results(changed, dns)

    assert results[RSA_SHA256].startswith(detail)
    if mail_dkim:
        assert results[ED25519_SHA256].startswith(detail)
    assert results["message"].startswith("fail")
