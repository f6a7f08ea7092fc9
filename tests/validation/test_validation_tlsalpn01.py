"""ACME tls-alpn-01 against a real TLS responder on loopback (RFC 8737; BR 3.2.2.4.20; WS-02d)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from validation_fakes import (
    KEY_AUTHORIZATION,
    THUMBPRINT,
    TOKEN,
    FakeTlsServer,
    FakeWebServer,
    LoopbackPool,
    Route,
    acme_digest,
    server_context,
    write_certificate,
)

from candor.clock import FakeClock
from candor.policy.names import Identifier
from candor.validation import AddressPolicy, StaticResolver, ValidationResult, validate_tlsalpn01

DOMAIN = "shop.example.net"
TESTING = AddressPolicy(allow_loopback=True)
ACME = ["acme-tls/1"]


def run(
    clock: FakeClock, resolver: StaticResolver, identifier: Identifier | None = None, *, policy: AddressPolicy = TESTING
) -> ValidationResult:
    result = validate_tlsalpn01(
        identifier or Identifier("dns", DOMAIN),
        TOKEN,
        KEY_AUTHORIZATION,
        resolver=resolver,
        policy=policy,
        clock=clock,
        timeout=5.0,
    )
    assert "\n" not in result.detail and "Traceback" not in result.detail
    return result


def responder(
    tmp_path: Path,
    ip: str,
    sans: Sequence[x509.GeneralName],
    *,
    acme_value: bytes | None = None,
    critical: bool = True,
    alpn: Sequence[str] = ACME,
    port: int = 443,
) -> FakeTlsServer:
    cert, key = write_certificate(tmp_path, sans, acme_value=acme_value, acme_critical=critical, name=f"s{port}")
    return FakeTlsServer(ip, port, server_context(cert, key, alpn))


def test_tlsalpn01_accepts_the_acme_tls_certificate_on_port_443(
    clock: FakeClock, loopback: LoopbackPool, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    with responder(tmp_path, ip, [x509.DNSName(DOMAIN)], acme_value=acme_digest()) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert result.ok, result.detail
    assert (result.method, result.problem_type) == ("3.2.2.4.20", None)
    assert server.log.server_names == [DOMAIN]  # RFC 8737 §3: SNI is the domain being validated
    assert server.log.selected == ["acme-tls/1"]
    assert connections == [(ip, 443)]
    assert [(r.ip, r.port, r.connected) for r in result.records] == [(ip, 443, True)]


def test_the_san_comparison_ignores_case(clock: FakeClock, loopback: LoopbackPool, tmp_path: Path) -> None:
    ip = loopback.take()
    with responder(tmp_path, ip, [x509.DNSName("SHOP.Example.NET")], acme_value=acme_digest()):
        assert run(clock, StaticResolver({DOMAIN: [ip]})).ok


def test_an_ip_identifier_uses_its_reverse_name_as_sni_and_an_ipaddress_san(
    clock: FakeClock, loopback: LoopbackPool, tmp_path: Path
) -> None:
    ip = loopback.take()
    san = x509.IPAddress(ipaddress.ip_address(ip))
    with responder(tmp_path, ip, [san], acme_value=acme_digest()) as server:
        result = run(clock, StaticResolver({}), Identifier("ip", ip))
    assert result.ok, result.detail
    assert result.method == "3.2.2.5.7"
    assert server.log.server_names == [ipaddress.ip_address(ip).reverse_pointer]  # RFC 8738 §6
    assert str(server.log.server_names[0]).endswith(".in-addr.arpa")


def test_only_acme_tls_1_is_offered(clock: FakeClock, loopback: LoopbackPool, tmp_path: Path) -> None:
    """A server that prefers http/1.1 still selects acme-tls/1: the validator offered nothing else."""
    ip = loopback.take()
    with responder(tmp_path, ip, [x509.DNSName(DOMAIN)], acme_value=acme_digest(), alpn=["http/1.1", "acme-tls/1"]):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert result.ok, result.detail


@pytest.mark.parametrize("alpn", [[], ["http/1.1"], ["h2", "http/1.1"]])
def test_a_server_that_does_not_select_acme_tls_1_fails(
    clock: FakeClock, loopback: LoopbackPool, tmp_path: Path, alpn: list[str]
) -> None:
    ip = loopback.take()
    with responder(tmp_path, ip, [x509.DNSName(DOMAIN)], acme_value=acme_digest(), alpn=alpn):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "unauthorized")
    assert "acme-tls/1" in result.detail


@pytest.mark.parametrize(
    ("sans", "critical", "value", "complaint"),
    [
        ([x509.DNSName("other.example.net")], True, acme_digest(), "not the identifier"),
        ([x509.DNSName(DOMAIN), x509.DNSName("other.example.net")], True, acme_digest(), "2 subjectAltName"),
        ([x509.DNSName("other.example.net"), x509.DNSName(DOMAIN)], True, acme_digest(), "2 subjectAltName"),
        ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], True, acme_digest(), "not the identifier"),
        ([x509.DNSName("*.example.net")], True, acme_digest(), "not the identifier"),
        ([], True, acme_digest(), "no subjectAltName"),
        ([x509.DNSName(DOMAIN)], False, acme_digest(), "not critical"),
        ([x509.DNSName(DOMAIN)], True, None, "no acmeIdentifier"),
        ([x509.DNSName(DOMAIN)], True, acme_digest(f"{TOKEN}.{THUMBPRINT[::-1]}"), "SHA-256"),  # another account
        ([x509.DNSName(DOMAIN)], True, acme_digest()[2:], "SHA-256"),  # the digest without its DER header
        ([x509.DNSName(DOMAIN)], True, b"\x04\x20" + KEY_AUTHORIZATION.encode()[:32], "SHA-256"),
        ([x509.DNSName(DOMAIN)], True, b"\x04\x21" + acme_digest()[2:] + b"\x00", "SHA-256"),
    ],
    ids=[
        "wrong-san",
        "two-sans",
        "two-sans-identifier-second",
        "ip-san-for-a-domain",
        "wildcard-san",
        "no-san",
        "acme-identifier-not-critical",
        "no-acme-identifier",
        "digest-of-another-key-authorization",
        "digest-without-octet-string",
        "key-authorization-not-hashed",
        "33-byte-octet-string",
    ],
)
def test_a_certificate_that_does_not_carry_exactly_the_identifier_and_digest_fails(
    clock: FakeClock,
    loopback: LoopbackPool,
    tmp_path: Path,
    sans: list[x509.GeneralName],
    critical: bool,
    value: bytes | None,
    complaint: str,
) -> None:
    ip = loopback.take()
    with responder(tmp_path, ip, sans, acme_value=value, critical=critical):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "incorrectResponse")
    assert complaint in result.detail
    assert "RFC 8737" in result.detail


@pytest.mark.parametrize("port", [8443, 4443, 50001])
def test_ws02d_a_responder_on_a_port_other_than_443_is_never_contacted(
    clock: FakeClock, loopback: LoopbackPool, tmp_path: Path, connections: list[tuple[str, int]], port: int
) -> None:
    ip = loopback.take()  # nothing listens on its port 443
    with responder(tmp_path, ip, [x509.DNSName(DOMAIN)], acme_value=acme_digest(), port=port) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "connection")
    assert server.log.connections == 0
    assert connections == [(ip, 443)]


def test_loopback_is_refused_by_the_default_policy_before_any_connection(
    clock: FakeClock, loopback: LoopbackPool, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    with responder(tmp_path, ip, [x509.DNSName(DOMAIN)], acme_value=acme_digest()) as server:
        by_name = run(clock, StaticResolver({DOMAIN: [ip]}), policy=AddressPolicy())
        by_ip = run(clock, StaticResolver({}), Identifier("ip", ip), policy=AddressPolicy())
    assert (by_name.problem_type, by_ip.problem_type) == ("dns", "rejectedIdentifier")
    assert server.log.connections == 0
    assert connections == []


def test_a_port_443_that_does_not_speak_tls_is_a_tls_problem(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 443, {"/": Route(200, b"hello")}):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "tls")


def test_a_wildcard_and_a_malformed_key_authorization_send_nothing(
    clock: FakeClock, connections: list[tuple[str, int]]
) -> None:
    wildcard = run(clock, StaticResolver({}), Identifier("dns", "*." + DOMAIN))
    assert wildcard.problem_type == "rejectedIdentifier"
    malformed = validate_tlsalpn01(
        Identifier("dns", DOMAIN),
        TOKEN,
        "not-a-key-authorization",
        resolver=StaticResolver({DOMAIN: ["127.0.0.1"]}),
        policy=TESTING,
        clock=clock,
    )
    assert malformed.problem_type == "malformed"
    assert connections == []
