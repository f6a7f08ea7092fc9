"""Where a validator may connect: the address policy and the injected resolver.

A validator only ever connects to an IP literal that :class:`AddressPolicy` has just admitted; it never hands
a host name to the operating system, so there is no second DNS resolution between the check and the
connection (DNS rebinding) and no way for a subscriber's DNS or redirect to point the CA at its own network
(server-side request forgery). Every address is checked: those of the identifier, and those of every
redirect target.

The policy admits global unicast addresses only. The refused blocks are Candor's table of Reserved IP
Addresses (BR 1.6.1; :mod:`candor.policy.ip_ranges`): RFC 1918 private-use, loopback, link-local, CGNAT
100.64.0.0/10, multicast, documentation, benchmarking, 0.0.0.0/8 and ::, unique-local fc00::/7, every
IPv4-mapped address ::ffff:0:0/96 (whatever it embeds: a resolver has no business returning one) and any
IPv6 address outside 2000::/3. ``allow_loopback=True`` admits 127.0.0.0/8 and ::1 and nothing else, for
tests and single-machine demonstrations; it is off by default and must be set explicitly.

Resolution is injected (:class:`Resolver`): the DNS resolver with DNSSEC validation (BR 3.2.2.4, from
2026-03-15) plugs in there. :class:`StaticResolver` serves tests and embedded deployments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol, runtime_checkable

from candor.errors import CandorError, ErrorKind
from candor.policy.ip_ranges import reserved_reason

__all__ = ["AddressPolicy", "IPAddress", "Resolver", "StaticResolver"]

IPAddress = IPv4Address | IPv6Address

_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")  # RFC 1122 §3.2.1.3
_LOOPBACK_V6 = IPv6Address("::1")  # RFC 4291 §2.5.3


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a validator may connect to (global unicast only, plus loopback when explicitly allowed)."""

    allow_loopback: bool = False

    def check(self, ip: IPAddress) -> None:
        """Raise CandorError(POLICY) unless the validator may connect to *ip*."""
        if not isinstance(ip, IPv4Address | IPv6Address):
            raise TypeError(f"AddressPolicy.check takes an IPv4Address or IPv6Address, not {type(ip).__name__}")
        if isinstance(ip, IPv6Address) and ip.scope_id is not None:
            raise CandorError(ErrorKind.POLICY, f"validation address policy: {ip} carries an IPv6 zone identifier")
        if self.allow_loopback and (ip == _LOOPBACK_V6 or (isinstance(ip, IPv4Address) and ip in _LOOPBACK_V4)):
            return
        reason = reserved_reason(ip)
        if reason is not None:
            raise CandorError(
                ErrorKind.POLICY,
                f"validation address policy (BR 1.6.1 Reserved IP Address): {ip} is not global unicast ({reason})",
            )


@runtime_checkable
class Resolver(Protocol):
    """Resolves a DNS name to the addresses a validator should try, in the order to try them.

    An implementation raises CandorError: NOT_FOUND when the name has no A or AAAA records (NXDOMAIN or
    NODATA), UNAVAILABLE when resolution failed (SERVFAIL, timeout), POLICY when DNSSEC validation failed.
    Its message is shown to the subscriber and must be one secret-free line.
    """

    def addresses(self, name: str) -> list[IPAddress]: ...


class StaticResolver:
    """A fixed table from DNS name to addresses (case-insensitive names), for tests and embedded use."""

    def __init__(self, mapping: Mapping[str, Iterable[IPAddress | str]]) -> None:
        table: dict[str, tuple[IPAddress, ...]] = {}
        for name, values in mapping.items():
            key = name.lower()
            if key in table:
                raise ValueError(f"StaticResolver: name {name!r} is listed twice")
            table[key] = tuple(ipaddress.ip_address(value) for value in values)
        self._table = table

    def addresses(self, name: str) -> list[IPAddress]:
        found = self._table.get(name.lower())
        if not found:
            raise CandorError(ErrorKind.NOT_FOUND, f"DNS: no A or AAAA records found for {name!r}")
        return list(found)
