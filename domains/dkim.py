"""DKIM keys and signatures for sending domains (RFC 6376, RFC 8463 for Ed25519).

Guarantees:

- Private keys are stored encrypted (Fernet, keys derived from MISSIVE_DKIM_KEY_SECRET or,
  when that is empty, from SECRET_KEY). No repr, str or exception of this module shows key
  material, so a key cannot leak into logs or error reports.
- Every message is signed with relaxed/relaxed canonicalization and without l=, so nothing
  can be appended to a signed body; From is over-signed, so no second From can be added.
- Signing is OpenSSL through ``cryptography``: the key is parsed once per ``Signer``, and
  the body is canonicalized with a few whole-body bytes operations, never line by line in
  Python, so signing stays a small part of the cost of a send.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)
RSA_KEY_BITS = 2048

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# The fields Missive signs when a message has them. Each is listed in h= as often as it
# occurs; From once more, so that a From added above the signed one breaks the signature.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)
_SIGNED = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)
_SIGNED_SET = frozenset(_SIGNED)

# Under 78 characters a line, CRLF excluded (RFC 5322 §2.1.1).
_LINE = 76
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")

# Used to derive the Fernet keys: changing either would make every stored key unreadable.
_HKDF_SALT = b"missive dkim private keys"
_HKDF_INFO = b"fernet key v1"


class KeyUnavailable(Exception):
    """A stored DKIM private key that no configured secret decrypts.

    Raised rather than InvalidToken so that callers hold a domain's mail with a clear
    reason (MISSIVE_DKIM_KEY_SECRET or SECRET_KEY changed without keeping the old one).
    """


# Keys and records


def generate_key(algorithm: str) -> tuple[bytes, str]:
    """A new key pair: (the private key as PKCS#8 PEM, the p= value of its DNS record).

    RSA's p= is the SubjectPublicKeyInfo DER (RFC 6376 §3.6.1); Ed25519's is the raw
    32-byte public key (RFC 8463 §4), both base64.
    """
    private: PrivateKey
    if algorithm == RSA_SHA256:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == ED25519_SHA256:
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raise ValueError(f"unknown DKIM algorithm {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, base64.b64encode(public).decode("ascii")


def new_selector(algorithm: str, today: date) -> str:
    """A selector such as ``mv202612a1b2c3`` (``mv202612a1b2c3-ed`` for Ed25519).

    The month says when the key was made, which helps whoever reads the DNS zone; the
    random part keeps two keys (two accounts adding the same name, or a rotation within a
    month) from meeting at one DNS name.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown DKIM algorithm {algorithm!r}")
    suffix = "-ed" if algorithm == ED25519_SHA256 else ""
    return f"mv{today:%Y%m}{secrets.token_hex(3)}{suffix}"


# Private keys at rest


def _secrets() -> tuple[str, ...]:
    configured = tuple(s for s in settings.MISSIVE_DKIM_KEY_SECRET if s)
    return configured or (settings.SECRET_KEY,)


@lru_cache(maxsize=8)
def _fernet(secret_values: tuple[str, ...]) -> MultiFernet:
    keys = []
    for secret in secret_values:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO
        ).derive(secret.encode("utf-8"))
        keys.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(keys)


def encrypt_private_key(pem: bytes) -> str:
    """The PEM encrypted under the first secret of MISSIVE_DKIM_KEY_SECRET."""
    return _fernet(_secrets()).encrypt(pem).decode("ascii")


def decrypt_private_key(token: str) -> bytes:
    """The PEM back, trying each configured secret in turn (rotation keeps the old ones)."""
    try:
        return _fernet(_secrets()).decrypt(token)
    except InvalidToken:
        # The token and the secrets stay out of the message and of the traceback.
        raise KeyUnavailable(
            "No secret in MISSIVE_DKIM_KEY_SECRET (or SECRET_KEY when it is empty) decrypts "
            "this DKIM private key; list the secret it was made under after the new one."
        ) from None


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A DKIM key ready to sign: decrypted and parsed once, then used for many messages."""

    domain: str
    selector: str
    algorithm: str
    private_key: PrivateKey = field(repr=False)

    @classmethod
    def load(
        cls, domain: str, selector: str, algorithm: str, encrypted_private_key: str
    ) -> SigningKey:
        """From a stored key (DkimKey's fields). Raises KeyUnavailable or ValueError."""
        domain = domain.rstrip(".").lower()
        if not _DOMAIN.match(domain):
            raise ValueError(f"d= must be a domain in A-labels, not {domain!r}")
        if not _SELECTOR.match(selector):
            raise ValueError(f"s= must be one DNS label, not {selector!r}")
        pem = decrypt_private_key(encrypted_private_key)
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except ValueError:
            raise ValueError(f"the private key of {selector} is not a PEM key") from None
        if algorithm == RSA_SHA256:
            if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 1024:
                raise ValueError(f"{selector} is not an RSA key of 1024 bits or more")
        elif algorithm == ED25519_SHA256:
            if not isinstance(private, ed25519.Ed25519PrivateKey):
                raise ValueError(f"{selector} is not an Ed25519 key")
        else:
            raise ValueError(f"unknown DKIM algorithm {algorithm!r}")
        return cls(domain=domain, selector=selector, algorithm=algorithm, private_key=private)


# Canonicalization (RFC 6376 §3.4.2 and §3.4.4)

_FIELD_BREAK = re.compile(rb"\r\n(?![ \t])")
_WSP_RUN = re.compile(rb"[ \t]+")
_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")
# A literal prefix lets the regex engine skip ahead quickly: far faster on a large body
# than a [ \t]+ class that starts a match attempt at every single space.
_SPACES = re.compile(rb"  +")


def _split(message: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (folded, as they are) and the body."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message.removesuffix(b"\r\n"), b""
    else:
        head, body = message[:end], message[end + 4 :]
    return _FIELD_BREAK.split(head), body


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.rstrip(b" \t").lower() + b":" + value


def _relaxed_body(body: bytes) -> bytes:
    # SMTP ends every message with CRLF, so the receiver sees one even if it is missing here.
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    # Any run of WSP becomes one space, then the space left at a line's end goes. Tabs
    # turned to spaces first give the same result, with plain bytes operations.
    body = body.translate(_TAB_TO_SPACE)
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[: end + 2] if end else b""


def _body_hash(body: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())


def _signed_fields(fields: Iterable[bytes]) -> dict[bytes, list[bytes]]:
    """Canonicalized instances of each signed field, top to bottom."""
    found: dict[bytes, list[bytes]] = {}
    for raw in fields:
        name, colon, value = raw.partition(b":")
        key = name.rstrip(b" \t").lower()
        if colon and key in _SIGNED_SET:
            found.setdefault(key, []).append(_relaxed_header(name, value) + b"\r\n")
    return found


def _header_data(
    found: dict[bytes, list[bytes]], names: Sequence[bytes], signature: bytes
) -> bytes:
    """What is signed: the fields named in h=, each instance taken from the bottom up
    (RFC 6376 §5.4.2; a name listed more often than it occurs adds nothing), then the
    DKIM-Signature field itself with an empty b=, relaxed and without its CRLF."""
    left = {key: list(values) for key, values in found.items()}
    parts = [left[name].pop() for name in names if left.get(name)]
    name, _colon, value = signature.partition(b":")
    parts.append(_relaxed_header(name, value))
    return b"".join(parts)


def _sign_data(private_key: PrivateKey, data: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        # RFC 8463 §3: Ed25519 (pure) over the SHA-256 hash of the header data.
        return private_key.sign(hashlib.sha256(data).digest())
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


# Signing


def _fold(lines: list[bytes], chunks: Sequence[bytes], space: bool) -> None:
    """Add a tag's chunks to the field's lines, starting a new line where one would pass
    _LINE. The first chunk follows a space; the others (h= after a colon) follow nothing."""
    for i, chunk in enumerate(chunks):
        glue = b" " if space and i == 0 else b""
        if len(lines[-1]) + len(glue) + len(chunk) <= _LINE:
            lines[-1] += glue + chunk
        else:
            lines.append(b" " + chunk)


class Signer:
    """Signs messages with one or more keys of a domain: RSA first, then Ed25519, so that
    receivers that do not know Ed25519 (RFC 8463 is young) still find a signature they can
    check at the top."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("a Signer needs at least one key")
        self.keys = sorted(keys, key=lambda k: ALGORITHMS.index(k.algorithm))
        # The tags before t=, fixed per key.
        self._tags = [
            [
                b"v=1;",
                b"a=" + k.algorithm.encode("ascii") + b";",
                b"c=relaxed/relaxed;",
                b"d=" + k.domain.encode("ascii") + b";",
                b"s=" + k.selector.encode("ascii") + b";",
            ]
            for k in self.keys
        ]

    def __repr__(self) -> str:
        return f"Signer({self.keys!r})"

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The message with a DKIM-Signature field per key prepended.

        ``message`` has CRLF line ends, its header fields folded as they will be sent.
        ``timestamp`` is the t= value, now when not given.
        """
        fields, body = _split(message)
        found = _signed_fields(fields)
        if b"from" not in found:
            raise ValueError("a message without a From field cannot be DKIM-signed")
        names = [
            name
            for name in _SIGNED
            for _ in range(len(found.get(name, ())) + (1 if name == b"from" else 0))
        ]
        h_chunks = [name + b":" for name in names]
        h_chunks[0] = b"h=" + h_chunks[0]
        h_chunks[-1] = h_chunks[-1][:-1] + b";"
        t = b"t=%d;" % (int(time.time()) if timestamp is None else timestamp)
        bh = b"bh=" + _body_hash(body) + b";"

        out = []
        for key, tags in zip(self.keys, self._tags, strict=True):
            lines = [b"DKIM-Signature:"]
            for tag in (*tags, t):
                _fold(lines, [tag], space=True)
            _fold(lines, h_chunks, space=True)
            _fold(lines, [bh], space=True)
            _fold(lines, [b"b="], space=True)
            data = _header_data(found, names, b"\r\n".join(lines))
            b = base64.b64encode(_sign_data(key.private_key, data))
            room = max(_LINE - len(lines[-1]), 0)
            lines[-1] += b[:room]
            lines.extend(b" " + b[i : i + _LINE - 1] for i in range(room, len(b), _LINE - 1))
            out.append(b"\r\n".join(lines) + b"\r\n")
        return b"".join(out) + message
