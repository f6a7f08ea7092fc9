"""NSEC and NSEC3 denial-of-existence proofs (RFC 4035 §5.4, RFC 6840 §4.1, RFC 5155 §8), as pure functions.

They take the (owner, rdata) pairs of a response's authority section and either say what they prove
(:class:`Denial`) or raise :class:`ProofError`. :mod:`candor.validation.dnssec` verifies the signatures over
those records first and decides what the proof is needed for.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.NSEC3 import NSEC3

__all__ = [
    "MAX_NSEC3_ITERATIONS",
    "Bogus",
    "Denial",
    "ProofError",
    "nsec3_denial",
    "nsec_denial",
    "types_in",
    "wildcard_proof",
]

MAX_NSEC3_ITERATIONS = 150  # RFC 9276 §3.2: validators may refuse more; Candor fails closed above this


class Bogus(Exception):
    """Validation failed; *reason* is one line, safe to show the subscriber."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProofError(Bogus):
    """An NSEC or NSEC3 proof does not prove what the answer claims."""


@dataclass(frozen=True)
class Denial:
    """What an NSEC or NSEC3 proof established."""

    kind: str  # "nxdomain", "nodata" or "wildcard-nodata"
    types: frozenset[int] = frozenset()  # the type bitmap at the name (nodata)
    optout: bool = False  # an NSEC3 opt-out span was needed: an insecure delegation may hide there


def types_in(windows: Iterable[tuple[int, bytes]]) -> frozenset[int]:
    """The types of an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2)."""
    found = set()
    for window, bitmap in windows:
        for index, octet in enumerate(bitmap):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    found.add(window * 256 + index * 8 + bit)
    return frozenset(found)


def _common_ancestor(a: dns.name.Name, b: dns.name.Name) -> dns.name.Name:
    labels = a.fullcompare(b)[2]
    return a.split(labels)[1]


def _wildcard(name: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((b"*", *name.labels))


def _nsec_covers(owner: dns.name.Name, nxt: dns.name.Name, name: dns.name.Name) -> bool:
    """RFC 4034 §6.1 canonical order; the last NSEC of a zone points back at the apex."""
    if owner < nxt:
        return bool(owner < name < nxt)
    return bool(name > owner or name < nxt)


def _nsec_usable_below(owner: dns.name.Name, types: frozenset[int], name: dns.name.Name) -> bool:
    """RFC 6840 §4.1: an NSEC at a delegation (NS without SOA) or a DNAME proves nothing below its owner."""
    if not name.is_subdomain(owner) or name == owner:
        return True
    delegation = dns.rdatatype.NS in types and dns.rdatatype.SOA not in types
    return not delegation and dns.rdatatype.DNAME not in types


def _check_nodata_types(qname: dns.name.Name, qtype: RdataType, types: frozenset[int], what: str) -> None:
    qtext = dns.rdatatype.to_text(qtype)
    if qtype in types or dns.rdatatype.CNAME in types:  # RFC 6840 §4.3: check for CNAME
        raise ProofError(f"the {what} at {qname} lists {qtext} or CNAME, so it cannot deny {qtext}")
    if qtype != dns.rdatatype.DS and dns.rdatatype.NS in types and dns.rdatatype.SOA not in types:
        raise ProofError(f"the {what} at {qname} is the parent side of a delegation: it cannot deny {qtext}")
    if qtype == dns.rdatatype.DS and dns.rdatatype.SOA in types and len(qname) > 1:
        raise ProofError(f"the {what} at {qname} is the child apex: only the parent can deny DS (RFC 6840 §4.4)")


def nsec_denial(
    qname: dns.name.Name, qtype: RdataType, nsecs: Sequence[tuple[dns.name.Name, NSEC]], *, nxdomain: bool
) -> Denial:
    """RFC 4035 §5.4: prove NXDOMAIN (an NSEC covering qname and one covering the wildcard at the closest
    encloser) or NODATA (the NSEC at qname without qtype, or a covered qname and the matching wildcard NSEC
    without qtype, RFC 4035 §3.1.3.4). Raises ProofError."""
    qtext = dns.rdatatype.to_text(qtype)
    records = [(owner, rdata.next, types_in(rdata.windows)) for owner, rdata in nsecs]
    if not nxdomain:
        for owner, _, types in records:
            if owner == qname:
                _check_nodata_types(qname, qtype, types, "NSEC")
                return Denial("nodata", types)
    cover = next(
        (
            (owner, nxt)
            for owner, nxt, types in records
            if _nsec_covers(owner, nxt, qname) and _nsec_usable_below(owner, types, qname)
        ),
        None,
    )
    if cover is None:
        raise ProofError(f"no NSEC proves that {qname} does not exist")
    if not nxdomain and cover[1].is_subdomain(qname) and cover[1] != qname:
        # An empty non-terminal (RFC 4592 §2.2.2) has no NSEC of its own: the NSEC before it points below it,
        # so the name exists, with no data of any type.
        return Denial("nodata")
    encloser = max(_common_ancestor(qname, cover[0]), _common_ancestor(qname, cover[1]), key=len)
    wildcard = _wildcard(encloser)
    if nxdomain:
        if any(_nsec_covers(owner, nxt, wildcard) for owner, nxt, _ in records):
            return Denial("nxdomain")
        raise ProofError(f"no NSEC proves that the wildcard {wildcard} does not exist")
    for owner, _, types in records:
        if owner == wildcard:
            _check_nodata_types(wildcard, qtype, types, "NSEC")
            return Denial("wildcard-nodata", types)
    raise ProofError(f"no NSEC proves that {qname} has no {qtext} record")


@dataclass(frozen=True)
class _Nsec3Set:
    """The usable NSEC3 records of one zone (RFC 5155 §8.1, §8.2): hash algorithm 1, flags 0 or 1."""

    zone: dns.name.Name
    records: tuple[tuple[str, NSEC3], ...]  # (owner hash, lower-case base32hex; rdata)
    hashes: dict[tuple[dns.name.Name, bytes, int], str] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, zone: dns.name.Name, nsec3s: Sequence[tuple[dns.name.Name, NSEC3]]) -> _Nsec3Set:
        records = []
        for owner, rdata in nsec3s:
            if owner.parent() != zone or rdata.algorithm != 1 or rdata.flags not in (0, 1):
                continue
            if rdata.iterations > MAX_NSEC3_ITERATIONS:
                raise ProofError(f"NSEC3 of {zone} uses {rdata.iterations} iterations (RFC 9276 §3.2)")
            records.append((owner.labels[0].decode("ascii").lower(), rdata))
        return cls(zone, tuple(records))

    def _hash(self, name: dns.name.Name, rdata: NSEC3) -> str:
        key = (name, rdata.salt, rdata.iterations)
        if key not in self.hashes:
            self.hashes[key] = dns.dnssec.nsec3_hash(name, rdata.salt, rdata.iterations, 1).lower()
        return self.hashes[key]

    def matching(self, name: dns.name.Name) -> NSEC3 | None:
        return next((rdata for owner, rdata in self.records if owner == self._hash(name, rdata)), None)

    def covering(self, name: dns.name.Name) -> NSEC3 | None:
        for owner, rdata in self.records:
            hashed = self._hash(name, rdata)
            following = base64.b32hexencode(rdata.next).decode("ascii").lower()
            inside = owner < hashed < following if owner < following else (hashed > owner or hashed < following)
            if inside:
                return rdata
        return None

    def closest_encloser(self, qname: dns.name.Name) -> tuple[dns.name.Name, NSEC3]:
        """RFC 5155 §8.3: the closest provable encloser and the NSEC3 covering the next closer name."""
        candidate, next_closer = qname, None
        while candidate.is_subdomain(self.zone):
            match = self.matching(candidate)
            if match is not None:
                types = types_in(match.windows)
                if dns.rdatatype.DNAME in types or (
                    dns.rdatatype.NS in types and dns.rdatatype.SOA not in types and next_closer is not None
                ):
                    raise ProofError(f"the NSEC3 at {candidate} is a delegation or DNAME: no proof below it")
                if next_closer is None:
                    raise ProofError(f"an NSEC3 shows that {qname} exists")
                cover = self.covering(next_closer)
                if cover is None:
                    raise ProofError(f"no NSEC3 covers the next closer name {next_closer}")
                return candidate, cover
            next_closer, candidate = candidate, candidate.parent()
        raise ProofError(f"no NSEC3 proves a closest encloser of {qname} in {self.zone}")


def nsec3_denial(
    qname: dns.name.Name,
    qtype: RdataType,
    zone: dns.name.Name,
    nsec3s: Sequence[tuple[dns.name.Name, NSEC3]],
    *,
    nxdomain: bool,
) -> Denial:
    """RFC 5155 §8.4 (name error), §8.5 (no data), §8.6 (no data for DS, opt-out), §8.7 (wildcard no data).
    Raises ProofError."""
    chain = _Nsec3Set.of(zone, nsec3s)
    qtext = dns.rdatatype.to_text(qtype)
    if not nxdomain:
        match = chain.matching(qname)
        if match is not None:
            types = types_in(match.windows)
            _check_nodata_types(qname, qtype, types, "NSEC3")
            return Denial("nodata", types)
    encloser, cover = chain.closest_encloser(qname)
    optout = bool(cover.flags & 1)
    wildcard = _wildcard(encloser)
    if nxdomain:
        if chain.covering(wildcard) is None:
            raise ProofError(f"no NSEC3 proves that the wildcard {wildcard} does not exist")
        return Denial("nxdomain", optout=optout)
    if qtype == dns.rdatatype.DS and optout:
        return Denial("nodata", optout=True)  # RFC 5155 §8.6: an insecure delegation in an opt-out span
    match = chain.matching(wildcard)
    if match is None:
        raise ProofError(f"no NSEC3 proves that {qname} has no {qtext} record")
    types = types_in(match.windows)
    _check_nodata_types(wildcard, qtype, types, "NSEC3")
    return Denial("wildcard-nodata", types)


def wildcard_proof(
    qname: dns.name.Name,
    labels: int,
    zone: dns.name.Name,
    nsecs: Sequence[tuple[dns.name.Name, NSEC]],
    nsec3s: Sequence[tuple[dns.name.Name, NSEC3]],
) -> bool:
    """An answer expanded from a wildcard (RRSIG labels < owner labels) needs proof that qname itself does not
    exist: an NSEC covering it (RFC 4035 §5.3.4) or an NSEC3 covering the next closer name (RFC 5155 §8.8).
    Returns whether that NSEC3 is an opt-out one; raises ProofError."""
    for owner, rdata in nsecs:
        types = types_in(rdata.windows)
        if _nsec_covers(owner, rdata.next, qname) and _nsec_usable_below(owner, types, qname):
            return False
    next_closer = qname.split(labels + 2)[1]  # the source of synthesis has labels + 1 labels, the root included
    cover = _Nsec3Set.of(zone, nsec3s).covering(next_closer) if nsec3s else None
    if cover is None:
        raise ProofError(f"the wildcard answer for {qname} comes without proof that {qname} does not exist")
    return bool(cover.flags & 1)
