"""DnsResolver against a real BIND 9 server on loopback (see bind9.py for the signed zones it serves).

DNSSEC outcomes (Bogus, Insecure, the proofs) are in test_dnssec.py; this file covers the lookups themselves.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from bind9 import DNS01_DIGEST, Named, free_port

from candor.config import IANA_ROOT_ANCHORS
from candor.errors import CandorError, ErrorKind
from candor.validation.caa import CaaRecord, caa_decision
from candor.validation.dns import DnsResolver


@pytest.fixture
def resolver(named: Named) -> DnsResolver:
    return DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors)


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


def test_caa_climb_for_a_name_outside_the_tree_is_empty(resolver: DnsResolver) -> None:
    assert resolver.caa_climb("www.not-served.example") == [
        ("www.not-served.example", []),
        ("not-served.example", []),
        ("example", []),
    ]  # NXDOMAIN from the signed root, proven by its NSEC records


def test_txt_joins_the_strings_of_a_record_and_follows_cnames(resolver: DnsResolver) -> None:
    assert sorted(resolver.txt("_acme-challenge.multi.example.com")) == sorted([DNS01_DIGEST, "not-the-digest"])
    assert resolver.txt("_acme-challenge.moved.example.com") == [DNS01_DIGEST]  # CNAME into com


def test_txt_nodata_is_empty_and_nxdomain_is_not_found(resolver: DnsResolver) -> None:
    assert resolver.txt("www.example.com") == []
    with pytest.raises(CandorError) as caught:
        resolver.txt("_acme-challenge.missing.example.com")
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert "NXDOMAIN" in caught.value.message


def test_servfail_is_unavailable(resolver: DnsResolver) -> None:
    with pytest.raises(CandorError) as caught:
        resolver.caa_climb("www.broken.test")  # broken.test's zone file does not load: SERVFAIL
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message.startswith("dns: CAA lookup for 'www.broken.test'")
    assert "SERVFAIL" in caught.value.message


def test_referral_is_unavailable(resolver: DnsResolver) -> None:
    with pytest.raises(CandorError) as caught:
        resolver.addresses("www.lame")  # delegated by the root to a server that does not serve it
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "referral" in caught.value.message


def test_no_answer_is_unavailable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:  # a socket that never answers: timeout
        holder.bind(("127.0.0.1", port))
        silent = DnsResolver([("127.0.0.1", port)], timeout=0.5, trust_anchors=IANA_ROOT_ANCHORS)
        with pytest.raises(CandorError) as caught:
            silent.caa_climb("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "timed out" in caught.value.message


def test_nothing_listening_is_unavailable() -> None:
    closed = DnsResolver([("127.0.0.1", free_port())], timeout=0.5, trust_anchors=IANA_ROOT_ANCHORS)  # ICMP
    with pytest.raises(CandorError) as caught:
        closed.caa_climb("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    with pytest.raises(CandorError) as caught:
        closed.addresses("www.example.com")
    assert caught.value.kind is ErrorKind.UNAVAILABLE


def test_nameservers_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        DnsResolver([("localhost", 53)], trust_anchors=IANA_ROOT_ANCHORS)
    with pytest.raises(ValueError, match="out of range"):
        DnsResolver([("127.0.0.1", 0)], trust_anchors=IANA_ROOT_ANCHORS)


def test_trust_anchors_are_required_and_checked() -> None:
    with pytest.raises(ValueError, match="at least one trust anchor"):
        DnsResolver([("127.0.0.1", 53)], trust_anchors=[])
    with pytest.raises(ValueError, match="at least one trust anchor"):
        DnsResolver([("127.0.0.1", 53)], trust_anchors=IANA_ROOT_ANCHORS[0])  # a string, not a list
    with pytest.raises(ValueError, match="not a DS record"):
        DnsResolver([("127.0.0.1", 53)], trust_anchors=[". IN DNSKEY 257 3 8 AwEAAa=="])
    with pytest.raises(ValueError, match="supported algorithm"):
        DnsResolver([("127.0.0.1", 53)], trust_anchors=[". IN DS 20326 5 2 " + "AB" * 32])  # RSASHA1
