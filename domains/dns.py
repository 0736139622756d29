"""DNS lookups for sending domains, asked over the wire.

The resolver is built from settings on each call (MISSIVE_DNS_SERVERS, MISSIVE_DNS_TIMEOUT),
so that a change of servers applies at once and each check sees the records as they are
now. An answer that says a record does not exist (NXDOMAIN, or the name without that
type) is an empty list; a server that cannot answer (timeout, SERVFAIL, refused, no server
configured) raises ``DnsUnavailable``, so that a check says "could not look up" rather
than "missing", and a domain is never failed because a resolver was down.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import cache

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename
from django.conf import settings
from publicsuffixlist import PublicSuffixList


class DnsUnavailable(Exception):
    """The DNS could not say whether a record exists."""


def _server(entry: str) -> dns.nameserver.Do53Nameserver:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    host, port = entry.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # A server named by host name: the machine's resolver finds it once per call.
        try:
            host = str(socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0])
        except OSError as error:
            raise DnsUnavailable(f"the DNS server {entry} cannot be found ({error})") from error
    return dns.nameserver.Do53Nameserver(host, port)


def _resolver() -> dns.resolver.Resolver:
    servers = [entry for entry in settings.MISSIVE_DNS_SERVERS if entry.strip()]
    try:
        resolver = dns.resolver.Resolver(configure=not servers)
    except dns.resolver.NoResolverConfiguration as error:
        raise DnsUnavailable("no DNS server is configured") from error
    if servers:
        resolver.nameservers = [_server(entry) for entry in servers]
    timeout = float(settings.MISSIVE_DNS_TIMEOUT)
    resolver.timeout = timeout
    resolver.lifetime = timeout
    # Exactly the name asked: a search domain must never turn "missing" into "found".
    resolver.use_search_by_default = False
    return resolver


def _answer(name: str | dns.name.Name, rtype: str) -> dns.resolver.Answer | None:
    """The answer, or None when the record does not exist."""
    try:
        return _resolver().resolve(name, rtype, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.resolver.NoNameservers as error:
        raise DnsUnavailable(f"no DNS server answered for {name} ({rtype}): SERVFAIL") from error
    except dns.exception.Timeout as error:
        raise DnsUnavailable(f"the DNS lookup of {name} ({rtype}) timed out") from error
    except (dns.resolver.YXDOMAIN, dns.name.LabelTooLong, dns.name.NameTooLong) as error:
        raise DnsUnavailable(f"{name} cannot be looked up: {error}") from error
    except (dns.exception.DNSException, OSError) as error:
        raise DnsUnavailable(f"the DNS lookup of {name} ({rtype}) failed: {error}") from error


def txt_records(name: str) -> list[str]:
    """Each TXT record at ``name``, its strings joined (a long DKIM key is several)."""
    answer = _answer(name, "TXT")
    if answer is None:
        return []
    return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer]


def mx_records(name: str) -> list[tuple[int, str]]:
    """(preference, exchange) pairs, lowest preference first; exchanges without the dot."""
    answer = _answer(name, "MX")
    if answer is None:
        return []
    pairs = [
        (int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True).lower())
        for rdata in answer
    ]
    return sorted(pairs)


def address_records(name: str) -> list[str]:
    """The IPv4 then IPv6 addresses of ``name``."""
    addresses: list[str] = []
    for rtype in ("A", "AAAA"):
        answer = _answer(name, rtype)
        if answer is not None:
            addresses.extend(rdata.to_text() for rdata in answer)
    return addresses


def ptr_names(ip: str) -> list[str]:
    """The names the reverse DNS gives for ``ip``, without the final dot."""
    try:
        reverse = dns.reversename.from_address(ip)
    except (ValueError, dns.exception.SyntaxError) as error:
        raise ValueError(f"{ip!r} is not an IP address") from error
    answer = _answer(reverse, "PTR")
    if answer is None:
        return []
    return [rdata.target.to_text(omit_final_dot=True).lower() for rdata in answer]


@cache
def _public_suffixes() -> PublicSuffixList:
    # The list shipped inside the package: read once, never fetched.
    return PublicSuffixList()


def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower()


def organizational_domain(name: str) -> str:
    """DMARC's organizational domain (RFC 7489 3.2): the public suffix plus one label.

    A name that is itself a public suffix is its own organizational domain; an unknown
    top-level domain (``.test``) counts as a public suffix, as receivers count it."""
    name = _normal(name)
    return _public_suffixes().privatesuffix(name) or name


def aligned(a: str, b: str, *, strict: bool) -> bool:
    """RFC 7489 identifier alignment: the same name (strict), or the same organizational
    domain (relaxed)."""
    a, b = _normal(a), _normal(b)
    if strict:
        return a == b
    return organizational_domain(a) == organizational_domain(b)
