"""SPF (RFC 7208): the record that authorizes Missive, how it joins the record a domain
already has, and whether the record published authorizes the hosts Missive sends from.

The record found is evaluated as a receiver evaluates it, for every sending network at
once, include: and redirect= followed: a record that takes more than 10 DNS lookups, or
more than 2 that find nothing, is "wrong", since receivers give up on it (permerror)
however well it names Missive. It is "found" when it includes MISSIVE_SPF_INCLUDE or
passes every network of MISSIVE_SENDING_IPS. Pure logic over the lookups of domains.dns,
like domains.checks, which runs this check among the others of a domain.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import Any

from django.conf import settings

from domains.dns import address_records, mx_records, txt_records
from domains.records import RecordCheck, Status

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: terms that cause DNS lookups, across includes
SPF_VOID_LIMIT = 2  # lookups that find nothing


def _sending_networks() -> list[Network]:
    return [ipaddress.ip_network(ip.strip(), strict=False) for ip in settings.MISSIVE_SENDING_IPS]


def _shown(net: Network) -> str:
    return str(net.network_address if net.prefixlen == net.max_prefixlen else net)


def required_spf() -> str | None:
    """The SPF record that authorizes Missive, or None when no sending host is configured."""
    include = settings.MISSIVE_SPF_INCLUDE.strip()
    terms = [f"include:{include}"] if include else []
    terms += [f"ip{net.version}:{_shown(net)}" for net in _sending_networks()]
    return " ".join(["v=spf1", *terms, "~all"]) if terms else None


# -- the record found, as receivers evaluate it ------------------------------------------------

_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(
    r"^([+?~-]?)(all|include|a|mx|ptr|ip4|ip6|exists)(?::([^/]+))?(?:/(\d+))?(?://(\d+))?$",
    re.IGNORECASE,
)
_RESULTS = {"+": "pass", "": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


def spf_records(name: str) -> list[str]:
    return [r for r in txt_records(name) if re.match(r"v=spf1(\s|$)", r, re.IGNORECASE)]


def _is_end(term: str) -> bool:
    return bool(_MODIFIER.match(term)) or term.lower().lstrip("+-~?") == "all"


def merged_spf(existing: str, required: str) -> str:
    """``existing`` with the mechanisms of ``required`` it lacks, added before its ``all``
    (or its redirect=): a domain may have only one SPF record, so Missive's part joins the
    one there instead of replacing what else sends for the domain."""
    terms = existing.split()
    if not terms:
        return required
    have = {term.lower().lstrip("+") for term in terms[1:]}
    missing = [
        term
        for term in required.split()[1:]
        if not _is_end(term) and term.lower().lstrip("+") not in have
    ]
    end = next((i for i in range(1, len(terms)) if _is_end(terms[i])), len(terms))
    return " ".join(terms[:end] + missing + terms[end:])


class SpfError(Exception):
    """The record makes receivers give up (RFC 7208 permerror)."""


class _SpfEvaluation:
    """check_host() (RFC 7208) for each sending network at once. Every term up to ``all``
    is followed, as a receiver does for an address that matches none, so the lookups
    counted are the most a receiver makes."""

    def __init__(self, networks: list[Network]) -> None:
        self.networks = networks
        self.lookups = 0
        self.voids = 0
        self.includes: set[str] = set()

    def record(self, domain: str) -> str:
        records = spf_records(domain)
        if len(records) != 1:
            raise SpfError(f"{domain} has {len(records) or 'no'} SPF records")
        return records[0]

    def _lookup(self) -> None:
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            raise SpfError(
                f"it takes more than {SPF_LOOKUP_LIMIT} DNS lookups (include:, a, mx, ptr, "
                "exists, redirect=), the most receivers make"
            )

    def _void(self, found: list[Any]) -> list[Any]:
        self.voids += not found
        if self.voids > SPF_VOID_LIMIT:
            raise SpfError(f"more than {SPF_VOID_LIMIT} of its lookups find nothing")
        return found

    def _covered(self, addresses: list[str], cidr4: str | None, cidr6: str | None) -> list[bool]:
        try:
            nets = [
                ipaddress.ip_network(
                    f"{a}/{(cidr4 if ':' not in a else cidr6) or ''}".rstrip("/"), False
                )
                for a in addresses
            ]
        except ValueError as error:
            raise SpfError(f"a prefix length that is not one ({error})") from error
        return [any(_within(n, net) for net in nets) for n in self.networks]

    def check(self, domain: str, record: str) -> list[str | None]:
        """Per network: pass, fail, softfail or neutral, or None when nothing matched."""
        results: list[str | None] = [None] * len(self.networks)
        redirect = None
        for term in record.split()[1:]:
            if modifier := _MODIFIER.match(term):
                if modifier[1].lower() == "redirect":
                    redirect = modifier[2]
                continue
            if not (match := _MECHANISM.match(term)):
                raise SpfError(f"{domain} has a term receivers do not know: {term}")
            qualifier, kind, target, cidr4, cidr6 = match.groups()
            kind, target = kind.lower(), target or domain
            hits = self._matches(kind, target, cidr4, cidr6, qualifier)
            results = [
                r or (_RESULTS[qualifier] if hit else None)
                for r, hit in zip(results, hits, strict=True)
            ]
            if kind == "all":
                return results  # terms after all, and redirect=, are never reached
        if redirect and "%" not in redirect:
            self._lookup()
            inner = self.check(redirect.lower(), self.record(redirect))
            return [r or i for r, i in zip(results, inner, strict=True)]
        return results

    def _matches(
        self, kind: str, target: str, cidr4: str | None, cidr6: str | None, qualifier: str
    ) -> list[bool]:
        none = [False] * len(self.networks)
        if kind == "all":
            return [True] * len(self.networks)
        if kind in ("ip4", "ip6"):
            try:
                net = ipaddress.ip_network(f"{target}/{cidr4 or cidr6 or ''}".rstrip("/"), False)
            except ValueError as error:
                raise SpfError(f"{kind}:{target} is not a network") from error
            return [_within(n, net) for n in self.networks]
        self._lookup()
        if "%" in target or kind == "ptr":  # macros and ptr depend on the connecting host
            return none
        if kind == "include":
            if qualifier in ("", "+"):
                self.includes.add(target.lower())
            return [r == "pass" for r in self.check(target.lower(), self.record(target))]
        if kind == "exists":
            return [bool(self._void(address_records(target)))] * len(self.networks)
        if kind == "a":
            return self._covered(self._void(address_records(target)), cidr4, cidr6)
        exchanges = self._void(mx_records(target))
        if len(exchanges) > 10:
            raise SpfError(f"the mx of {target} names more than 10 hosts")
        addresses = [a for _, host in exchanges for a in address_records(host)]
        return self._covered(addresses, cidr4, cidr6)


def _within(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def spf_check(blank: RecordCheck) -> RecordCheck:
    envelope, required = blank.name, required_spf()
    include = settings.MISSIVE_SPF_INCLUDE.strip().lower()
    networks = _sending_networks()
    found = spf_records(envelope)
    expected = ""
    for record in [*found, *([required] if required else [])]:
        expected = merged_spf(expected, record)  # one record, the first one's order kept
    check = replace(blank, expected=expected, found=found)
    if not found:
        if not required:
            return check.says(Status.MISSING, f"{envelope} has no SPF record (v=spf1).")
        return check.says(Status.MISSING, f"Publish this TXT record at {envelope}: {required}")
    if len(found) > 1:
        return check.says(
            Status.WRONG,
            f"{envelope} has {len(found)} SPF records, which "
            f"receivers treat as an error. Replace them with one: {expected}",
        )
    evaluation = _SpfEvaluation(networks)
    try:
        results = evaluation.check(envelope, found[0])
    except SpfError as error:
        return check.says(Status.WRONG, f"Found {found[0]}, which receivers reject: {error}.")
    if not required:
        return check.says(
            Status.FOUND,
            f"{envelope} has an SPF record. MISSIVE_SPF_INCLUDE and "
            "MISSIVE_SENDING_IPS are not set, so SPF cannot be checked against "
            "the hosts Missive sends from.",
        )
    if include in evaluation.includes or (networks and all(r == "pass" for r in results)):
        return check.says(Status.FOUND, f"{envelope} authorizes Missive: {found[0]}")
    lacking = [f"include:{include}"] if include else []
    lacking += [
        f"{_shown(n)} ({r or 'neutral'})"
        for n, r in zip(networks, results, strict=True)
        if r != "pass"
    ]
    return check.says(
        Status.WRONG,
        f"Found {found[0]}, which does not include or authorize "
        f"{' or '.join(lacking)}. Replace it with: {expected}",
    )
