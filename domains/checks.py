"""What a sending domain must publish, and whether it does: DKIM, SPF, DMARC, alignment,
the bounce domain, and the host Missive sends through.

Pure logic over the lookups of domains.dns: no models, no database, so the same checks
run in a task, in a page and in the tests. Each check ends in one of four states and a
message saying what is wrong and what to do. "unavailable" means the DNS could not answer:
a domain is never called broken because a resolver was down.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.mail.utils import DNS_NAME

from domains.dns import (
    DnsUnavailable,
    address_records,
    aligned,
    mx_records,
    organizational_domain,
    ptr_names,
    txt_records,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: terms that cause DNS lookups, across includes
SPF_VOID_LIMIT = 2  # lookups that find nothing


class Status(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    WRONG = "wrong"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Record:
    """A DNS record for the customer to publish."""

    purpose: str  # dkim, spf, dmarc, bounce_mx
    name: str
    rtype: str
    value: str
    note: str = ""


@dataclass
class RecordCheck:
    key: str  # dkim:<selector>, spf, dmarc, bounce_mx, address, ptr:<ip>, starttls
    label: str
    name: str
    rtype: str
    status: Status = Status.UNAVAILABLE  # until the check concludes (says)
    expected: str = ""
    found: list[str] = field(default_factory=list)
    message: str = ""

    def says(self, status: Status, message: str, **changes: Any) -> RecordCheck:
        """This check concluded: ``status``, and what to do about it."""
        return replace(self, status=status, message=message, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordCheck:
        return cls(**{**data, "status": Status(data["status"]), "found": list(data["found"])})


def _unavailable(blank: RecordCheck, error: DnsUnavailable) -> RecordCheck:
    message = f"Could not look up {blank.name}: {error}. Missive will check again."
    return blank.says(Status.UNAVAILABLE, message)


def _looked_up(blank: RecordCheck, check: Callable[[RecordCheck], RecordCheck]) -> RecordCheck:
    """``check(blank)``, or "unavailable" when the DNS cannot answer: never "missing"."""
    try:
        return check(blank)
    except DnsUnavailable as error:
        return _unavailable(blank, error)


@dataclass(frozen=True)
class DkimSpec:
    selector: str
    record_value: str  # v=DKIM1; k=…; p=…


@dataclass
class Alignment:
    """Whether the domains a receiver compares with the From domain line up (RFC 7489)."""

    from_domain: str = ""
    dkim_domain: str = ""  # d= of the signature: the sending domain itself
    envelope_domain: str = ""  # the Return-Path domain, which SPF authenticates
    dkim_relaxed: bool = False
    dkim_strict: bool = False
    spf_relaxed: bool = False
    spf_strict: bool = False
    adkim: str = "r"  # the DMARC record's modes, r when it has none
    aspf: str = "r"
    dkim_aligned: bool = False  # under adkim
    spf_aligned: bool = False  # under aspf
    dkim_passes: bool = False  # aligned and a DKIM key found
    spf_passes: bool = False  # aligned and the SPF record authorizes Missive
    dmarc_can_pass: bool = False
    message: str = ""


@dataclass
class DomainReport:
    domain: str
    checks: list[RecordCheck]
    alignment: Alignment
    dmarc: dict[str, str] | None
    # What to publish, SPF merged into the record found (DMARC left out when found).
    records: list[Record] = field(default_factory=list)
    # Set when another account verified the domain first.
    conflict: str = ""

    def check(self, key: str) -> RecordCheck | None:
        return next((check for check in self.checks if check.key == key), None)

    def dkim_verified(self, selector: str) -> bool:
        check = self.check(f"dkim:{selector}")
        return check is not None and check.status == Status.FOUND

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for check in data["checks"]:
            check["status"] = str(check["status"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DomainReport:
        """The report stored on SendingDomain.report; an empty dict gives an empty report."""
        known = {f.name for f in fields(Alignment)}
        return cls(
            domain=data.get("domain", ""),
            checks=[RecordCheck.from_dict(check) for check in data.get("checks", [])],
            alignment=Alignment(
                **{k: v for k, v in data.get("alignment", {}).items() if k in known}
            ),
            dmarc=data.get("dmarc"),
            records=[Record(**record) for record in data.get("records", [])],
            conflict=data.get("conflict", ""),
        )


# -- the envelope sender ----------------------------------------------------------------------


def envelope_domain(domain: str) -> str:
    """The domain of the SMTP envelope sender (Return-Path): what SPF authenticates."""
    return_path = settings.MISSIVE_RETURN_PATH.strip()
    if not return_path:
        return domain
    return return_path.replace("{domain}", domain).rpartition("@")[2].lower()


def bounce_domain(domain: str) -> str | None:
    """The domain's own bounce domain, when the return path has one per domain."""
    return envelope_domain(domain) if "{domain}" in settings.MISSIVE_RETURN_PATH else None


def _spf_is_customers(domain: str) -> bool:
    # A fixed platform return path on another organization: its SPF is the operator's.
    return_path = settings.MISSIVE_RETURN_PATH.strip()
    return (
        not return_path
        or "{domain}" in return_path
        or aligned(envelope_domain(domain), domain, strict=False)
    )


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


# -- SPF ---------------------------------------------------------------------------------------

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


def _spf_check(blank: RecordCheck) -> RecordCheck:
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


# -- DKIM, DMARC, bounce MX ---------------------------------------------------------------------


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def _dkim_check(blank: RecordCheck) -> RecordCheck:
    want = _tags(blank.expected)
    key, kind = "".join(want.get("p", "").split()), want.get("k", "rsa").lower()
    check = replace(blank, found=txt_records(blank.name))
    problems = []
    for record in check.found:
        tags = _tags(record)
        if tags.get("v", "DKIM1") != "DKIM1" or "p" not in tags:
            problems.append("is not a DKIM key (v=DKIM1; k=…; p=…)")
        elif not tags["p"]:
            problems.append("revokes the key (empty p=)")
        elif "".join(tags["p"].split()) != key:
            problems.append("holds another key than the one Missive signs with")
        elif tags.get("k", "rsa").lower() != kind:
            problems.append(f"says k={tags.get('k', 'rsa')} where the key is {kind}")
        else:
            return check.says(Status.FOUND, f"The DKIM key is published at {blank.name}.")
    if not problems:
        return check.says(
            Status.MISSING, f"Publish this TXT record at {blank.name}: {blank.expected}"
        )
    return check.says(
        Status.WRONG,
        f"The TXT record at {blank.name} {'; '.join(problems)}. Replace it with: {blank.expected}",
    )


def dmarc_records(name: str) -> list[str]:
    return [r for r in txt_records(name) if re.match(r"v\s*=\s*DMARC1\s*(;|$)", r, re.I)]


def _dmarc_tags(record: str) -> tuple[dict[str, str], list[str]]:
    """The tags Missive keeps, and what is wrong with them."""
    tags = {
        k: v for k, v in _tags(record).items() if k in ("p", "sp", "adkim", "aspf", "rua", "pct")
    }
    problems = [] if "p" in tags else ["it has no p= policy"]
    for tag, allowed in (
        ("p", "none quarantine reject"),
        ("sp", "none quarantine reject"),
        ("adkim", "r s"),
        ("aspf", "r s"),
    ):
        if tag in tags and tags[tag].lower() not in allowed.split():
            problems.append(f"{tag}= must be {' or '.join(allowed.split())}")
    if "pct" in tags and not (tags["pct"].isdigit() and int(tags["pct"]) <= 100):
        problems.append("pct= must be a number from 0 to 100")
    return tags, problems


def _dmarc_check(blank: RecordCheck, domain: str) -> tuple[RecordCheck, dict[str, str] | None]:
    name, org = blank.name, organizational_domain(domain)
    found = dmarc_records(name)
    if not found and org != domain:
        name, found = f"_dmarc.{org}", dmarc_records(f"_dmarc.{org}")
    check = replace(blank, name=name, found=found)
    if not found:
        message = f"Publish this TXT record at {blank.name}: {blank.expected}"
        return check.says(Status.MISSING, message), None
    if len(found) > 1:
        message = f"{name} has {len(found)} DMARC records, so receivers apply none. Keep one."
        return check.says(Status.WRONG, message), None
    tags, problems = _dmarc_tags(found[0])
    if problems:
        message = f"Found {found[0]} at {name}, but {'; '.join(problems)}."
        return check.says(Status.WRONG, message), tags
    if name == blank.name:
        return check.says(Status.FOUND, f"DMARC policy p={tags['p'].lower()}."), tags
    policy = tags.get("sp", tags["p"]).lower()
    message = f"DMARC policy p={policy}, from the record of {org}, which covers {domain}."
    return check.says(Status.FOUND, message), tags


def dmarc_record(domain: str) -> Record:
    rua = settings.MISSIVE_DMARC_RUA
    value = "v=DMARC1; p=none" + (f"; rua={rua}" if rua else "")
    note = "Only if the domain has no DMARC record: keep the one it has."
    return Record("dmarc", f"_dmarc.{domain}", "TXT", value, note)


def _bounce_mx_check(blank: RecordCheck) -> RecordCheck:
    host = settings.MISSIVE_BOUNCE_MX.strip().rstrip(".").lower()
    exchanges = mx_records(blank.name)
    check = replace(blank, found=[f"{preference} {name}" for preference, name in exchanges])
    if any(exchange == host for _, exchange in exchanges):
        return check.says(Status.FOUND, f"Bounces to {blank.name} reach Missive.")
    if not exchanges:
        return check.says(
            Status.MISSING, f"Publish this MX record at {blank.name}: {blank.expected}"
        )
    return check.says(
        Status.WRONG,
        f"The MX of {blank.name} is {', '.join(check.found)}; make it {blank.expected}.",
    )


# -- what to publish, and the check ---------------------------------------------------------


def records_to_publish(
    domain: str, keys: Sequence[DkimSpec], *, existing_spf: str | None = None
) -> list[Record]:
    """The records the customer publishes. ``existing_spf``, the SPF record already at
    the envelope domain, is merged into rather than replaced."""
    envelope, bounce, required = envelope_domain(domain), bounce_domain(domain), required_spf()
    dkim_note = ""
    if not _spf_is_customers(domain):
        dkim_note = (
            f"Messages leave with the platform's return path ({envelope}), so SPF "
            f"aligns with the platform, not with {domain}: DMARC rests on DKIM."
        )
    records = [
        Record("dkim", f"{key.selector}._domainkey.{domain}", "TXT", key.record_value, dkim_note)
        for key in keys
    ]
    if required and _spf_is_customers(domain):
        value, note = required, "A domain has one SPF record: merge this into any other."
        if existing_spf:
            value, note = merged_spf(existing_spf, required), "Replaces the SPF record there."
        records.append(Record("spf", envelope, "TXT", value, note))
    records.append(dmarc_record(domain))
    if bounce and (mx := settings.MISSIVE_BOUNCE_MX.strip()):
        records.append(Record("bounce_mx", bounce, "MX", f"10 {mx}", "Where bounces return."))
    return records


def check_domain(domain: str, keys: Sequence[DkimSpec]) -> DomainReport:
    """Every record of ``domain``, looked up now, and whether DMARC can pass."""
    domain = domain.strip().rstrip(".").lower()
    checks = [
        _looked_up(
            RecordCheck(
                f"dkim:{spec.selector}",
                f"DKIM key {spec.selector}",
                f"{spec.selector}._domainkey.{domain}",
                "TXT",
                expected=spec.record_value,
            ),
            _dkim_check,
        )
        for spec in keys
    ]
    if _spf_is_customers(domain):
        checks.append(
            _looked_up(RecordCheck("spf", "SPF", envelope_domain(domain), "TXT"), _spf_check)
        )
    dmarc: dict[str, str] | None = None

    def with_tags(blank: RecordCheck) -> RecordCheck:
        nonlocal dmarc
        check, dmarc = _dmarc_check(blank, domain)
        return check

    suggested = dmarc_record(domain).value
    checks.append(
        _looked_up(
            RecordCheck("dmarc", "DMARC", f"_dmarc.{domain}", "TXT", expected=suggested), with_tags
        )
    )
    bounce = bounce_domain(domain)
    if bounce and (mx := settings.MISSIVE_BOUNCE_MX.strip().rstrip(".")):
        checks.append(
            _looked_up(
                RecordCheck("bounce_mx", "Bounce MX", bounce, "MX", expected=f"10 {mx}"),
                _bounce_mx_check,
            )
        )
    report = DomainReport(domain, checks, _alignment(domain, checks, dmarc), dmarc)
    spf = report.check("spf")
    existing = spf.found[0] if spf and len(spf.found) == 1 else None
    dmarc_found = any(c.key == "dmarc" and c.status == Status.FOUND for c in checks)
    report.records = [
        record
        for record in records_to_publish(domain, keys, existing_spf=existing)
        if not (record.purpose == "dmarc" and dmarc_found)
    ]
    return report


def _mode(tags: dict[str, str] | None, tag: str) -> str:
    value = (tags or {}).get(tag, "r").lower()
    return value if value in ("r", "s") else "r"


def _alignment(domain: str, checks: list[RecordCheck], dmarc: dict[str, str] | None) -> Alignment:
    envelope = envelope_domain(domain)
    adkim, aspf = _mode(dmarc, "adkim"), _mode(dmarc, "aspf")
    # Missive signs with d= the sending domain, so DKIM aligns in either mode.
    dkim_aligned = aligned(domain, domain, strict=adkim == "s")
    spf_aligned = aligned(envelope, domain, strict=aspf == "s")
    found = {c.key for c in checks if c.status == Status.FOUND}
    dkim_passes = dkim_aligned and any(key.startswith("dkim:") for key in found)
    spf_passes = spf_aligned and "spf" in found
    via = [name for name, passes in (("DKIM", dkim_passes), ("SPF", spf_passes)) if passes]
    if via:
        message = f"DMARC can pass through {' and '.join(via)}."
    else:
        message = "DMARC cannot pass yet: publish the DKIM key"
        message += " or an SPF record that authorizes Missive." if spf_aligned else "."
    if not spf_aligned:
        mode = "strict" if aspf == "s" else "relaxed"
        message += f" SPF checks {envelope}, not aligned with {domain} ({mode}), so DMARC "
        message += "rests on DKIM."
    return Alignment(
        domain, domain, envelope, True, True,
        aligned(envelope, domain, strict=False), aligned(envelope, domain, strict=True),
        adkim, aspf, dkim_aligned, spf_aligned, dkim_passes, spf_passes, bool(via), message,
    )  # fmt: skip


# -- the sending host --------------------------------------------------------------------------


def _ptr_check(blank: RecordCheck) -> RecordCheck:
    ip = ipaddress.ip_address(blank.key.removeprefix("ptr:"))
    check = replace(blank, found=ptr_names(str(ip)))
    if not check.found:
        return check.says(
            Status.MISSING,
            f"{ip} has no reverse DNS (PTR). Ask whoever runs "
            "that address (the hosting provider) to point it at a name whose "
            "A/AAAA record is this address: receivers distrust mail without one.",
        )
    for name in check.found:
        if ip in {ipaddress.ip_address(a) for a in address_records(name)}:
            return check.says(Status.FOUND, f"{ip} is {name}, which resolves back to {ip}.")
    return check.says(
        Status.WRONG,
        f"{ip} is {', '.join(check.found)}, which does not "
        f"resolve back to {ip}. Give that name an A/AAAA record of {ip}, or "
        "point the PTR at a name that has one.",
    )


def _starttls_check(host: str, target: str, port: int, timeout: float) -> RecordCheck:
    check = RecordCheck("starttls", "STARTTLS", f"{host}:{port}", "SMTP", expected="STARTTLS")
    try:
        with smtplib.SMTP(target, port, timeout=timeout, local_hostname=str(DNS_NAME)) as smtp:
            code, _ = smtp.ehlo()
            offered = code == 250 and smtp.has_extn("starttls")
            check.found = sorted(smtp.esmtp_features)
    except (OSError, smtplib.SMTPException) as error:
        return check.says(Status.UNAVAILABLE, f"Could not reach {check.name}: {error}.")
    if offered:
        return check.says(Status.FOUND, f"{check.name} offers STARTTLS.")
    return check.says(
        Status.MISSING,
        f"{check.name} does not offer STARTTLS: messages would "
        "cross the network unencrypted. Turn on TLS on that server.",
    )


def sending_host_report(host: str, port: int, *, timeout: float = 10.0) -> list[RecordCheck]:
    """The SMTP host Missive sends through: forward-confirmed reverse DNS of each of its
    addresses, and STARTTLS."""
    checks: list[RecordCheck] = []
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        blank = RecordCheck("address", f"Address of {host}", host, "A")
        try:
            addresses = address_records(host)
        except DnsUnavailable as error:
            addresses = []
            checks.append(_unavailable(blank, error))
        else:
            if not addresses:
                checks.append(blank.says(Status.MISSING, f"{host} has no A/AAAA record."))
    for ip in addresses:
        reverse = ipaddress.ip_address(ip).reverse_pointer
        blank = RecordCheck(
            f"ptr:{ip}",
            f"Reverse DNS of {ip}",
            reverse,
            "PTR",
            expected=f"a name that resolves back to {ip}",
        )
        checks.append(_looked_up(blank, _ptr_check))
    checks.append(_starttls_check(host, addresses[0] if addresses else host, port, timeout))
    return checks
