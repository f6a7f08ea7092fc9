"""A DNSSEC-validating DNS resolver for the validators: addresses, CAA and its tree climb, TXT for dns-01.

:class:`DnsResolver` implements :class:`candor.validation.addresses.Resolver`, the CAA source of
:func:`candor.validation.caa.caa_decision` (:meth:`DnsResolver.caa_climb`) and the TXT source of dns-01
(:meth:`DnsResolver.txt`). It asks only the nameservers it is given (IP literals and ports; the system's
resolv.conf is never read), over UDP with TCP on truncation, and follows CNAME chains itself when a server
returns a chain without its end, so it works against an authoritative-only server as well as a recursive one.

Every lookup is DNSSEC-validated (BR 3.2.2.4, 3.2.2.8.1; from 2026-03-15) by
:class:`candor.validation.dnssec.DnssecValidator` against the trust anchors the resolver is built with: queries
carry DO and CD (RFC 6840 §5.9) and Candor checks the signatures itself. There is no switch to turn this off.
An answer from a provably Insecure (unsigned) zone is used; a Bogus one raises CandorError(POLICY) with a
message starting ``dnssec:``, never treated as empty.

Failure handling, by query type:

- A/AAAA (:meth:`DnsResolver.addresses`): NXDOMAIN or no records → CandorError(NOT_FOUND); SERVFAIL,
  REFUSED, a referral, timeout or any other failure → CandorError(UNAVAILABLE), as the Resolver protocol says.
- CAA (:meth:`DnsResolver.caa_climb`): NXDOMAIN and NOERROR/NODATA are an empty RRset; any failure to get an
  answer → CandorError(UNAVAILABLE). BR 3.2.2.8 lets a CA treat a lookup failure as permission only in
  narrow cases; Candor never does (fail closed: a failed lookup is not an empty RRset, RFC 8659 §3).
- TXT (:meth:`DnsResolver.txt`): NODATA is an empty list, NXDOMAIN → CandorError(NOT_FOUND), failures →
  CandorError(UNAVAILABLE).

NXDOMAIN and NODATA count only when their NSEC/NSEC3 proof validated or the zone is provably Insecure.
*timeout* bounds each lookup of one name and type: the CNAMEs, the DNSSEC chain queries, retries and every
nameserver included.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
from dns.rdatatype import RdataType
from dns.rdtypes.ANY.CAA import CAA
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.TXT import TXT

from candor.clock import Clock, SystemClock
from candor.errors import CandorError, ErrorKind
from candor.validation.addresses import IPAddress
from candor.validation.caa import CaaRecord
from candor.validation.dnssec import DnssecValidator, Query, Security

__all__ = ["DnsResolver"]

MAX_CNAME_HOPS = 8  # Candor policy: longer alias chains are refused as a failure, not followed
UDP_PAYLOAD = 1232  # EDNS buffer size of the DNS flag day 2020; larger answers come over TCP
_ATTEMPT_SECONDS = 2.0  # one UDP attempt at one server; then the next server, until the lookup's time is spent


class _NoAnswer(Exception):
    """No nameserver gave a usable answer to one query."""


def _is_referral(response: dns.message.Message) -> bool:
    """A referral (NS in authority, no answer, no SOA): the server cannot answer; Candor needs a resolver."""
    if response.rcode() != dns.rcode.NOERROR or response.answer:
        return False
    kinds = {rrset.rdtype for rrset in response.authority}
    return dns.rdatatype.NS in kinds and dns.rdatatype.SOA not in kinds


class _Querier:
    """The network edge: one query to the configured nameservers, within the lookup's deadline."""

    def __init__(self, servers: Sequence[tuple[str, int]], deadline: float) -> None:
        self._servers = servers
        self._deadline = deadline

    def __call__(self, qname: dns.name.Name, rdtype: RdataType) -> dns.message.Message:
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=UDP_PAYLOAD, want_dnssec=True)
        query.flags |= dns.flags.CD  # RFC 6840 §5.9: Candor validates; the server must not filter Bogus data
        failures: list[str] = []
        while True:
            timed_out = False
            for address, port in self._servers:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise _NoAnswer("timed out")
                try:
                    response = dns.query.udp(query, address, port=port, timeout=min(remaining, _ATTEMPT_SECONDS))
                    if response.flags & dns.flags.TC:
                        remaining = max(self._deadline - time.monotonic(), 0.001)
                        response = dns.query.tcp(query, address, port=port, timeout=remaining)
                except dns.exception.Timeout:
                    timed_out = True
                    continue
                except OSError as exc:
                    failures.append(f"{address}#{port} unreachable ({type(exc).__name__})")
                    continue
                except dns.exception.DNSException as exc:
                    failures.append(f"{address}#{port} sent a malformed response ({type(exc).__name__})")
                    continue
                rcode = response.rcode()
                if _is_referral(response):
                    failures.append(f"{address}#{port} answered with a referral, not a resolution")
                elif rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return response
                else:
                    failures.append(f"{address}#{port} answered {dns.rcode.to_text(rcode)}")
            if not timed_out:
                what = f"{dns.rdatatype.to_text(rdtype)} {qname}"
                raise _NoAnswer(f"failed: no nameserver answered {what} ({'; '.join(dict.fromkeys(failures))})")


class DnsResolver:
    """Resolves names by asking *nameservers* (``(ip, port)`` pairs) directly, validating DNSSEC against
    *trust_anchors* (DS records in presentation form, e.g. the IANA root's) on *clock* (the system clock by
    default).
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]],
        *,
        timeout: float = 5.0,
        trust_anchors: Sequence[str],
        clock: Clock | None = None,
    ) -> None:
        if not nameservers:
            raise ValueError("DnsResolver needs at least one nameserver")
        if not timeout > 0:
            raise ValueError("DnsResolver timeout must be positive")
        servers: list[tuple[str, int]] = []
        for address, port in nameservers:
            ip = ipaddress.ip_address(address)  # an IP literal: never a name the OS would resolve
            if not 0 < port < 65536:
                raise ValueError(f"DnsResolver: port {port} of nameserver {address} is out of range")
            servers.append((str(ip), port))
        self._servers = tuple(servers)
        self._timeout = timeout
        self._validator = DnssecValidator(trust_anchors, clock=clock if clock is not None else SystemClock())

    def _query(self) -> Query:
        return _Querier(self._servers, time.monotonic() + self._timeout)

    def _lookup(self, name: str, rdtype: RdataType) -> tuple[list[dns.rdata.Rdata], bool]:
        """(the records of *rdtype* at *name* after following CNAMEs, whether the name ended in NXDOMAIN);
        ([], False) is NODATA."""
        text = dns.rdatatype.to_text(rdtype)
        query = self._query()
        target = dns.name.from_text(name)
        seen = {target}
        for _ in range(MAX_CNAME_HOPS + 1):
            try:
                response = query(target, rdtype)
                validated = self._validator.validate(target, rdtype, response, query)
            except _NoAnswer as exc:
                raise CandorError(ErrorKind.UNAVAILABLE, f"dns: {text} lookup for {name!r} {exc}") from None
            if validated.security is Security.BOGUS:
                raise CandorError(ErrorKind.POLICY, f"dnssec: {text} lookup for {name!r} is Bogus: {validated.reason}")
            if validated.rrset is not None:
                return list(validated.rrset), False
            if validated.negative:
                return [], validated.nxdomain
            # The server gave a CNAME chain without its end (an authoritative server stops at its zone's
            # edge): ask for the end of the chain ourselves.
            for alias in validated.chain:
                hop = alias[0]
                assert isinstance(hop, CNAME)
                if hop.target in seen:
                    raise CandorError(ErrorKind.UNAVAILABLE, f"dns: CNAME loop while resolving {name!r}")
                seen.add(hop.target)
            target = validated.target
        raise CandorError(ErrorKind.UNAVAILABLE, f"dns: more than {MAX_CNAME_HOPS} CNAMEs while resolving {name!r}")

    def addresses(self, name: str) -> list[IPAddress]:
        """The A then AAAA addresses of *name* (Resolver protocol)."""
        found: list[IPAddress] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            records, _ = self._lookup(name, rdtype)
            found.extend(ipaddress.ip_address(rdata.to_text()) for rdata in records)
        if not found:
            raise CandorError(ErrorKind.NOT_FOUND, f"dns: no A or AAAA records found for {name!r}")
        return found

    def caa(self, name: str) -> list[CaaRecord]:
        """CAA(X) of RFC 8659 §3: the CAA RRset at *name*, CNAMEs followed; [] for NXDOMAIN or NODATA."""
        records: list[CaaRecord] = []
        for rdata in self._lookup(name, dns.rdatatype.CAA)[0]:
            assert isinstance(rdata, CAA)
            # latin-1 maps every octet to one character: a non-ASCII tag or value then fails the RFC 8659
            # grammar in caa_decision instead of being silently repaired.
            records.append(CaaRecord(rdata.flags, rdata.tag.decode("latin-1"), rdata.value.decode("latin-1")))
        return records

    def caa_climb(self, name: str) -> list[tuple[str, list[CaaRecord]]]:
        """The RFC 8659 §3 climb: CAA at *name*, then at each parent up to and including the TLD (never the
        root), stopping after the first non-empty RRset (the Relevant RRset). A leading ``*.`` is removed
        (the climb for a wildcard starts at its base name). Raises CandorError(UNAVAILABLE) when any lookup
        fails and CandorError(POLICY) when one is DNSSEC-Bogus: neither is permission (BR 3.2.2.8.1)."""
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

    def txt(self, name: str) -> list[str]:
        """The TXT records at *name*, CNAMEs followed, each record's strings joined (RFC 8555 §8.4, RFC 7208
        §3.3); [] for NODATA; CandorError(NOT_FOUND) for NXDOMAIN. Octets outside ASCII become U+FFFD."""
        records, nxdomain = self._lookup(name, dns.rdatatype.TXT)
        if nxdomain:
            raise CandorError(ErrorKind.NOT_FOUND, f"dns: NXDOMAIN: {name!r} does not exist")
        texts: list[str] = []
        for rdata in records:
            assert isinstance(rdata, TXT)
            texts.append(b"".join(rdata.strings).decode("ascii", "replace"))
        return texts
