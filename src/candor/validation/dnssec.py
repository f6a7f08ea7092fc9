"""DNSSEC validation of the DNS answers the validators use (BR 3.2.2.4 and 3.2.2.8.1: DCV and CAA lookups).

Candor validates itself and never trusts an AD bit: every query goes out with DO=1 and CD=1, and
:class:`DnssecValidator` checks each answer against the configured trust anchors (DS records, normally of the
root) and the injected clock (RFC 4035 §5):

- the chain of trust is built top-down from the RRSIG signer names: a zone's DNSKEY RRset must be signed by a
  key that matches a DS record (RFC 4035 §5.2), and that DS RRset must be signed by the parent (found as the
  DS RRset's own signer, so a single server serving parent and child works, and no zone per label is
  assumed);
- every RRset of an answer is verified, each CNAME of a chain included (RFC 4035 §5.3), within its RRSIG
  inception and expiration on the injected clock; a wildcard expansion needs the proof that the name itself
  does not exist (RFC 4035 §5.3.4, RFC 5155 §8.8);
- NXDOMAIN and NODATA need an NSEC proof (RFC 4035 §5.4, RFC 6840 §4.1) or an NSEC3 proof (RFC 5155 §8.3-8.7);
- unsigned data is accepted only where the zone holding it is provably Insecure: the parent's signed denial
  of the DS at the delegation (type bitmap with NS but without DS), an NSEC3 opt-out span covering it (RFC
  5155 §6, §8.6), or DS records that name only algorithms or digests Candor does not support (RFC 4035 §5.2);
- anything else is Bogus, with a one-line reason. Bogus is never permission.

Supported: algorithms 8, 10 (RSA/SHA-2), 13, 14 (ECDSA), 15, 16 (EdDSA) (RFC 8624 §3.1); DS digests SHA-256 and
SHA-384, and SHA-1 only when no SHA-2 digest is published (RFC 4509 §3). DNAME is not followed: a synthesised
CNAME carries no RRSIG, so such an answer from a signed zone is Bogus (fails closed).

The network stays at the edge: the validator is handed a :data:`Query` function per lookup (it raises whatever
the caller uses for "no answer") and keeps validated DNSKEY sets and insecurity proofs per zone for their TTL
in a bounded cache. The NSEC and NSEC3 proofs are pure functions over (owner, rdata) pairs.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.dnssectypes import DSDigest
from dns.rdatatype import RdataType
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.NSEC3 import NSEC3
from dns.rdtypes.ANY.RRSIG import RRSIG

from candor.clock import Clock
from candor.validation.denial import (
    Bogus,
    Denial,
    ProofError,
    nsec3_denial,
    nsec_denial,
    wildcard_proof,
)

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Denial",
    "DnssecValidator",
    "ProofError",
    "Query",
    "Security",
    "Validated",
    "nsec3_denial",
    "nsec_denial",
    "parse_trust_anchors",
    "wildcard_proof",
]

Query = Callable[[dns.name.Name, RdataType], dns.message.Message]

SUPPORTED_ALGORITHMS = frozenset({8, 10, 13, 14, 15, 16})  # RFC 8624 §3.1: RSASHA256/512, ECDSA, Ed25519/448
_SHA1, _SHA2_DIGESTS = 1, frozenset({2, 4})  # RFC 4509 (SHA-256), RFC 6605 (SHA-384)
MAX_CACHE_SECONDS = 3600  # validated keys are kept for their TTL, at most this long
CACHE_ENTRIES = 512
_ZONE_FLAG, _REVOKE_FLAG = 0x0100, 0x0080  # RFC 4034 §2.1.1, RFC 5011 §3


class Security(enum.Enum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"


@dataclass(frozen=True)
class Validated:
    """What one response says about (qname, qtype), once validated.

    ``rrset`` is the qtype RRset at the end of ``chain`` (the CNAMEs followed from qname), when the response
    holds it; ``negative`` is True when the response proves (or, insecurely, says) that ``target`` has no
    such RRset; when neither, the chain leaves the response and the caller asks again for ``target``.
    """

    security: Security
    reason: str  # why Bogus or why Insecure; "" when Secure
    target: dns.name.Name
    chain: tuple[dns.rrset.RRset, ...] = ()
    rrset: dns.rrset.RRset | None = None
    negative: bool = False
    nxdomain: bool = False


# --- trust anchors ------------------------------------------------------------------------------------------


def parse_trust_anchors(texts: Sequence[str]) -> dict[dns.name.Name, tuple[DS, ...]]:
    """DS records in presentation form (``". IN DS 20326 8 2 E06D..."``, TTL and class optional), by zone."""
    if isinstance(texts, str) or not texts:
        raise ValueError("DNSSEC needs at least one trust anchor (a list of DS records)")
    anchors: dict[dns.name.Name, list[DS]] = {}
    for text in texts:
        tokens = text.split()
        if len(tokens) < 2:
            raise ValueError(f"trust anchor {text!r} is not a DS record")
        owner, rest = tokens[0], tokens[1:]
        if rest and rest[0].isdigit():
            rest = rest[1:]  # TTL
        if rest and rest[0].upper() == "IN":
            rest = rest[1:]
        if not rest or rest[0].upper() != "DS":
            raise ValueError(f"trust anchor {text!r} is not a DS record")
        try:
            name = dns.name.from_text(owner)
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, " ".join(rest[1:]))
        except dns.exception.DNSException as exc:
            raise ValueError(f"trust anchor {text!r} is not a DS record ({exc})") from None
        assert isinstance(rdata, DS)
        anchors.setdefault(name, []).append(rdata)
    result = {name: tuple(records) for name, records in anchors.items()}
    if not any(_usable_ds(records) for records in result.values()):
        raise ValueError("no trust anchor uses a supported algorithm (8, 10, 13-16) and digest (SHA-2)")
    return result


def _usable_ds(records: Iterable[DS]) -> list[DS]:
    """The DS records a validator may use: supported algorithm and digest; SHA-1 only without SHA-2."""
    known = {_SHA1, *_SHA2_DIGESTS}
    usable = [ds for ds in records if ds.algorithm in SUPPORTED_ALGORITHMS and ds.digest_type in known]
    if any(ds.digest_type in _SHA2_DIGESTS for ds in usable):
        usable = [ds for ds in usable if ds.digest_type != _SHA1]  # RFC 4509 §3
    return usable


def _matches_ds(zone: dns.name.Name, key: DNSKEY, records: Iterable[DS]) -> bool:
    for ds in records:
        if ds.key_tag != dns.dnssec.key_id(key) or ds.algorithm != key.algorithm:
            continue
        try:
            made = dns.dnssec.make_ds(zone, key, DSDigest(ds.digest_type), validating=True)
        except (ValueError, dns.exception.DNSException):
            continue
        if made.digest == ds.digest:
            return True
    return False


# --- the validator -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ZoneKeys:
    zone: dns.name.Name
    keys: dns.rrset.RRset | None  # the validated DNSKEY RRset; None when the zone is provably Insecure
    reason: str  # why Insecure
    expires: float  # POSIX time, on the injected clock


def _what(rrset: dns.rrset.RRset) -> str:
    return f"{dns.rdatatype.to_text(rrset.rdtype)} {rrset.name}"


def _rrsigs(section: Sequence[dns.rrset.RRset], rrset: dns.rrset.RRset) -> list[RRSIG]:
    return [
        rdata
        for sigs in section
        if sigs.rdtype == dns.rdatatype.RRSIG and sigs.covers == rrset.rdtype and sigs.name == rrset.name
        for rdata in sigs
        if isinstance(rdata, RRSIG)
    ]


def _find(section: Sequence[dns.rrset.RRset], name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    return next((rrset for rrset in section if rrset.name == name and rrset.rdtype == rdtype), None)


def _signer(sigs: Iterable[RRSIG], owner: dns.name.Name) -> dns.name.Name | None:
    """The zone that signed data at *owner*: the deepest RRSIG signer that encloses it (RFC 4035 §5.3.1)."""
    signers = [sig.signer for sig in sigs if owner.is_subdomain(sig.signer)]
    return max(signers, key=len) if signers else None


def _verify(rrset: dns.rrset.RRset, sigs: Sequence[RRSIG], keys: _ZoneKeys, now: float) -> RRSIG:
    """The RRSIG that verifies *rrset* with the zone's keys inside its validity period (RFC 4035 §5.3)."""
    assert keys.keys is not None
    what = _what(rrset)
    failures: list[str] = []
    for sig in sigs:
        candidates = [
            key
            for key in keys.keys
            if isinstance(key, DNSKEY)
            and key.algorithm == sig.algorithm
            and dns.dnssec.key_id(key) == sig.key_tag
            and key.flags & _ZONE_FLAG
            and key.protocol == 3
            and (not key.flags & _REVOKE_FLAG or rrset.rdtype == dns.rdatatype.DNSKEY)
        ]
        if sig.signer != keys.zone:
            failures.append(f"is made by {sig.signer}, not by the zone {keys.zone}")
        elif sig.algorithm not in SUPPORTED_ALGORITHMS:
            failures.append(f"uses unsupported algorithm {sig.algorithm}")
        elif not candidates:
            failures.append(f"names key {sig.key_tag}, which is not a DNSKEY of {keys.zone}")
        elif sig.expiration < now:
            failures.append(f"expired at {_utc(sig.expiration)}")
        elif sig.inception > now:
            failures.append(f"is not valid before {_utc(sig.inception)}")
        else:
            try:
                dns.dnssec.validate_rrsig(rrset, sig, {keys.zone: keys.keys}, now=now)
            except (ValueError, dns.exception.DNSException):
                failures.append("does not verify")
            else:
                return sig
    if not failures:
        raise Bogus(f"{what} has no RRSIG, yet {keys.zone} is signed (RFC 4035 §5.3)")
    return _fail(f"RRSIG over {what} {'; '.join(dict.fromkeys(failures))} (RFC 4035 §5.3)")


def _fail(reason: str) -> RRSIG:
    raise Bogus(reason)


def _utc(timestamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DnssecValidator:
    """Validates responses against *trust_anchors* (DS records in presentation form) on *clock*.

    Thread-safe; the per-zone cache of validated keys holds at most *cache_entries* zones.
    """

    def __init__(self, trust_anchors: Sequence[str], *, clock: Clock, cache_entries: int = CACHE_ENTRIES) -> None:
        self._anchors = parse_trust_anchors(trust_anchors)
        self._clock = clock
        self._cache: OrderedDict[dns.name.Name, _ZoneKeys] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()

    def validate(
        self, qname: dns.name.Name, qtype: RdataType, response: dns.message.Message, query: Query
    ) -> Validated:
        """Validate *response* to (qname, qtype); *query* fetches what the chain of trust needs."""
        run = _Run(self, query, self._clock.now().timestamp())
        try:
            return run.response(qname, qtype, response)
        except Bogus as bogus:
            return Validated(Security.BOGUS, bogus.reason, qname)

    # The cache, shared by runs.
    def _cached(self, zone: dns.name.Name, now: float) -> _ZoneKeys | None:
        with self._lock:
            entry = self._cache.get(zone)
            if entry is None or entry.expires <= now:
                return None
            self._cache.move_to_end(zone)
            return entry

    def _store(self, entry: _ZoneKeys) -> None:
        with self._lock:
            self._cache[entry.zone] = entry
            self._cache.move_to_end(entry.zone)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)


class _Run:
    """One validation: the query function and the time it uses."""

    def __init__(self, validator: DnssecValidator, query: Query, now: float) -> None:
        self._validator = validator
        self._anchors = validator._anchors
        self._query = query
        self._now = now
        self._insecure: list[str] = []

    def _result(
        self,
        target: dns.name.Name,
        chain: Sequence[dns.rrset.RRset] = (),
        rrset: dns.rrset.RRset | None = None,
        *,
        nxdomain: bool | None = None,
    ) -> Validated:
        security = Security.INSECURE if self._insecure else Security.SECURE
        reason = self._insecure[0] if self._insecure else ""
        negative = nxdomain is not None
        return Validated(security, reason, target, tuple(chain), rrset, negative, bool(nxdomain))

    def response(self, qname: dns.name.Name, qtype: RdataType, response: dns.message.Message) -> Validated:
        chain: list[dns.rrset.RRset] = []
        name = qname
        while True:
            found = _find(response.answer, name, qtype)
            if found is not None:
                self._positive(found, response)
                return self._result(name, chain, found)
            alias = _find(response.answer, name, dns.rdatatype.CNAME) if qtype != dns.rdatatype.CNAME else None
            if alias is None or len(chain) > 16:
                break
            self._positive(alias, response)
            chain.append(alias)
            name = alias[0].target
        if chain:
            return self._result(name, chain)  # the chain continues outside this response
        nxdomain = response.rcode() == dns.rcode.NXDOMAIN
        self._negative(qname, qtype, response, nxdomain=nxdomain)
        return self._result(qname, nxdomain=nxdomain)

    def _positive(self, rrset: dns.rrset.RRset, response: dns.message.Message) -> None:
        sigs = _rrsigs(response.answer, rrset)
        signer = _signer(sigs, rrset.name)
        if signer is None:
            self._insecure.append(self._unsigned(rrset.name, f"the answer {_what(rrset)}"))
            return
        keys = self._keys(signer)
        if keys.keys is None:
            self._insecure.append(keys.reason)
            return
        sig = _verify(rrset, sigs, keys, self._now)
        owner_labels = len(rrset.name) - 1 - (1 if rrset.name.is_wild() else 0)
        if sig.labels < owner_labels:
            nsecs, nsec3s = self._proofs(response, keys)
            if wildcard_proof(rrset.name, sig.labels, keys.zone, nsecs, nsec3s):
                self._insecure.append(f"{rrset.name} is answered from a wildcard in an NSEC3 opt-out span")

    def _negative(
        self, qname: dns.name.Name, qtype: RdataType, response: dns.message.Message, *, nxdomain: bool
    ) -> None:
        what = f"{'NXDOMAIN' if nxdomain else 'NODATA'} for {dns.rdatatype.to_text(qtype)} {qname}"
        sigs = [
            rdata
            for rrset in response.authority
            if rrset.rdtype == dns.rdatatype.RRSIG
            for rdata in rrset
            if isinstance(rdata, RRSIG)
        ]
        zone = _signer(sigs, qname)
        if zone is None:
            self._insecure.append(self._unsigned(qname, f"the answer {what}"))
            return
        keys = self._keys(zone)
        if keys.keys is None:
            self._insecure.append(keys.reason)
            return
        denial = self._deny(qname, qtype, response, keys, nxdomain=nxdomain)
        if denial.optout:
            self._insecure.append(f"{what} relies on an NSEC3 opt-out span of {zone} (RFC 5155 §6)")

    def _deny(
        self, qname: dns.name.Name, qtype: RdataType, response: dns.message.Message, keys: _ZoneKeys, *, nxdomain: bool
    ) -> Denial:
        nsecs, nsec3s = self._proofs(response, keys)
        if nsecs:
            return nsec_denial(qname, qtype, nsecs, nxdomain=nxdomain)
        if nsec3s:
            return nsec3_denial(qname, qtype, keys.zone, nsec3s, nxdomain=nxdomain)
        kind = "NXDOMAIN" if nxdomain else "NODATA"
        raise ProofError(f"the {kind} answer for {dns.rdatatype.to_text(qtype)} {qname} carries no NSEC or NSEC3")

    def _proofs(
        self, response: dns.message.Message, keys: _ZoneKeys
    ) -> tuple[list[tuple[dns.name.Name, NSEC]], list[tuple[dns.name.Name, NSEC3]]]:
        """The NSEC and NSEC3 records of the authority section signed by the zone, each RRset verified."""
        nsecs: list[tuple[dns.name.Name, NSEC]] = []
        nsec3s: list[tuple[dns.name.Name, NSEC3]] = []
        for rrset in response.authority:
            if rrset.rdtype not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
                continue
            sigs = _rrsigs(response.authority, rrset)
            if not rrset.name.is_subdomain(keys.zone) or _signer(sigs, rrset.name) != keys.zone:
                continue
            _verify(rrset, sigs, keys, self._now)
            for rdata in rrset:
                if isinstance(rdata, NSEC):
                    nsecs.append((rrset.name, rdata))
                elif isinstance(rdata, NSEC3):
                    nsec3s.append((rrset.name, rdata))
        return nsecs, nsec3s

    def _unsigned(self, name: dns.name.Name, what: str) -> str:
        """Unsigned data at *name* is acceptable only in a provably Insecure zone (RFC 4035 §4.3, §5.2):
        return why the zone is Insecure, or raise Bogus."""
        zone = self._zone_of(name)
        keys = self._keys(zone)
        if keys.keys is not None:
            raise Bogus(f"{what} carries no RRSIG, yet {zone} is signed (RFC 4035 §5.3)")
        return keys.reason

    def _zone_of(self, name: dns.name.Name) -> dns.name.Name:
        """The zone holding *name*, from the SOA the server shows for it; only a hint: the chain of trust
        then proves the zone cut (a forged SOA naming a cut that is not there ends in a Bogus DS denial)."""
        candidate = name
        while True:
            response = self._query(candidate, dns.rdatatype.SOA)
            for rrset in (*response.answer, *response.authority):
                if rrset.rdtype == dns.rdatatype.SOA and candidate.is_subdomain(rrset.name):
                    return rrset.name
            if candidate == dns.name.root:
                raise Bogus(f"no SOA shows which zone holds {name}")
            candidate = candidate.parent()

    def _keys(self, zone: dns.name.Name) -> _ZoneKeys:
        """The validated DNSKEY RRset of *zone*, or the proof that it is Insecure (RFC 4035 §5.2)."""
        cached = self._validator._cached(zone, self._now)
        if cached is not None:
            return cached
        entry = self._fetch_keys(zone)
        self._validator._store(entry)
        return entry

    def _fetch_keys(self, zone: dns.name.Name) -> _ZoneKeys:
        anchor = self._anchors.get(zone)
        if anchor is not None:
            ds_records, ttl = list(anchor), float(MAX_CACHE_SECONDS)
        else:
            if not any(zone.is_subdomain(name) for name in self._anchors):
                raise Bogus(f"no trust anchor covers {zone}")
            found = self._ds(zone)
            if isinstance(found, _ZoneKeys):
                return found
            ds_records, ttl = [ds for ds in found if isinstance(ds, DS)], float(found.ttl)
        usable = _usable_ds(ds_records)
        if not usable:
            return self._insecure_zone(zone, f"no DS of {zone} uses a supported algorithm (RFC 4035 §5.2)", ttl)
        response = self._query(zone, dns.rdatatype.DNSKEY)
        dnskeys = _find(response.answer, zone, dns.rdatatype.DNSKEY)
        if dnskeys is None:
            raise Bogus(f"{zone} has DS records in its parent but serves no DNSKEY RRset")
        entry_points = [key for key in dnskeys if isinstance(key, DNSKEY) and _matches_ds(zone, key, usable)]
        if not entry_points:
            raise Bogus(f"no DNSKEY of {zone} matches its DS records (RFC 4035 §5.2)")
        sep = dns.rrset.from_rdata_list(zone, dnskeys.ttl, entry_points)
        tags = {dns.dnssec.key_id(key) for key in entry_points}
        sigs = [sig for sig in _rrsigs(response.answer, dnskeys) if sig.key_tag in tags]
        if not sigs:
            raise Bogus(f"the DNSKEY RRset of {zone} is not signed by a key its DS records name (RFC 4035 §5.2)")
        sig = _verify(dnskeys, sigs, _ZoneKeys(zone, sep, "", 0.0), self._now)
        expires = min(self._now + min(ttl, dnskeys.ttl, MAX_CACHE_SECONDS), float(sig.expiration))
        return _ZoneKeys(zone, dnskeys, "", expires)

    def _ds(self, zone: dns.name.Name) -> dns.rrset.RRset | _ZoneKeys:
        """The validated DS RRset of *zone*, or the zone's Insecure entry when its parent proves it unsigned."""
        response = self._query(zone, dns.rdatatype.DS)
        found = _find(response.answer, zone, dns.rdatatype.DS)
        section = response.answer if found is not None else response.authority
        sigs = [rdata for rrset in section if rrset.rdtype == dns.rdatatype.RRSIG for rdata in rrset]
        parent_zone = _signer([sig for sig in sigs if isinstance(sig, RRSIG) and sig.signer != zone], zone)
        if parent_zone is None:
            what = f"the DS {'RRset' if found is not None else 'denial'} for {zone}"
            if any(isinstance(sig, RRSIG) and sig.signer == zone for sig in sigs):
                raise Bogus(f"{what} comes from the zone itself, not from its parent")
            return self._insecure_zone(zone, self._unsigned(zone.parent(), what))
        parent = self._keys(parent_zone)
        if parent.keys is None:
            return self._insecure_zone(zone, parent.reason, parent.expires - self._now)
        if found is not None:
            _verify(found, _rrsigs(response.answer, found), parent, self._now)
            return found
        nxdomain = response.rcode() == dns.rcode.NXDOMAIN
        denial = self._deny(zone, dns.rdatatype.DS, response, parent, nxdomain=nxdomain)
        if denial.optout:
            return self._insecure_zone(zone, f"{zone} lies in an NSEC3 opt-out span of {parent_zone} (RFC 5155 §8.6)")
        if denial.kind == "nodata" and dns.rdatatype.NS in denial.types:  # RFC 6840 §4.4: NS set, DS and SOA not
            return self._insecure_zone(zone, f"{parent_zone} delegates {zone} without DS (RFC 4035 §5.2)")
        raise Bogus(f"{parent_zone} does not delegate {zone}, so {zone} cannot be a zone of its own (RFC 6840 §4.4)")

    def _insecure_zone(self, zone: dns.name.Name, reason: str, ttl: float = MAX_CACHE_SECONDS) -> _ZoneKeys:
        return _ZoneKeys(zone, None, reason, self._now + max(0.0, min(ttl, MAX_CACHE_SECONDS)))
