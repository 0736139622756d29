"""Sending domains checked over the wire: DKIM, SPF, DMARC, alignment, the bounce domain
and the sending host, against the loopback DNS server (the ``dns`` fixture) and a real
SMTP server on loopback. No lookup is faked: each record is published, then asked for."""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import ssl

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from domains.checks import DkimSpec, DomainReport, check_domain, records_to_publish
from domains.dns import (
    DnsUnavailable,
    address_records,
    aligned,
    mx_records,
    organizational_domain,
    ptr_names,
    txt_records,
)
from domains.hosts import sending_host_report
from domains.records import Status
from domains.spf import merged_spf
from tests.workers import SmtpSink

DOMAIN = "news.example.test"
OPERATOR_SPF = "spf.missive.test"


def _dkim_value(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@pytest.fixture(scope="module")
def key() -> DkimSpec:
    """A 2048-bit key: its TXT record is longer than one 255-byte string."""
    return DkimSpec("m1", _dkim_value())


@pytest.fixture(scope="module")
def other_key() -> DkimSpec:
    return DkimSpec("m1", _dkim_value(1024))


@pytest.fixture
def platform(settings, dns):
    """Missive as an operator configures it: an SPF include of its own, per-domain
    bounce domains, DMARC reports to itself."""
    settings.MISSIVE_SPF_INCLUDE = OPERATOR_SPF
    settings.MISSIVE_SENDING_IPS = []
    settings.MISSIVE_RETURN_PATH = ""
    settings.MISSIVE_DMARC_RUA = "mailto:dmarc@missive.test"
    settings.MISSIVE_BOUNCE_MX = "mx.missive.test"
    dns.publish(OPERATOR_SPF, "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    return settings


def _check(report: DomainReport, key: str):
    check = report.check(key)
    assert check is not None, f"no {key} check in {[c.key for c in report.checks]}"
    return check


# -- the lookups ---------------------------------------------------------------------------------


def test_it_joins_the_strings_of_a_long_txt_record(dns, key):
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", key.record_value)

    (record,) = txt_records(f"m1._domainkey.{DOMAIN}")

    assert len(key.record_value) > 255
    assert record == key.record_value


def test_it_answers_empty_for_a_name_or_type_that_does_not_exist(dns):
    dns.publish(DOMAIN, "A", "198.51.100.7")

    assert txt_records(f"nothing.{DOMAIN}") == []
    assert txt_records(DOMAIN) == []
    assert mx_records(DOMAIN) == []
    assert address_records(DOMAIN) == ["198.51.100.7"]
    assert ptr_names("198.51.100.7") == []


def test_it_raises_unavailable_when_no_server_answers(settings, free_port):
    settings.MISSIVE_DNS_SERVERS = [f"127.0.0.1:{free_port}"]
    settings.MISSIVE_DNS_TIMEOUT = 1

    with pytest.raises(DnsUnavailable):
        txt_records(DOMAIN)


@pytest.mark.parametrize(
    ("name", "organizational"),
    [
        ("bounce.news.example.test", "example.test"),
        ("example.test", "example.test"),
        ("mail.shop.example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("Example.COM.", "example.com"),
    ],
)
def test_it_finds_the_organizational_domain_in_the_bundled_list(name, organizational):
    assert organizational_domain(name) == organizational


def test_it_aligns_subdomains_in_relaxed_mode_only():
    assert aligned("bounce.news.example.test", DOMAIN, strict=False)
    assert not aligned("bounce.news.example.test", DOMAIN, strict=True)
    assert aligned(DOMAIN, "NEWS.example.test.", strict=True)
    assert not aligned("example.co.uk", "other.co.uk", strict=False)


# -- DKIM ----------------------------------------------------------------------------------------


def test_it_finds_a_published_dkim_key(platform, dns, key):
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", key.record_value)

    report = check_domain(DOMAIN, [key])

    dkim = _check(report, "dkim:m1")
    assert dkim.status == Status.FOUND
    assert dkim.found == [key.record_value]
    assert report.dkim_verified("m1")


def test_it_says_where_to_publish_a_missing_dkim_key(platform, dns, key):
    report = check_domain(DOMAIN, [key])

    dkim = _check(report, "dkim:m1")
    assert dkim.status == Status.MISSING
    assert dkim.message == f"Publish this TXT record at m1._domainkey.{DOMAIN}: {key.record_value}"
    assert not report.dkim_verified("m1")


def test_it_compares_the_key_not_the_spacing_or_order_of_tags(platform, dns, key):
    p = key.record_value.split("p=")[1]
    spaced = " ".join(p[i : i + 60] for i in range(0, len(p), 60))
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", f"p={spaced} ;k=rsa;  v=DKIM1")

    report = check_domain(DOMAIN, [key])

    assert _check(report, "dkim:m1").status == Status.FOUND


@pytest.mark.parametrize(
    ("published", "reason"),
    [
        ("another key", "holds another key than the one Missive signs with"),
        ("v=DKIM1; k=rsa; p=", "revokes the key (empty p=)"),
        ("google-site-verification=abc", "is not a DKIM key"),
    ],
)
def test_it_reports_a_wrong_dkim_record(platform, dns, key, other_key, published, reason):
    value = other_key.record_value if published == "another key" else published
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", value)

    dkim = _check(check_domain(DOMAIN, [key]), "dkim:m1")

    assert dkim.status == Status.WRONG
    assert reason in dkim.message
    assert dkim.message.endswith(f"Replace it with: {key.record_value}")


def test_it_turns_found_into_missing_when_the_record_is_removed(platform, dns, key):
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", key.record_value)
    assert check_domain(DOMAIN, [key]).dkim_verified("m1")

    dns.remove(f"m1._domainkey.{DOMAIN}", "TXT")

    report = check_domain(DOMAIN, [key])
    assert _check(report, "dkim:m1").status == Status.MISSING
    assert not report.dkim_verified("m1")


# -- SPF -----------------------------------------------------------------------------------------


def test_it_says_which_spf_record_to_publish(platform, dns, key):
    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.MISSING
    assert spf.name == DOMAIN
    assert spf.message == f"Publish this TXT record at {DOMAIN}: v=spf1 include:{OPERATOR_SPF} ~all"


def test_it_finds_the_operators_include(platform, dns, key):
    dns.publish(DOMAIN, "TXT", f"v=spf1 include:{OPERATOR_SPF} -all")

    assert _check(check_domain(DOMAIN, [key]), "spf").status == Status.FOUND


def test_it_reports_an_spf_record_without_missive_and_suggests_a_merge(platform, dns, key):
    dns.publish(DOMAIN, "TXT", "v=spf1 -all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.WRONG
    assert spf.message.startswith(
        f"Found v=spf1 -all, which does not include or authorize include:{OPERATOR_SPF}"
    )
    assert spf.expected == f"v=spf1 include:{OPERATOR_SPF} -all"


def test_it_follows_nested_includes_and_redirects(platform, dns, key):
    # given an SPF record that redirects to one that includes one that includes Missive's
    dns.publish(DOMAIN, "TXT", "v=spf1 redirect=_spf.example.test")
    dns.publish(
        "_spf.example.test", "TXT", "v=spf1 ip4:203.0.113.1 include:_mail.example.test -all"
    )
    dns.publish("_mail.example.test", "TXT", f"v=spf1 include:{OPERATOR_SPF} ?all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.FOUND


def test_it_reports_two_spf_records(platform, dns, key):
    dns.publish(DOMAIN, "TXT", "v=spf1 include:_spf.google.test ~all")
    dns.publish(DOMAIN, "TXT", f"v=spf1 include:{OPERATOR_SPF} ~all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.WRONG
    assert f"{DOMAIN} has 2 SPF records" in spf.message
    assert spf.expected == f"v=spf1 include:_spf.google.test include:{OPERATOR_SPF} ~all"


def _chain(dns, length: int) -> None:
    """The domain's record includes a chain of ``length`` records, the last one Missive's."""
    names = [f"s{i}.example.test" for i in range(length - 1)] + [OPERATOR_SPF]
    dns.publish(DOMAIN, "TXT", f"v=spf1 include:{names[0]} -all")
    for name, following in itertools.pairwise(names):
        dns.publish(name, "TXT", f"v=spf1 include:{following} -all")


def test_it_accepts_ten_dns_lookups(platform, dns, key):
    _chain(dns, 10)

    assert _check(check_domain(DOMAIN, [key]), "spf").status == Status.FOUND


def test_it_reports_more_than_ten_dns_lookups(platform, dns, key):
    _chain(dns, 11)

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.WRONG
    assert "more than 10 DNS lookups" in spf.message


def test_it_authorizes_sending_addresses_through_an_ip4_network(platform, dns, key):
    platform.MISSIVE_SPF_INCLUDE = ""
    platform.MISSIVE_SENDING_IPS = ["198.51.100.7", "2001:db8::25"]
    dns.publish(DOMAIN, "TXT", "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all")

    assert _check(check_domain(DOMAIN, [key]), "spf").status == Status.FOUND


def test_it_names_the_address_spf_does_not_authorize(platform, dns, key):
    platform.MISSIVE_SPF_INCLUDE = ""
    platform.MISSIVE_SENDING_IPS = ["198.51.100.7", "198.51.100.8"]
    dns.publish(DOMAIN, "TXT", "v=spf1 ip4:198.51.100.7 ~all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.WRONG
    assert "198.51.100.8 (softfail)" in spf.message
    assert spf.expected == "v=spf1 ip4:198.51.100.7 ip4:198.51.100.8 ~all"


def test_it_authorizes_through_the_mx_of_the_domain(platform, dns, key):
    platform.MISSIVE_SPF_INCLUDE = ""
    platform.MISSIVE_SENDING_IPS = ["198.51.100.7"]
    dns.publish(DOMAIN, "TXT", "v=spf1 mx -all")
    dns.publish(DOMAIN, "MX", "10 mail.example.test")
    dns.publish("mail.example.test", "A", "198.51.100.7")

    assert _check(check_domain(DOMAIN, [key]), "spf").status == Status.FOUND


def test_it_evaluates_mechanisms_in_order(platform, dns, key):
    platform.MISSIVE_SPF_INCLUDE = ""
    platform.MISSIVE_SENDING_IPS = ["198.51.100.7"]
    dns.publish(DOMAIN, "TXT", "v=spf1 -ip4:198.51.100.0/24 ip4:198.51.100.7 ~all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.status == Status.WRONG
    assert "198.51.100.7 (fail)" in spf.message


def test_it_checks_only_presence_when_no_sending_host_is_configured(platform, dns, key):
    platform.MISSIVE_SPF_INCLUDE = ""
    assert _check(check_domain(DOMAIN, [key]), "spf").status == Status.MISSING

    dns.publish(DOMAIN, "TXT", "v=spf1 a -all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")
    assert spf.status == Status.FOUND
    assert "SPF cannot be checked against the hosts Missive sends from" in spf.message


def test_it_checks_spf_on_the_bounce_domain(platform, dns, key):
    platform.MISSIVE_RETURN_PATH = "bounces@bounce.{domain}"
    dns.publish(DOMAIN, "TXT", f"v=spf1 include:{OPERATOR_SPF} -all")

    spf = _check(check_domain(DOMAIN, [key]), "spf")

    assert spf.name == f"bounce.{DOMAIN}"
    assert spf.status == Status.MISSING


# -- DMARC ---------------------------------------------------------------------------------------


def test_it_suggests_a_dmarc_record(platform, dns, key):
    report = check_domain(DOMAIN, [key])

    dmarc = _check(report, "dmarc")
    assert dmarc.status == Status.MISSING
    assert dmarc.message == (
        f"Publish this TXT record at _dmarc.{DOMAIN}: "
        "v=DMARC1; p=none; rua=mailto:dmarc@missive.test"
    )
    assert report.dmarc is None


def test_it_keeps_the_tags_of_the_dmarc_record(platform, dns, key):
    dns.publish(
        f"_dmarc.{DOMAIN}",
        "TXT",
        "v=DMARC1; p=quarantine; pct=50; adkim=s; rua=mailto:d@example.test; fo=1",
    )

    report = check_domain(DOMAIN, [key])

    assert _check(report, "dmarc").status == Status.FOUND
    assert report.dmarc == {
        "p": "quarantine",
        "pct": "50",
        "adkim": "s",
        "rua": "mailto:d@example.test",
    }
    assert all(record.purpose != "dmarc" for record in report.records)


def test_it_falls_back_to_the_dmarc_record_of_the_organizational_domain(platform, dns, key):
    dns.publish("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; sp=quarantine")

    report = check_domain(DOMAIN, [key])

    dmarc = _check(report, "dmarc")
    assert dmarc.status == Status.FOUND
    assert dmarc.name == "_dmarc.example.test"
    assert "p=quarantine" in dmarc.message
    assert report.dmarc == {"p": "reject", "sp": "quarantine"}


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (["v=DMARC1; p=block"], "p= must be none or quarantine or reject"),
        (["v=DMARC1; rua=mailto:d@example.test"], "it has no p= policy"),
        (["v=DMARC1; p=none; aspf=x; pct=150"], "aspf= must be r or s; pct= must be"),
        (["v=DMARC1; p=none", "v=DMARC1; p=reject"], "has 2 DMARC records"),
    ],
)
def test_it_reports_a_wrong_dmarc_record(platform, dns, key, records, reason):
    for record in records:
        dns.publish(f"_dmarc.{DOMAIN}", "TXT", record)

    dmarc = _check(check_domain(DOMAIN, [key]), "dmarc")

    assert dmarc.status == Status.WRONG
    assert reason in dmarc.message


# -- alignment and the bounce domain -----------------------------------------------------------


def test_a_bounce_subdomain_aligns_relaxed_not_strict(platform, dns, key):
    # given per-domain bounce domains, and SPF published on the bounce domain
    platform.MISSIVE_RETURN_PATH = "bounces@bounce.{domain}"
    dns.publish(f"bounce.{DOMAIN}", "TXT", f"v=spf1 include:{OPERATOR_SPF} -all")
    dns.publish(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=reject")

    relaxed = check_domain(DOMAIN, [key]).alignment

    assert relaxed.envelope_domain == f"bounce.{DOMAIN}"
    assert (relaxed.spf_relaxed, relaxed.spf_strict) == (True, False)
    assert relaxed.spf_passes
    assert relaxed.dmarc_can_pass
    assert not relaxed.dkim_passes  # its key is not published

    # when the DMARC record asks for strict SPF alignment
    dns.remove(f"_dmarc.{DOMAIN}")
    dns.publish(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=reject; aspf=s")

    strict = check_domain(DOMAIN, [key]).alignment
    assert strict.aspf == "s"
    assert not strict.spf_aligned
    assert not strict.dmarc_can_pass
    assert "not aligned with news.example.test (strict)" in strict.message


def test_a_fixed_return_path_on_another_domain_leaves_dmarc_to_dkim(platform, dns, key):
    platform.MISSIVE_RETURN_PATH = "bounces@mail.missive.test"
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", key.record_value)

    report = check_domain(DOMAIN, [key])

    assert report.check("spf") is None  # the platform's SPF is not the customer's to fix
    assert (report.alignment.spf_relaxed, report.alignment.spf_strict) == (False, False)
    assert (report.alignment.dkim_relaxed, report.alignment.dkim_strict) == (True, True)
    assert report.alignment.dkim_passes
    assert report.alignment.dmarc_can_pass
    assert report.alignment.message == (
        "DMARC can pass through DKIM. SPF checks mail.missive.test, not aligned with "
        "news.example.test (relaxed), so DMARC rests on DKIM."
    )


def test_it_checks_the_mx_of_the_bounce_domain(platform, dns, key):
    platform.MISSIVE_RETURN_PATH = "bounces@bounce.{domain}"
    assert _check(check_domain(DOMAIN, [key]), "bounce_mx").status == Status.MISSING

    dns.publish(f"bounce.{DOMAIN}", "MX", "10 mx.elsewhere.test")
    wrong = _check(check_domain(DOMAIN, [key]), "bounce_mx")
    assert wrong.status == Status.WRONG
    assert (
        wrong.message
        == f"The MX of bounce.{DOMAIN} is 10 mx.elsewhere.test; make it 10 mx.missive.test."
    )

    dns.remove(f"bounce.{DOMAIN}", "MX")
    dns.publish(f"bounce.{DOMAIN}", "MX", "10 mx.missive.test")
    assert _check(check_domain(DOMAIN, [key]), "bounce_mx").status == Status.FOUND


# -- what to publish -----------------------------------------------------------------------------


def test_it_lists_the_records_for_per_domain_bounce_domains(platform, key):
    platform.MISSIVE_RETURN_PATH = "bounces@bounce.{domain}"
    platform.MISSIVE_SENDING_IPS = ["198.51.100.7", "2001:db8::/64"]

    records = {(r.purpose, r.name, r.rtype, r.value) for r in records_to_publish(DOMAIN, [key])}

    assert records == {
        ("dkim", f"m1._domainkey.{DOMAIN}", "TXT", key.record_value),
        ("spf", f"bounce.{DOMAIN}", "TXT",
         f"v=spf1 include:{OPERATOR_SPF} ip4:198.51.100.7 ip6:2001:db8::/64 ~all"),
        ("dmarc", f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc@missive.test"),
        ("bounce_mx", f"bounce.{DOMAIN}", "MX", "10 mx.missive.test"),
    }  # fmt: skip


def test_it_lists_no_spf_record_for_a_fixed_platform_return_path(platform, key):
    platform.MISSIVE_RETURN_PATH = "bounces@mail.missive.test"

    records = records_to_publish(DOMAIN, [key])

    assert [r.purpose for r in records] == ["dkim", "dmarc"]
    assert "SPF aligns with the platform, not with news.example.test" in records[0].note
    assert "DMARC rests on DKIM" in records[0].note


def test_the_report_suggests_the_found_spf_record_merged(platform, dns, key):
    dns.publish(DOMAIN, "TXT", "v=spf1 include:_spf.google.test -all")
    dns.publish("_spf.google.test", "TXT", "v=spf1 ip4:203.0.113.0/24 -all")

    report = check_domain(DOMAIN, [key])

    (spf,) = [record for record in report.records if record.purpose == "spf"]
    assert spf.value == f"v=spf1 include:_spf.google.test include:{OPERATOR_SPF} -all"


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        ("v=spf1 mx -all", "v=spf1 mx include:spf.missive.test ip4:192.0.2.1 -all"),
        (
            "v=spf1 include:spf.missive.test ~all",
            "v=spf1 include:spf.missive.test ip4:192.0.2.1 ~all",
        ),
        (
            "v=spf1 a redirect=_spf.example.test",
            "v=spf1 a include:spf.missive.test ip4:192.0.2.1 redirect=_spf.example.test",
        ),
        ("v=spf1 +ip4:192.0.2.1", "v=spf1 +ip4:192.0.2.1 include:spf.missive.test"),
        ("", "v=spf1 include:spf.missive.test ip4:192.0.2.1 ~all"),
    ],
)
def test_it_merges_the_required_mechanisms_into_an_spf_record(existing, merged):
    required = "v=spf1 include:spf.missive.test ip4:192.0.2.1 ~all"

    assert merged_spf(existing, required) == merged


def test_the_report_survives_a_json_round_trip(platform, dns, key):
    dns.publish(f"m1._domainkey.{DOMAIN}", "TXT", key.record_value)
    dns.publish("_dmarc.example.test", "TXT", "v=DMARC1; p=none")
    report = check_domain(DOMAIN, [key])

    stored = json.loads(json.dumps(report.as_dict()))

    assert DomainReport.from_dict(stored) == report
    assert DomainReport.from_dict({}).checks == []


# -- the DNS down --------------------------------------------------------------------------------


def test_it_says_could_not_look_up_when_the_dns_does_not_answer(platform, key, free_port):
    platform.MISSIVE_DNS_SERVERS = [f"127.0.0.1:{free_port}"]
    platform.MISSIVE_DNS_TIMEOUT = 1

    report = check_domain(DOMAIN, [key])

    assert {check.key: check.status for check in report.checks} == {
        "dkim:m1": Status.UNAVAILABLE,
        "spf": Status.UNAVAILABLE,
        "dmarc": Status.UNAVAILABLE,
    }
    assert _check(report, "dkim:m1").message.startswith(f"Could not look up m1._domainkey.{DOMAIN}")
    assert not report.alignment.dmarc_can_pass


# -- the sending host ----------------------------------------------------------------------------


def test_it_confirms_the_reverse_dns_of_the_sending_host(dns, smtp_sink):
    # given a relay whose address has a PTR name that resolves back to it
    dns.publish("1.0.0.127.in-addr.arpa", "PTR", "relay.missive.test")
    dns.publish("relay.missive.test", "A", "127.0.0.1")

    checks = {
        c.key: c for c in sending_host_report("relay.missive.test", smtp_sink.port, timeout=5)
    }

    assert checks["ptr:127.0.0.1"].status == Status.FOUND
    assert checks["ptr:127.0.0.1"].found == ["relay.missive.test"]
    # the test server offers no TLS
    assert checks["starttls"].status == Status.MISSING
    assert "does not offer STARTTLS" in checks["starttls"].message


def test_it_reports_a_ptr_that_does_not_resolve_back(dns, smtp_sink):
    dns.publish("1.0.0.127.in-addr.arpa", "PTR", "elsewhere.missive.test")
    dns.publish("elsewhere.missive.test", "A", "192.0.2.1")

    (ptr, _starttls) = sending_host_report("127.0.0.1", smtp_sink.port, timeout=5)

    assert ptr.status == Status.WRONG
    assert "does not resolve back to 127.0.0.1" in ptr.message


def test_it_reports_a_missing_ptr_and_an_unknown_host(dns, smtp_sink):
    (ptr, _starttls) = sending_host_report("127.0.0.1", smtp_sink.port, timeout=5)
    assert ptr.status == Status.MISSING

    (address, _starttls) = sending_host_report("nowhere.missive.test", smtp_sink.port, timeout=5)
    assert address.status == Status.MISSING
    assert address.message == "nowhere.missive.test has no A/AAAA record."


def test_it_says_unavailable_when_the_host_cannot_be_reached(dns, free_port):
    dns.publish("1.0.0.127.in-addr.arpa", "PTR", "relay.missive.test")
    dns.publish("relay.missive.test", "A", "127.0.0.1")

    (_ptr, starttls) = sending_host_report("127.0.0.1", free_port, timeout=2)

    assert starttls.status == Status.UNAVAILABLE
    assert starttls.message.startswith(f"Could not reach 127.0.0.1:{free_port}")


def _tls_context(tmp_path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.missive.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture
def tls_relay(tmp_path, free_port):
    """An SMTP server on loopback that offers STARTTLS."""
    controller = Controller(
        SmtpSink(), hostname="127.0.0.1", port=free_port, tls_context=_tls_context(tmp_path)
    )
    controller.start()
    yield controller
    controller.stop()


def test_it_finds_starttls_on_a_relay_that_offers_it(dns, tls_relay):
    (_ptr, starttls) = sending_host_report("127.0.0.1", tls_relay.port, timeout=5)

    assert starttls.status == Status.FOUND
    assert "starttls" in starttls.found
    assert starttls.message == f"127.0.0.1:{tls_relay.port} offers STARTTLS."
