"""What a sending domain must publish, and whether it does: DKIM, SPF, DMARC, alignment
and the bounce domain.

Pure logic over the lookups of domains.dns: no models, no database, so the same checks
run in a task, in a page and in the tests. Each check ends in one of four states
(domains.records) and a message saying what is wrong and what to do. "unavailable" means
the DNS could not answer: a domain is never called broken because a resolver was down.
The SPF record is evaluated by domains.spf; the host Missive sends through is checked by
domains.hosts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from django.conf import settings

from domains.dns import aligned, mx_records, organizational_domain, txt_records
from domains.records import RecordCheck, Status, looked_up
from domains.spf import merged_spf, required_spf, spf_check


@dataclass(frozen=True)
class Record:
    """A DNS record for the customer to publish."""

    purpose: str  # dkim, spf, dmarc, bounce_mx
    name: str
    rtype: str
    value: str
    note: str = ""


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
        looked_up(
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
            looked_up(RecordCheck("spf", "SPF", envelope_domain(domain), "TXT"), spf_check)
        )
    dmarc: dict[str, str] | None = None

    def with_tags(blank: RecordCheck) -> RecordCheck:
        nonlocal dmarc
        check, dmarc = _dmarc_check(blank, domain)
        return check

    suggested = dmarc_record(domain).value
    checks.append(
        looked_up(
            RecordCheck("dmarc", "DMARC", f"_dmarc.{domain}", "TXT", expected=suggested), with_tags
        )
    )
    bounce = bounce_domain(domain)
    if bounce and (mx := settings.MISSIVE_BOUNCE_MX.strip().rstrip(".")):
        checks.append(
            looked_up(
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
