"""The address policy (BR 1.6.1 Reserved IP Addresses; no SSRF into the CA's own networks) and the resolvers."""

from __future__ import annotations

import ipaddress

import pytest

from candor.errors import CandorError, ErrorKind
from candor.validation import AddressPolicy, Resolver, StaticResolver

# (address, why it must be refused): one or more rows per refused range.
REFUSED = [
    ("10.0.0.1", "RFC 1918 private-use"),
    ("172.16.5.4", "RFC 1918 private-use"),
    ("172.31.255.254", "RFC 1918 private-use"),
    ("192.168.1.1", "RFC 1918 private-use"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local (cloud metadata endpoint)"),
    ("100.64.0.1", "CGNAT shared address space RFC 6598"),
    ("100.127.255.254", "CGNAT shared address space RFC 6598"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved for future use"),
    ("255.255.255.255", "limited broadcast"),
    ("192.0.2.1", "documentation TEST-NET-1"),
    ("198.51.100.1", "documentation TEST-NET-2"),
    ("203.0.113.1", "documentation TEST-NET-3"),
    ("198.18.0.1", "benchmarking"),
    ("0.0.0.0", "this host"),  # noqa: S104 (an address to refuse, not one to bind)
    ("0.1.2.3", "this network"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation RFC 9637"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:8.8.8.8", "IPv4-mapped, even of a global address"),
    ("64:ff9b::a00:1", "NAT64 of 10.0.0.1"),
    ("2002:a00:1::1", "6to4 of 10.0.0.1"),
    ("2001::1", "Teredo"),
    ("100::1", "discard-only"),
    ("4000::1", "outside the global unicast block 2000::/3"),
]
GLOBAL = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_default_policy_refuses_every_non_global_unicast_range(address: str, why: str) -> None:
    with pytest.raises(CandorError) as caught:
        AddressPolicy().check(ipaddress.ip_address(address))
    assert caught.value.kind is ErrorKind.POLICY
    assert "BR 1.6.1" in caught.value.message
    assert str(ipaddress.ip_address(address)) in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("address", GLOBAL)
def test_global_unicast_addresses_are_admitted(address: str) -> None:
    AddressPolicy().check(ipaddress.ip_address(address))
    AddressPolicy(allow_loopback=True).check(ipaddress.ip_address(address))


def test_loopback_is_refused_unless_explicitly_allowed() -> None:
    assert AddressPolicy().allow_loopback is False
    for address in ("127.0.0.1", "127.0.0.11", "::1"):
        with pytest.raises(CandorError):
            AddressPolicy().check(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.11", "127.255.255.254", "::1"])
def test_allow_loopback_admits_127_slash_8_and_ipv6_loopback(address: str) -> None:
    AddressPolicy(allow_loopback=True).check(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "why"),
    [row for row in REFUSED if row[0] not in ("127.0.0.1", "127.255.255.254", "::1")],
)
def test_allow_loopback_admits_nothing_else(address: str, why: str) -> None:
    with pytest.raises(CandorError):
        AddressPolicy(allow_loopback=True).check(ipaddress.ip_address(address))


def test_ipv6_zone_identifier_is_refused() -> None:
    with pytest.raises(CandorError, match="zone"):
        AddressPolicy(allow_loopback=True).check(ipaddress.IPv6Address("fe80::1%eth0"))
    with pytest.raises(CandorError, match="zone"):
        AddressPolicy(allow_loopback=True).check(ipaddress.IPv6Address("::1%lo"))


def test_a_string_is_a_programming_error_not_an_address() -> None:
    with pytest.raises(TypeError):
        AddressPolicy().check("8.8.8.8")  # type: ignore[arg-type]


def test_static_resolver_answers_in_order_and_ignores_case() -> None:
    resolver = StaticResolver({"Shop.Example.NET": ["2606:4700:4700::1111", ipaddress.IPv4Address("8.8.8.8")]})
    assert isinstance(resolver, Resolver)
    assert resolver.addresses("shop.example.net") == [
        ipaddress.IPv6Address("2606:4700:4700::1111"),
        ipaddress.IPv4Address("8.8.8.8"),
    ]


def test_static_resolver_reports_an_unknown_name_as_not_found() -> None:
    with pytest.raises(CandorError) as caught:
        StaticResolver({}).addresses("missing.example.net")
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_static_resolver_refuses_a_name_listed_twice_and_bad_addresses() -> None:
    with pytest.raises(ValueError, match="twice"):
        StaticResolver({"a.example.net": ["8.8.8.8"], "A.example.net": ["1.1.1.1"]})
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        StaticResolver({"a.example.net": ["not-an-address"]})
