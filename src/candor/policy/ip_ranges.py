"""Reserved IP Addresses (BR 1.6.1, 4.2.2, 7.1.2.7.12): every block in the IANA special-purpose registries.

BR 1.6.1 defines a Reserved IP Address as one "contained in the address block of *any* entry" of the IANA
IPv4 and IPv6 Special-Purpose Address Registries, so entries marked globally reachable (AS112, AMT, PCP/TURN
anycast, 64:ff9b::/96) are refused too. Candor additionally refuses multicast (224.0.0.0/4, ff00::/8) and any
IPv6 address outside 2000::/3, the only block IANA has allocated as global unicast (RFC 4291 §2.4).

Transcribed from iana-ipv4-special-registry and iana-ipv6-special-registry as known at 2026-05 (from memory
of the registries, not a download: verify against the live registries when refreshing this table).
Python's ``ipaddress.is_global`` is used only as a cross-check in the tests: its lists differ between
Python releases and omit several entries below.
"""

from __future__ import annotations

import ipaddress

__all__ = ["RESERVED_NETWORKS", "reserved_reason"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_IPV4 = (
    ("0.0.0.0/8", "IANA IPv4 special-purpose registry: 'This network' (RFC 791)"),
    ("10.0.0.0/8", "IANA IPv4 special-purpose registry: Private-Use (RFC 1918)"),
    ("100.64.0.0/10", "IANA IPv4 special-purpose registry: Shared Address Space (RFC 6598)"),
    ("127.0.0.0/8", "IANA IPv4 special-purpose registry: Loopback (RFC 1122)"),
    ("169.254.0.0/16", "IANA IPv4 special-purpose registry: Link Local (RFC 3927)"),
    ("172.16.0.0/12", "IANA IPv4 special-purpose registry: Private-Use (RFC 1918)"),
    ("192.0.0.0/24", "IANA IPv4 special-purpose registry: IETF Protocol Assignments (RFC 6890)"),
    ("192.0.2.0/24", "IANA IPv4 special-purpose registry: Documentation TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "IANA IPv4 special-purpose registry: AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "IANA IPv4 special-purpose registry: AMT (RFC 7450)"),
    ("192.88.99.0/24", "IANA IPv4 special-purpose registry: deprecated 6to4 Relay Anycast (RFC 7526)"),
    ("192.168.0.0/16", "IANA IPv4 special-purpose registry: Private-Use (RFC 1918)"),
    ("192.175.48.0/24", "IANA IPv4 special-purpose registry: Direct Delegation AS112 Service (RFC 7534)"),
    ("198.18.0.0/15", "IANA IPv4 special-purpose registry: Benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "IANA IPv4 special-purpose registry: Documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "IANA IPv4 special-purpose registry: Documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "Candor policy: multicast is not a host address (RFC 5771)"),
    ("255.255.255.255/32", "IANA IPv4 special-purpose registry: Limited Broadcast (RFC 8190, RFC 919 §7)"),
    ("240.0.0.0/4", "IANA IPv4 special-purpose registry: Reserved (RFC 1112 §4)"),
)

# Sub-entries inside a listed block (192.0.0.0/29, 192.0.0.8-10/32, 192.0.0.170-171/32 in 192.0.0.0/24;
# 2001:1::1-3/128, 2001:2::/48, 2001:3::/32, 2001:4:112::/48, 2001:10::/28, 2001:20::/28, 2001:30::/28 in
# 2001::/23) need no rows of their own.
_IPV6 = (
    ("::/128", "IANA IPv6 special-purpose registry: Unspecified Address (RFC 4291)"),
    ("::1/128", "IANA IPv6 special-purpose registry: Loopback Address (RFC 4291)"),
    ("::ffff:0:0/96", "IANA IPv6 special-purpose registry: IPv4-mapped Address (RFC 4291)"),
    ("64:ff9b::/96", "IANA IPv6 special-purpose registry: IPv4-IPv6 Translation (RFC 6052)"),
    ("64:ff9b:1::/48", "IANA IPv6 special-purpose registry: Local-Use IPv4/IPv6 Translation (RFC 8215)"),
    ("100::/64", "IANA IPv6 special-purpose registry: Discard-Only Address Block (RFC 6666)"),
    ("2001::/23", "IANA IPv6 special-purpose registry: IETF Protocol Assignments (RFC 2928)"),
    ("2001:db8::/32", "IANA IPv6 special-purpose registry: Documentation (RFC 3849)"),
    ("2002::/16", "IANA IPv6 special-purpose registry: 6to4 (RFC 3056)"),
    ("2620:4f:8000::/48", "IANA IPv6 special-purpose registry: Direct Delegation AS112 Service (RFC 7534)"),
    ("3fff::/20", "IANA IPv6 special-purpose registry: Documentation (RFC 9637)"),
    ("5f00::/16", "IANA IPv6 special-purpose registry: Segment Routing (SRv6) SIDs (RFC 9602)"),
    ("fc00::/7", "IANA IPv6 special-purpose registry: Unique-Local (RFC 4193)"),
    ("fe80::/10", "IANA IPv6 special-purpose registry: Link-Local Unicast (RFC 4291)"),
    ("ff00::/8", "Candor policy: multicast is not a host address (RFC 4291 §2.7)"),
)

RESERVED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(block), source) for block, source in _IPV4 + _IPV6
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def reserved_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why *address* may not appear in a certificate, or None if it is an ordinary global unicast address."""
    for network, source in RESERVED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{source}, block {network}"
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "IANA IPv6 Address Space: outside the global unicast block 2000::/3 (RFC 4291 §2.4)"
    return None
