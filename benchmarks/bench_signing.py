"""DKIM signing: the SMTP send of a campaign's messages, signed against unsigned.

The same messages of the benchmark newsletter (about 20 KiB each, personalized, tracked)
are written per recipient as a worker writes them (rendering, links, MIME) and sent by
``SmtpTransport`` over one connection, each signed on the transport's thread while the
one ahead of it is on the wire, to the SMTP sink in a process of its own: without a
signature, signed by the From domain's RSA-2048 key, and by RSA-2048 and Ed25519
together, in alternating rounds so the machine's noise falls on all alike. The target:
signing costs under 15% of send throughput (the signed rate at least 0.85 of the
unsigned one). The SMTP send alone, the messages already written, is shown too: there
signing is a larger share, since writing the message is most of a worker's work.

    make bench BENCH_ARGS="signing"
"""

from __future__ import annotations

import time
from dataclasses import replace

from django.test import override_settings

from benchmarks.bench_sending import FROM_EMAIL, _make_world, smtp_sink
from benchmarks.harness import BASE_URL, Figure, median, scratch_database

MESSAGES = 1000
ROUNDS = 5


def run() -> list[Figure]:
    from campaigns.messages import MessageFactory, Outgoing, Recipient
    from campaigns.models import Link
    from campaigns.transports import Result, SmtpTransport
    from contacts.models import Contact
    from domains import dkim
    from domains.models import DkimKey, SendingDomain
    from domains.selectors import signer_for

    with scratch_database():
        world = _make_world(MESSAGES)
        with smtp_sink() as sink, override_settings(MISSIVE_BASE_URL=BASE_URL):
            positions = dict(
                Link.objects.filter(campaign=world.campaign).values_list("url", "position")
            )
            factory = MessageFactory(world.campaign, positions=positions)
            rsa_signer = factory.signer
            assert rsa_signer is not None, "the From domain must be verified"
            domain = SendingDomain.objects.get(name=FROM_EMAIL.rpartition("@")[2])
            private_pem, public = dkim.generate_key(DkimKey.Algorithm.ED25519)
            DkimKey.objects.create(
                domain=domain,
                selector="bench-ed",
                algorithm=DkimKey.Algorithm.ED25519,
                private_key=dkim.encrypt_private_key(private_pem),
                public_key=public,
                state=DkimKey.State.ACTIVE,
            )
            both_signer = signer_for(domain)
            contacts = Contact.objects.filter(account=world.account).order_by("pk")[:MESSAGES]
            recipients = [
                Recipient(
                    delivery_id=20_000_000 + n,
                    email=c.email,
                    first_name=c.first_name,
                    last_name=c.last_name,
                    attributes=c.attributes,
                )
                for n, c in enumerate(contacts)
            ]
            outgoing = [factory.build(r) for r in recipients]
            transport = SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": sink.port})

            def send_all(signer: dkim.Signer | None, *, build: bool) -> float:
                """Messages a second, as a worker sends them: each written per recipient
                (``build``) or taken already written, and handed to ``prepare`` (which
                signs it on the transport's thread) before the one ahead of it is sent."""
                factory.signer = signer

                def written(n: int) -> Outgoing:
                    message = factory.build(recipients[n]) if build else replace(outgoing[n])
                    transport.prepare(factory, message)
                    return message

                transport.open()
                started = time.perf_counter()
                following = written(0)
                for n in range(len(recipients)):
                    message = following
                    if n + 1 < len(recipients):
                        following = written(n + 1)
                    assert transport.send(factory, message).outcome == Result.SENT
                elapsed = time.perf_counter() - started
                transport.close()
                return len(outgoing) / elapsed

            rates: dict[str, list[float]] = {
                f"{kind}-{build}": [] for kind in ("none", "rsa", "both") for build in (1, 0)
            }
            send_all(None, build=True)  # warm up the connection path and the sink
            for _ in range(ROUNDS):
                for build in (1, 0):
                    signers = (("none", None), ("rsa", rsa_signer), ("both", both_signer))
                    for kind, signer in signers:
                        rates[f"{kind}-{build}"].append(send_all(signer, build=bool(build)))
            data = factory.as_bytes(outgoing[0])
            started = time.perf_counter()
            for _ in range(500):
                rsa_signer.sign(data)
            sign_ms = (time.perf_counter() - started) / 500 * 1000
            print(
                f"   {len(outgoing)} messages of {len(data) / 1024:.1f} KiB a round, "
                f"{ROUNDS} rounds; RSA-2048 signing alone: {sign_ms:.2f} ms a message"
            )
    unsigned, bare = median(rates["none-1"]), median(rates["none-0"])
    return [
        Figure(
            "write + send, DKIM-signed (RSA-2048)",
            median(rates["rsa-1"]),
            "write + send, unsigned",
            unsigned,
            "msg/s",
            target="ratio >= 0.85",
        ),
        Figure(
            "write + send, RSA-2048 + Ed25519",
            median(rates["both-1"]),
            "write + send, unsigned",
            unsigned,
            "msg/s",
            target="ratio >= 0.85",
        ),
        Figure(
            "SMTP send only, signed (RSA-2048)",
            median(rates["rsa-0"]),
            "SMTP send only, unsigned",
            bare,
            "msg/s",
        ),
    ]
