"""DnsResolver against a real BIND 9 server on loopback (see bind9.py for the zones it serves)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest
from bind9 import Named, free_port, running_named

from candor.errors import CandorError, ErrorKind
from candor.validation.caa import CaaRecord, caa_decision
from candor.validation.dns import DnsResolver


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Named]:
    with running_named(tmp_path_factory.mktemp("named")) as server:
        yield server


@pytest.fixture
def resolver(named: Named) -> DnsResolver:
    return DnsResolver([named.nameserver], timeout=3.0)


def test_addresses_returns_a_then_aaaa(resolver: DnsResolver) -> None:
    assert resolver.addresses("www.example.com") == [
        ipaddress.ip_address("192.0.2.10"),
        ipaddress.ip_address("2001:db8::10"),
    ]
    assert resolver.addresses("V4ONLY.example.com") == [ipaddress.ip_address("192.0.2.11")]


def test_addresses_follow_cname(resolver: DnsResolver) -> None:
    assert resolver.addresses("alias.example.com") == [ipaddress.ip_address("192.0.2.20")]


def test_addresses_nxdomain_is_not_found(resolver: DnsResolver) -> None:
    with pytest.raises(CandorError) as caught:
        resolver.addresses("missing.example.com")
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_caa_climb_finds_parent_rrset(resolver: DnsResolver) -> None:
    climb = resolver.caa_climb("www.example.com")
    assert climb == [("www.example.com", []), ("example.com", [CaaRecord(0, "issue", "candor.test")])]
    decision = caa_decision(
        climb,
        identifier="www.example.com",
        wildcard=False,
        ca_domains=frozenset({"candor.test"}),
        account_uri="https://acme.candor.test/acme/acct/1",
        method="http-01",
    )
    assert decision.allowed
    assert decision.relevant_name == "example.com"


def test_caa_climb_for_wildcard_starts_at_base_name(resolver: DnsResolver) -> None:
    assert resolver.caa_climb("*.example.com") == [("example.com", [CaaRecord(0, "issue", "candor.test")])]


def test_caa_climb_follows_cname(resolver: DnsResolver) -> None:
    assert resolver.caa_climb("alias.example.com") == [
        ("alias.example.com", [CaaRecord(0, "issue", "other-ca.example")])
    ]


def test_caa_follows_cname_into_another_zone(resolver: DnsResolver) -> None:
    assert resolver.caa("ext.example.com") == [CaaRecord(128, "futuretag", "x")]


def test_caa_climb_without_records_reaches_the_tld(resolver: DnsResolver) -> None:
    assert resolver.caa_climb("host.nocaa.com") == [("host.nocaa.com", []), ("nocaa.com", []), ("com", [])]


def test_refused_zone_is_unavailable(resolver: DnsResolver) -> None:
    with pytest.raises(CandorError) as caught:
        resolver.caa_climb("www.not-served.example")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message.startswith("dns: CAA lookup")


def test_no_answer_is_unavailable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:  # a socket that never answers: timeout
        holder.bind(("127.0.0.1", port))
        silent = DnsResolver([("127.0.0.1", port)], timeout=0.5)
        with pytest.raises(CandorError) as caught:
            silent.caa_climb("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "timed out" in caught.value.message


def test_nothing_listening_is_unavailable() -> None:
    closed = DnsResolver([("127.0.0.1", free_port())], timeout=0.5)  # ICMP port unreachable
    with pytest.raises(CandorError) as caught:
        closed.caa_climb("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    with pytest.raises(CandorError) as caught:
        closed.addresses("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE


def test_nameservers_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        DnsResolver([("localhost", 53)])
    with pytest.raises(ValueError, match="out of range"):
        DnsResolver([("127.0.0.1", 0)])
