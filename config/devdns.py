"""An authoritative DNS server on loopback, for development and for the tests, so that
sending domains are checked over the wire as they are in production.

dnslib answers UDP and TCP queries from a zone filled with ``publish`` (the tests) or read
from a zone file (``make run``: ``python manage.py dev_dns publish <domain>`` writes the
records Missive shows into it). Missive's resolver is pointed at it through
``MISSIVE_DNS_SERVERS``. Names outside the zone get
NXDOMAIN, names in it without the asked type get an empty answer, as a real server
answers.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from dnslib import CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TTL = 60


def _txt(value: str) -> TXT:
    # A TXT record of more than 255 bytes is several strings, joined by the reader.
    data = value.encode()
    return TXT([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])


_RDATA = {
    "TXT": _txt,
    "CNAME": lambda value: CNAME(value),
    "A": lambda value: A(value),
    "PTR": lambda value: PTR(value),
    "MX": lambda value: MX(value.split()[-1], int(value.split()[0]) if " " in value else 10),
}


class _Zone(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self.failing: set[str] = set()  # names answered SERVFAIL, as a broken zone is

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        rtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, rtype))
            answers = list(self.records.get((name, rtype), ()))
            known = any(key[0] == name for key in self.records)
            cname = list(self.records.get((name, "CNAME"), ()))
            failing = name in self.failing
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not answers and cname and rtype != "CNAME":
            rtype, answers = "CNAME", cname
        for value in answers:
            reply.add_answer(
                RR(name + ".", getattr(QTYPE, rtype), rdata=_RDATA[rtype](value), ttl=TTL)
            )
        if not answers and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LoopbackDNS:
    """The server; ``publish`` and ``remove`` change what it answers at once."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.zone = _Zone()
        quiet = DNSLogger("-request,-reply,-truncated,-data,-recv,-send", prefix=False)
        self.udp = DNSServer(self.zone, address=host, port=port, logger=quiet)
        port = self.udp.server.server_address[1]
        self.tcp = DNSServer(self.zone, address=host, port=port, tcp=True, logger=quiet)
        self.host = host
        self.port = port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.udp.start_thread()
        self.tcp.start_thread()

    def stop(self) -> None:
        self.udp.stop()
        self.tcp.stop()

    def publish(self, name: str, rtype: str, value: str) -> None:
        with self.zone.lock:
            self.zone.records[(name.rstrip(".").lower(), rtype.upper())].append(value)

    def remove(self, name: str, rtype: str | None = None) -> None:
        name = name.rstrip(".").lower()
        with self.zone.lock:
            for key in list(self.zone.records):
                if key[0] == name and (rtype is None or key[1] == rtype.upper()):
                    del self.zone.records[key]

    def fail(self, name: str) -> None:
        """Answer SERVFAIL for ``name`` from now on (until ``clear``)."""
        with self.zone.lock:
            self.zone.failing.add(name.rstrip(".").lower())

    def clear(self) -> None:
        with self.zone.lock:
            self.zone.failing.clear()
            self.zone.records.clear()
            self.zone.queries.clear()

    @property
    def queries(self) -> list[tuple[str, str]]:
        with self.zone.lock:
            return list(self.zone.queries)


class ZoneFile:
    """The development zone kept in a text file, one record a line: ``name TYPE value``.
    ``python manage.py dev_dns`` writes it; the server of ``make run`` reads it again
    whenever it changes, so a published record is answered at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[tuple[str, str, str]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, rtype, value = [*line.split(None, 2), "", ""][:3]
            records.append((name.rstrip(".").lower(), rtype.upper(), value))
        return records

    def write(self, records: list[tuple[str, str, str]]) -> None:
        lines = ["# Missive's development DNS zone: name TYPE value (python manage.py dev_dns)"]
        lines += [f"{name} {rtype} {value}" for name, rtype, value in records]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n")

    def replace(self, name: str, rtype: str, value: str) -> None:
        """Publish ``value`` as the one record of that name and type."""
        name, rtype = name.rstrip(".").lower(), rtype.upper()
        kept = [r for r in self.read() if (r[0], r[1]) != (name, rtype)]
        self.write([*kept, (name, rtype, value)])

    def remove_under(self, domain: str) -> int:
        domain = domain.rstrip(".").lower()
        records = self.read()
        kept = [r for r in records if r[0] != domain and not r[0].endswith("." + domain)]
        self.write(kept)
        return len(records) - len(kept)


def serve_zone_file(path: Path, host: str, port: int) -> LoopbackDNS:
    """A server answering from the zone file, reloaded when the file changes."""
    server = LoopbackDNS(host, port)
    zone = ZoneFile(path)

    def reload() -> None:
        seen = -1.0
        while True:
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                mtime = 0.0
            if mtime != seen:
                seen = mtime
                with server.zone.lock:
                    server.zone.records.clear()
                    for name, rtype, value in zone.read():
                        server.zone.records[(name, rtype)].append(value)
            time.sleep(0.5)

    server.start()
    threading.Thread(target=reload, daemon=True, name="dev-dns-reload").start()
    return server
