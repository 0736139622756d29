"""The host Missive sends through, as receivers see it: forward-confirmed reverse DNS (each
of its addresses has a PTR naming a host that resolves back to that address), and
STARTTLS offered on its SMTP port.

These concern the operator, not a customer's domain: the PTR is looked up over DNS, and
STARTTLS is asked of the server itself, over SMTP. A DNS server that cannot answer, or an
SMTP server that cannot be reached, gives "unavailable", never "missing".
"""

from __future__ import annotations

import ipaddress
import smtplib
from dataclasses import replace

from django.core.mail.utils import DNS_NAME

from domains.dns import DnsUnavailable, address_records, ptr_names
from domains.records import RecordCheck, Status, looked_up, unavailable


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
            checks.append(unavailable(blank, error))
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
        checks.append(looked_up(blank, _ptr_check))
    checks.append(_starttls_check(host, addresses[0] if addresses else host, port, timeout))
    return checks
