"""The NSEC and NSEC3 proof functions on hand-built records (no DNS, no signatures: those are test_dnssec.py).

The zone ``example.`` holds ``example.`` (SOA NS), ``a.example.`` (A), ``sub.example.`` (a delegation: NS),
``x.y.example.`` (TXT, so ``y.example.`` is an empty non-terminal) and ``*.w.example.`` (A). The NSEC chain is
written out below in canonical order (RFC 4034 §6.1); the NSEC3 chain is computed with RFC 5155 §5 hashes
(SHA-1, no salt, no extra iterations) by dnspython's nsec3_hash, and checked against the RFC 5155 Appendix A
example hash of ``example.``.
"""

from __future__ import annotations

import base64
import re

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.NSEC3 import NSEC3

from candor.validation.denial import Denial, ProofError, nsec3_denial, nsec_denial, types_in, wildcard_proof

A, TXT, DS = dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.DS
ZONE = dns.name.from_text("example.")

# (owner, next, types): the NSEC chain of the zone described above.
NSEC_CHAIN = [
    ("example.", "a.example.", "NS SOA RRSIG NSEC DNSKEY"),
    ("a.example.", "sub.example.", "A RRSIG NSEC"),
    ("sub.example.", "*.w.example.", "NS RRSIG NSEC"),
    ("*.w.example.", "x.y.example.", "A RRSIG NSEC"),
    ("x.y.example.", "example.", "TXT RRSIG NSEC"),
]
NAMES = {owner: types.replace(" RRSIG NSEC", "") for owner, _, types in NSEC_CHAIN} | {
    "y.example.": "",
    "w.example.": "",
}


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def nsecs(*owners: str) -> list[tuple[dns.name.Name, NSEC]]:
    chosen = [row for row in NSEC_CHAIN if row[0] in owners] if owners else NSEC_CHAIN
    records = []
    for owner, following, types in chosen:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC, f"{following} {types}")
        assert isinstance(rdata, NSEC)
        records.append((name(owner), rdata))
    return records


def nsec3_chain(*, flags: int = 0, iterations: int = 0) -> list[tuple[str, dns.name.Name, NSEC3]]:
    """(original name, hashed owner, rdata) for every name of the zone, empty non-terminals included."""
    hashed = sorted(
        (dns.dnssec.nsec3_hash(owner, None, iterations, 1).lower(), owner, types) for owner, types in NAMES.items()
    )
    chain = []
    for index, (digest, owner, types) in enumerate(hashed):
        following = hashed[(index + 1) % len(hashed)][0]
        text = f"1 {flags} {iterations} - {following} {types}".rstrip()
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC3, text)
        assert isinstance(rdata, NSEC3)
        chain.append((owner, dns.name.Name((digest.encode(), *ZONE.labels)), rdata))
    return chain


def nsec3s(*, without: str | None = None, flags: int = 0, iterations: int = 0) -> list[tuple[dns.name.Name, NSEC3]]:
    """The NSEC3 chain, without the record that covers or matches *without* (to break a proof)."""
    chain = nsec3_chain(flags=flags, iterations=iterations)
    if without is not None:
        target = dns.dnssec.nsec3_hash(without, None, iterations, 1).lower()
        chain = [row for row in chain if not _holds(row[1], row[2], target)]
    return [(owner, rdata) for _, owner, rdata in chain]


def _holds(owner: dns.name.Name, rdata: NSEC3, target: str) -> bool:
    start = owner.labels[0].decode()
    end = base64.b32hexencode(rdata.next).decode().lower()
    return start == target or (start < target < end if start < end else (target > start or target < end))


def test_nsec3_hash_matches_rfc5155_appendix_a() -> None:
    # RFC 5155 Appendix A: H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom with salt aabbccdd and 12 iterations.
    assert dns.dnssec.nsec3_hash("example.", "aabbccdd", 12, 1).lower() == "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"


def test_type_bitmap() -> None:
    (_, rdata), *_ = nsecs("example.")
    assert types_in(rdata.windows) == {dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.RRSIG, 47, 48}


# --- NSEC (RFC 4035 §5.4) -------------------------------------------------------------------------------------


def test_nsec_nxdomain_needs_the_name_and_the_wildcard_covered() -> None:
    assert nsec_denial(name("b.example."), A, nsecs("a.example.", "example."), nxdomain=True) == Denial("nxdomain")
    with pytest.raises(ProofError, match=r"wildcard \*\.example\. does not exist"):
        nsec_denial(name("b.example."), A, nsecs("a.example."), nxdomain=True)
    with pytest.raises(ProofError, match=re.escape("no NSEC proves that b.example. does not exist")):
        nsec_denial(name("b.example."), A, nsecs("example."), nxdomain=True)


def test_nsec_at_a_delegation_proves_nothing_below_it() -> None:
    # sub.example. -> *.w.example. covers x.sub.example. in canonical order, but it is the parent side of a cut.
    with pytest.raises(ProofError, match="does not exist"):
        nsec_denial(name("x.sub.example."), A, nsecs(), nxdomain=True)


def test_nsec_nodata() -> None:
    assert nsec_denial(name("a.example."), TXT, nsecs(), nxdomain=False).kind == "nodata"
    with pytest.raises(ProofError, match="lists A or CNAME"):
        nsec_denial(name("a.example."), A, nsecs(), nxdomain=False)


def test_nsec_nodata_of_an_empty_non_terminal() -> None:
    # *.w.example. -> x.y.example. covers y.example. and points below it: y.example. exists, empty.
    assert nsec_denial(name("y.example."), A, nsecs("*.w.example."), nxdomain=False) == Denial("nodata")


def test_nsec_at_a_delegation_denies_ds_only() -> None:
    denial = nsec_denial(name("sub.example."), DS, nsecs(), nxdomain=False)
    assert dns.rdatatype.NS in denial.types and DS not in denial.types
    with pytest.raises(ProofError, match="parent side of a delegation"):
        nsec_denial(name("sub.example."), A, nsecs(), nxdomain=False)


def test_nsec_at_a_child_apex_cannot_deny_ds() -> None:
    with pytest.raises(ProofError, match="child apex"):
        nsec_denial(name("example."), DS, nsecs(), nxdomain=False)


def test_nsec_wildcard_nodata() -> None:
    # q.w.example. does not exist (covered), and the wildcard that would match it has no TXT.
    denial = nsec_denial(name("q.w.example."), TXT, nsecs("sub.example.", "*.w.example."), nxdomain=False)
    assert denial.kind == "wildcard-nodata"
    with pytest.raises(ProofError, match="lists A"):
        nsec_denial(name("q.w.example."), A, nsecs("sub.example.", "*.w.example."), nxdomain=False)


def test_wildcard_answer_proof_with_nsec() -> None:
    # An A at q.w.example. expanded from *.w.example. (RRSIG labels 2): q.w.example. must be covered.
    assert wildcard_proof(name("q.w.example."), 2, ZONE, nsecs("*.w.example."), []) is False
    with pytest.raises(ProofError, match="without proof"):
        wildcard_proof(name("q.w.example."), 2, ZONE, nsecs("a.example."), [])


# --- NSEC3 (RFC 5155 §8) --------------------------------------------------------------------------------------


def holder(text: str) -> dns.name.Name:
    """The owner of the NSEC3 record that matches or covers *text*."""
    target = dns.dnssec.nsec3_hash(text, None, 0, 1).lower()
    return next(owner for _, owner, rdata in nsec3_chain() if _holds(owner, rdata, target))


def test_nsec3_nxdomain_needs_closest_encloser_next_closer_and_wildcard() -> None:
    # A next closer name whose covering NSEC3 is not also the one covering the wildcard, so that each can go.
    closer = next(f"c{i}.example." for i in range(100) if holder(f"c{i}.example.") != holder("*.example."))
    qname = name("b." + closer)
    assert nsec3_denial(qname, A, ZONE, nsec3s(), nxdomain=True) == Denial("nxdomain")
    with pytest.raises(ProofError, match=re.escape(f"next closer name {closer}")):
        nsec3_denial(qname, A, ZONE, nsec3s(without=closer), nxdomain=True)
    with pytest.raises(ProofError, match=r"wildcard \*\.example\."):
        nsec3_denial(qname, A, ZONE, nsec3s(without="*.example."), nxdomain=True)
    with pytest.raises(ProofError, match="closest encloser"):
        nsec3_denial(qname, A, ZONE, nsec3s(without="example."), nxdomain=True)


def test_nsec3_nxdomain_for_an_existing_name_fails() -> None:
    with pytest.raises(ProofError, match=re.escape("shows that a.example. exists")):
        nsec3_denial(name("a.example."), A, ZONE, nsec3s(), nxdomain=True)


def test_nsec3_nodata_and_empty_non_terminal() -> None:
    assert nsec3_denial(name("a.example."), TXT, ZONE, nsec3s(), nxdomain=False).kind == "nodata"
    assert nsec3_denial(name("y.example."), A, ZONE, nsec3s(), nxdomain=False).kind == "nodata"
    with pytest.raises(ProofError, match="lists A or CNAME"):
        nsec3_denial(name("a.example."), A, ZONE, nsec3s(), nxdomain=False)


def test_nsec3_closest_encloser_below_a_delegation_is_refused() -> None:
    with pytest.raises(ProofError, match="delegation or DNAME"):
        nsec3_denial(name("x.sub.example."), A, ZONE, nsec3s(), nxdomain=True)


def test_nsec3_wildcard_nodata() -> None:
    assert nsec3_denial(name("q.w.example."), TXT, ZONE, nsec3s(), nxdomain=False).kind == "wildcard-nodata"


def test_nsec3_opt_out_makes_only_a_missing_ds_insecure() -> None:
    # c.example. is not in the chain (an unsigned delegation in an opt-out span would not be).
    denial = nsec3_denial(name("c.example."), DS, ZONE, nsec3s(flags=1), nxdomain=False)
    assert denial == Denial("nodata", optout=True)
    with pytest.raises(ProofError, match="has no A record"):
        nsec3_denial(name("c.example."), A, ZONE, nsec3s(flags=1), nxdomain=False)
    with pytest.raises(ProofError, match="has no DS record"):
        nsec3_denial(name("c.example."), DS, ZONE, nsec3s(flags=0), nxdomain=False)
    assert nsec3_denial(name("c.example."), A, ZONE, nsec3s(flags=1), nxdomain=True).optout


def test_nsec3_too_many_iterations_fail_closed() -> None:
    with pytest.raises(ProofError, match="RFC 9276"):
        nsec3_denial(name("b.example."), A, ZONE, nsec3s(iterations=151), nxdomain=True)


def test_nsec3_of_another_zone_is_ignored() -> None:
    with pytest.raises(ProofError, match="closest encloser"):
        nsec3_denial(name("b.example."), A, name("other."), nsec3s(), nxdomain=True)


def test_wildcard_answer_proof_with_nsec3() -> None:
    assert wildcard_proof(name("q.w.example."), 2, ZONE, [], nsec3s()) is False
    with pytest.raises(ProofError, match="without proof"):
        wildcard_proof(name("q.w.example."), 2, ZONE, [], nsec3s(without="q.w.example."))
