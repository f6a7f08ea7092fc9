"""DNSSEC validation (BR-27; RFC 4035 §5, RFC 5155) against the signed tree BIND 9 serves (see bind9.py).

Secure, Insecure and each Bogus case; NXDOMAIN and NODATA proven by NSEC and by NSEC3; wildcards; CNAME chains
across zones; and answers forged by a small UDP relay in front of named, which strips signatures or invents
answers the way an on-path attacker would.
"""

from __future__ import annotations

import inspect
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from bind9 import DNS01_DIGEST, Named

from candor.clock import FakeClock
from candor.config import IANA_ROOT_ANCHORS
from candor.errors import CandorError, ErrorKind
from candor.validation.caa import CaaRecord
from candor.validation.dns import DnsResolver
from candor.validation.dnssec import DnssecValidator, Query, Security, Validated

Tamper = Callable[[dns.message.Message, dns.message.Message], dns.message.Message]


def querier(named: Named, log: list[tuple[str, str]] | None = None) -> Query:
    """What DnsResolver sends (DO and CD set), straight to named; *log* collects (name, type) asked."""

    def query(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        message = dns.message.make_query(qname, rdtype, want_dnssec=True, use_edns=0, payload=1232)
        message.flags |= dns.flags.CD
        if log is not None:
            log.append((qname.to_text(), dns.rdatatype.to_text(rdtype)))
        return dns.query.udp(message, named.address, port=named.port, timeout=3.0)

    return query


def resolve(validator: DnssecValidator, query: Query, name: str, rdtype: str) -> list[Validated]:
    """Every validated step of a lookup, CNAMEs followed across responses as DnsResolver does."""
    target, qtype = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
    steps: list[Validated] = []
    for _ in range(8):
        step = validator.validate(target, qtype, query(target, qtype), query)
        steps.append(step)
        if step.security is Security.BOGUS or step.rrset is not None or step.negative:
            return steps
        target = step.target
    raise AssertionError(f"no end to the CNAME chain of {name}")


@pytest.fixture
def validator(named: Named, clock: FakeClock) -> DnssecValidator:
    return DnssecValidator(named.trust_anchors, clock=clock)


@pytest.fixture
def resolver(named: Named, clock: FakeClock) -> DnsResolver:
    return DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors, clock=clock)


def policy_error(call: Callable[[], object]) -> str:
    with pytest.raises(CandorError) as caught:
        call()
    assert caught.value.kind is ErrorKind.POLICY, caught.value.message
    assert caught.value.message.startswith("dnssec: ")
    return caught.value.message


# --- Secure -------------------------------------------------------------------------------------------------


def test_answer_signed_down_from_the_anchor_is_secure(validator: DnssecValidator, named: Named) -> None:
    # root (RSASHA256, NSEC) -> com (ECDSA P-256, NSEC3) -> example.com (Ed25519, NSEC)
    (step,) = resolve(validator, querier(named), "www.example.com", "A")
    assert step.security is Security.SECURE, step.reason
    assert step.rrset is not None and [r.to_text() for r in step.rrset] == ["192.0.2.10"]


def test_nxdomain_proven_by_nsec(validator: DnssecValidator, named: Named) -> None:
    (step,) = resolve(validator, querier(named), "missing.example.com", "A")
    assert (step.security, step.negative, step.nxdomain) == (Security.SECURE, True, True), step.reason


def test_nxdomain_proven_by_nsec3(validator: DnssecValidator, named: Named) -> None:
    (step,) = resolve(validator, querier(named), "missing.com", "TXT")
    assert (step.security, step.negative, step.nxdomain) == (Security.SECURE, True, True), step.reason


def test_nxdomain_from_the_root_for_a_name_outside_the_tree(validator: DnssecValidator, named: Named) -> None:
    (step,) = resolve(validator, querier(named), "nothing.invalid", "A")
    assert (step.security, step.nxdomain) == (Security.SECURE, True), step.reason


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("v4only.example.com", "AAAA"),  # NSEC at the name
        ("wild.example.com", "A"),  # NSEC: an empty non-terminal (above *.wild), the NSEC before it points below
        ("tagged.com", "A"),  # NSEC3 matching the name
        ("nocaa.com", "CAA"),  # NSEC3 of an empty non-terminal
        ("x.wild.example.com", "TXT"),  # NSEC: the name is covered, the wildcard has no TXT
        ("x.wild.com", "A"),  # NSEC3: closest encloser, next closer covered, wildcard without A
    ],
)
def test_nodata_proven(validator: DnssecValidator, named: Named, name: str, rdtype: str) -> None:
    (step,) = resolve(validator, querier(named), name, rdtype)
    assert (step.security, step.negative, step.nxdomain) == (Security.SECURE, True, False), step.reason


@pytest.mark.parametrize(
    ("name", "rdtype", "value"), [("a.wild.example.com", "A", "192.0.2.40"), ("b.wild.com", "TXT", '"wildcard"')]
)
def test_wildcard_expansion_with_its_proof_is_secure(
    validator: DnssecValidator, named: Named, name: str, rdtype: str, value: str
) -> None:
    (step,) = resolve(validator, querier(named), name, rdtype)
    assert step.security is Security.SECURE, step.reason
    assert step.rrset is not None and [r.to_text() for r in step.rrset] == [value]


def test_cname_chain_across_zones_is_validated_at_each_step(validator: DnssecValidator, named: Named) -> None:
    steps = resolve(validator, querier(named), "_acme-challenge.moved.example.com", "TXT")
    assert [step.security for step in steps] == [Security.SECURE] * len(steps)
    assert [rrset.rdtype for step in steps for rrset in step.chain] == [dns.rdatatype.CNAME]
    assert steps[-1].rrset is not None and steps[-1].rrset.name == dns.name.from_text("dns01-target.com")


def test_resolver_follows_signed_cnames(resolver: DnsResolver) -> None:
    assert resolver.caa("ext.example.com") == [CaaRecord(128, "futuretag", "x")]
    assert resolver.txt("_acme-challenge.moved.example.com") == [DNS01_DIGEST]


def test_dynamic_updates_are_signed_and_validate(named: Named) -> None:
    resolver = DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors)  # named's clock
    named.set_txt("_acme-challenge.fresh.dyn.test", "first", "second")
    assert sorted(resolver.txt("_acme-challenge.fresh.dyn.test")) == ["first", "second"]
    named.set_txt("_acme-challenge.fresh.dyn.test")  # deleted again: a signed NXDOMAIN (NSEC kept by named)
    with pytest.raises(CandorError) as caught:
        resolver.txt("_acme-challenge.fresh.dyn.test")
    assert caught.value.kind is ErrorKind.NOT_FOUND


# --- Insecure -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("www.insecure.test", "test. delegates insecure.test. without DS"),
        ("www.island.optout.test", "NSEC3 opt-out span of optout.test."),
        ("www.oddalg.test", "no DS of oddalg.test. uses a supported algorithm"),
    ],
)
def test_provably_insecure_zone_is_accepted(
    validator: DnssecValidator, resolver: DnsResolver, named: Named, name: str, why: str
) -> None:
    (step,) = resolve(validator, querier(named), name, "A")
    assert step.security is Security.INSECURE
    assert why in step.reason
    assert len(resolver.addresses(name)) == 1


def test_cname_from_signed_into_unsigned_zone(validator: DnssecValidator, named: Named, resolver: DnsResolver) -> None:
    steps = resolve(validator, querier(named), "_acme-challenge.unsigned.example.com", "TXT")
    assert [step.security for step in steps] == [Security.SECURE, Security.INSECURE]
    assert resolver.txt("_acme-challenge.unsigned.example.com") == [DNS01_DIGEST]


def test_caa_in_insecure_zone_is_used(resolver: DnsResolver) -> None:
    assert resolver.caa_climb("www.insecure.test")[-1] == ("insecure.test", [CaaRecord(0, "issue", "candor.test")])


# --- Bogus --------------------------------------------------------------------------------------------------


def test_correct_txt_with_broken_signature_is_bogus(resolver: DnsResolver) -> None:
    message = policy_error(lambda: resolver.txt("_acme-challenge.bogus.test"))
    assert "RRSIG over TXT _acme-challenge.bogus.test. does not verify" in message


def test_tampered_address_is_bogus_but_the_rest_of_the_zone_validates(resolver: DnsResolver) -> None:
    assert "RRSIG over A www.bogus.test. does not verify" in policy_error(lambda: resolver.addresses("www.bogus.test"))
    assert resolver.addresses("ok.bogus.test") == [ipaddress.ip_address("192.0.2.52")]


def test_bogus_caa_is_never_permission(resolver: DnsResolver) -> None:
    message = policy_error(lambda: resolver.caa_climb("www.caa.bogus.test"))
    assert "RRSIG over CAA caa.bogus.test. does not verify" in message


def test_dnskey_not_matching_the_parents_ds_is_bogus(resolver: DnsResolver) -> None:
    message = policy_error(lambda: resolver.addresses("www.wrongkey.test"))
    assert "no DNSKEY of wrongkey.test. matches its DS records" in message


def test_expired_signatures_are_bogus(resolver: DnsResolver) -> None:
    message = policy_error(lambda: resolver.txt("_acme-challenge.expired.test"))
    assert "expired at 2021-01-01T00:00:00Z" in message


def test_signatures_are_checked_against_the_injected_clock(named: Named) -> None:
    later = FakeClock(datetime.now(UTC) + timedelta(days=3650 + 30))  # past the expiration of every signature
    resolver = DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors, clock=later)
    assert "expired at" in policy_error(lambda: resolver.addresses("www.example.com"))
    earlier = FakeClock(datetime(2019, 6, 1, tzinfo=UTC))  # before the inception (2020-01-01)
    resolver = DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors, clock=earlier)
    assert "is not valid before 2020-01-01T00:00:00Z" in policy_error(lambda: resolver.addresses("www.example.com"))


def test_another_trust_anchor_makes_the_whole_tree_bogus(named: Named) -> None:
    iana = DnsResolver([named.nameserver], timeout=3.0, trust_anchors=IANA_ROOT_ANCHORS)
    assert "no DNSKEY of . matches its DS records" in policy_error(lambda: iana.addresses("www.insecure.test"))


def test_validation_cannot_be_switched_off() -> None:
    parameters = inspect.signature(DnsResolver).parameters
    assert list(parameters) == ["nameservers", "timeout", "trust_anchors", "clock"]
    assert parameters["trust_anchors"].default is inspect.Parameter.empty


# --- the cache ----------------------------------------------------------------------------------------------


def test_validated_keys_are_cached_for_their_ttl(named: Named, clock: FakeClock) -> None:
    validator = DnssecValidator(named.trust_anchors, clock=clock)
    log: list[tuple[str, str]] = []
    query = querier(named, log)
    resolve(validator, query, "www.example.com", "A")
    assert ("example.com.", "DNSKEY") in log and (".", "DNSKEY") in log
    log.clear()
    resolve(validator, query, "other.example.com", "A")
    assert log == [("other.example.com.", "A")]  # keys of ., com and example.com from the cache
    clock.advance(timedelta(seconds=301))  # the TTL of every key and DS is 300 s
    log.clear()
    resolve(validator, query, "other.example.com", "A")
    assert ("example.com.", "DNSKEY") in log


def test_the_cache_is_bounded(named: Named, clock: FakeClock) -> None:
    validator = DnssecValidator(named.trust_anchors, clock=clock, cache_entries=2)
    log: list[tuple[str, str]] = []
    query = querier(named, log)
    resolve(validator, query, "www.example.com", "A")  # caches ., com, example.com: . goes
    resolve(validator, query, "www.test", "A")  # ., then test: com and example.com go
    log.clear()
    resolve(validator, query, "www.example.com", "A")
    assert ("example.com.", "DNSKEY") in log


# --- forged answers -----------------------------------------------------------------------------------------


class Relay:
    """A UDP relay in front of named that lets a test rewrite each response (an on-path attacker)."""

    def __init__(self, named: Named, tamper: Tamper) -> None:
        self._named = named
        self._tamper = tamper
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = int(self._socket.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.query.udp(query, self._named.address, port=self._named.port, timeout=3.0)
            self._socket.sendto(self._tamper(query, response).to_wire(max_size=65535), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def relay(named: Named, clock: FakeClock) -> Iterator[Callable[[Tamper], DnsResolver]]:
    relays: list[Relay] = []

    def start(tamper: Tamper) -> DnsResolver:
        relays.append(Relay(named, tamper))
        return DnsResolver(
            [("127.0.0.1", relays[-1].port)], timeout=3.0, trust_anchors=named.trust_anchors, clock=clock
        )

    yield start
    for running in relays:
        running.close()


def asks(query: dns.message.Message, name: str, rdtype: str) -> bool:
    question = query.question[0]
    return question.name == dns.name.from_text(name) and question.rdtype == dns.rdatatype.from_text(rdtype)


def unsigned(response: dns.message.Message) -> dns.message.Message:
    for section in (response.answer, response.authority):
        section[:] = [rrset for rrset in section if rrset.rdtype != dns.rdatatype.RRSIG]
    return response


def test_relay_passing_everything_through_changes_nothing(relay: Callable[[Tamper], DnsResolver]) -> None:
    honest = relay(lambda query, response: response)
    assert honest.addresses("www.example.com")[0] == ipaddress.ip_address("192.0.2.10")


def test_forged_unsigned_answer_for_a_signed_zone_is_bogus(relay: Callable[[Tamper], DnsResolver]) -> None:
    def forge(query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        if asks(query, "www.example.com", "A"):
            response = unsigned(response)
            response.answer = [dns.rrset.from_text("www.example.com.", 300, "IN", "A", "203.0.113.66")]
        return response

    message = policy_error(lambda: relay(forge).addresses("www.example.com"))
    assert "carries no RRSIG, yet example.com. is signed" in message


def test_forged_nxdomain_for_caa_is_bogus(relay: Callable[[Tamper], DnsResolver]) -> None:
    def deny(query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        if asks(query, "example.com", "CAA"):
            forged = dns.message.make_response(query)
            forged.set_rcode(dns.rcode.NXDOMAIN)
            return forged
        return response

    message = policy_error(lambda: relay(deny).caa_climb("www.example.com"))
    assert "NXDOMAIN for CAA example.com. carries no RRSIG" in message


def test_stripping_every_signature_is_bogus_at_the_anchor(relay: Callable[[Tamper], DnsResolver]) -> None:
    message = policy_error(
        lambda: relay(lambda query, response: unsigned(response)).txt("_acme-challenge.insecure.test")
    )
    assert "the DNSKEY RRset of . is not signed by a key its DS records name" in message


def test_forged_zone_cut_does_not_make_a_signed_name_insecure(relay: Callable[[Tamper], DnsResolver]) -> None:
    # The attacker strips the signature of the TXT answer and claims, with a forged SOA, that the name is the
    # apex of a zone of its own (which would be unsigned). The parent's signed NSEC shows no delegation there.
    name = "_acme-challenge.www.example.com"

    def forge(query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        if asks(query, name, "TXT"):
            return unsigned(response)
        if asks(query, name, "SOA"):
            forged = dns.message.make_response(query)
            forged.answer = [dns.rrset.from_text(name + ".", 300, "IN", "SOA", "ns.test. h.test. 1 2 3 4 5")]
            return forged
        return response

    message = policy_error(lambda: relay(forge).txt(name))
    assert "example.com. does not delegate _acme-challenge.www.example.com." in message


def test_replayed_nodata_for_another_type_cannot_deny_the_txt(
    relay: Callable[[Tamper], DnsResolver], named: Named
) -> None:
    # A genuine, signed NODATA for SSHFP at the name, replayed as the answer to TXT: its NSEC lists TXT.
    def replay(query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        if asks(query, "_acme-challenge.www.example.com", "TXT"):
            other = dns.message.make_query(query.question[0].name, "SSHFP", want_dnssec=True)
            genuine = dns.query.udp(other, named.address, port=named.port, timeout=3.0)
            genuine.id, genuine.question = query.id, query.question
            return genuine
        return response

    message = policy_error(lambda: relay(replay).txt("_acme-challenge.www.example.com"))
    assert "lists TXT or CNAME" in message


def test_system_clock_is_the_default(named: Named) -> None:
    resolver = DnsResolver([named.nameserver], trust_anchors=named.trust_anchors)
    assert resolver.addresses("www.example.com")[0] == ipaddress.ip_address("192.0.2.10")


@pytest.mark.parametrize(("name", "rdtype"), [("a.wild.example.com", "A"), ("b.wild.com", "TXT")])
def test_wildcard_answer_without_its_denial_proof_is_bogus(
    relay: Callable[[Tamper], DnsResolver], name: str, rdtype: str
) -> None:
    # The expansion's signature verifies, but nothing proves that the name itself does not exist.
    def strip_proof(query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        if query.question[0].name == dns.name.from_text(name):
            response.authority = []
        return response

    resolver = relay(strip_proof)
    message = policy_error(lambda: resolver.txt(name) if rdtype == "TXT" else resolver.addresses(name))
    assert f"the wildcard answer for {name}. comes without proof" in message
