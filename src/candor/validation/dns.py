"""A DNS resolver for the validators (dnspython): addresses for a name, and the CAA tree climb.

:class:`DnsResolver` implements :class:`candor.validation.addresses.Resolver` and adds
:meth:`DnsResolver.caa_climb` for :func:`candor.validation.caa.caa_decision`. It asks only the nameservers it
is given (IP literals and ports; the system's resolv.conf is never read) and follows CNAME chains itself when
a server returns a chain without its end, so it works against an authoritative-only server as well as a
recursive one. No DNSSEC validation here: that is a separate piece (BR 3.2.2.4, from 2026-03-15).

Failure handling, by query type:

- A/AAAA (:meth:`DnsResolver.addresses`): NXDOMAIN or no records → CandorError(NOT_FOUND); SERVFAIL,
  REFUSED, timeout or any other failure → CandorError(UNAVAILABLE), as the Resolver protocol says.
- CAA (:meth:`DnsResolver.caa_climb`): NXDOMAIN and NOERROR/NODATA are an empty RRset; any failure to get an
  answer → CandorError(UNAVAILABLE). BR 3.2.2.8 lets a CA treat a lookup failure as permission only in
  narrow cases; Candor never does (fail closed: a failed lookup is not an empty RRset, RFC 8659 §3).
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.CAA import CAA

from candor.errors import CandorError, ErrorKind
from candor.validation.addresses import IPAddress
from candor.validation.caa import CaaRecord

__all__ = ["DnsResolver"]

MAX_CNAME_HOPS = 8  # Candor policy: longer alias chains are refused as a failure, not followed


def _describe(exc: dns.exception.DNSException) -> str:
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no nameserver gave an answer (SERVFAIL, REFUSED or unreachable)"
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.YXDOMAIN):
        return "the name is too long after DNAME substitution"
    return f"failed ({type(exc).__name__})"


class DnsResolver:
    """Resolves names by asking *nameservers* (``(ip, port)`` pairs) directly, over UDP with TCP fallback.

    *timeout* bounds each lookup of one name and type, retries and every nameserver included.
    """

    def __init__(self, nameservers: list[tuple[str, int]], *, timeout: float = 5.0) -> None:
        if not nameservers:
            raise ValueError("DnsResolver needs at least one nameserver")
        if timeout <= 0:
            raise ValueError("DnsResolver timeout must be positive")
        servers: list[str | dns.nameserver.Nameserver] = []
        for address, port in nameservers:
            ip = ipaddress.ip_address(address)  # an IP literal: never a name the OS would resolve
            if not 0 < port < 65536:
                raise ValueError(f"DnsResolver: port {port} of nameserver {address} is out of range")
            servers.append(dns.nameserver.Do53Nameserver(str(ip), port))
        resolver = dns.resolver.Resolver(configure=False)  # no resolv.conf, no search list
        resolver.nameservers = servers
        resolver.timeout = timeout
        resolver.lifetime = timeout
        self._resolver = resolver

    def _rrset(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        """The records of *rdtype* at *name* after following CNAMEs: [] for NXDOMAIN or NODATA."""
        target = dns.name.from_text(name)
        seen = {target}
        for _ in range(MAX_CNAME_HOPS + 1):
            try:
                answer = self._resolver.resolve(target, rdtype, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                return []
            except dns.exception.DNSException as exc:
                text = dns.rdatatype.to_text(rdtype)
                raise CandorError(ErrorKind.UNAVAILABLE, f"dns: {text} lookup for {name!r} {_describe(exc)}") from None
            if answer.rrset is not None:
                return list(answer.rrset)
            if answer.canonical_name == target:
                return []  # NOERROR/NODATA
            # The server gave a CNAME chain without its end (an authoritative server stops at its zone's
            # edge): ask for the end of the chain ourselves.
            target = answer.canonical_name
            if target in seen:
                raise CandorError(ErrorKind.UNAVAILABLE, f"dns: CNAME loop while resolving {name!r}")
            seen.add(target)
        raise CandorError(ErrorKind.UNAVAILABLE, f"dns: more than {MAX_CNAME_HOPS} CNAMEs while resolving {name!r}")

    def addresses(self, name: str) -> list[IPAddress]:
        """The A then AAAA addresses of *name* (Resolver protocol)."""
        found: list[IPAddress] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found.extend(ipaddress.ip_address(rdata.to_text()) for rdata in self._rrset(name, rdtype))
        if not found:
            raise CandorError(ErrorKind.NOT_FOUND, f"dns: no A or AAAA records found for {name!r}")
        return found

    def caa(self, name: str) -> list[CaaRecord]:
        """CAA(X) of RFC 8659 §3: the CAA RRset at *name*, CNAMEs followed; [] for NXDOMAIN or NODATA."""
        records: list[CaaRecord] = []
        for rdata in self._rrset(name, dns.rdatatype.CAA):
            assert isinstance(rdata, CAA)
            # latin-1 maps every octet to one character: a non-ASCII tag or value then fails the RFC 8659
            # grammar in caa_decision instead of being silently repaired.
            records.append(CaaRecord(rdata.flags, rdata.tag.decode("latin-1"), rdata.value.decode("latin-1")))
        return records

    def caa_climb(self, name: str) -> list[tuple[str, list[CaaRecord]]]:
        """The RFC 8659 §3 climb: CAA at *name*, then at each parent up to and including the TLD (never the
        root), stopping after the first non-empty RRset (the Relevant RRset). A leading ``*.`` is removed
        (the climb for a wildcard starts at its base name). Raises CandorError(UNAVAILABLE) when any lookup
        fails: a failed lookup is not permission."""
        fqdn = name.lower().removeprefix("*.").rstrip(".")
        labels = fqdn.split(".")
        if not fqdn or any(not label for label in labels):
            raise ValueError(f"caa_climb: {name!r} is not a domain name")
        climb: list[tuple[str, list[CaaRecord]]] = []
        for index in range(len(labels)):
            current = ".".join(labels[index:])
            records = self.caa(current)
            climb.append((current, records))
            if records:
                break
        return climb
