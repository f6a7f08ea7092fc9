"""ACME dns-01 (RFC 8555 §8.4, BR 3.2.2.4.7) against the signed tree BIND 9 serves (see bind9.py).

The static records hold the digest of bind9.DNS01_KEY_AUTHORIZATION; the dynamic zone dyn.test takes records
(and CAA) through RFC 2136 updates signed with its TSIG key, as an ACME client's DNS plugin would.
"""

from __future__ import annotations

import base64
import hashlib

import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest
from bind9 import DNS01_DIGEST, DNS01_KEY_AUTHORIZATION, DNS01_TOKEN, Named

from candor.clock import FakeClock, SystemClock
from candor.policy.names import Identifier
from candor.validation import AddressPolicy, ChallengeValidator, DnsResolver, StaticResolver, validate_dns01
from candor.validation.dns01 import dns01_digest
from candor.validation.outcome import ValidationResult
from candor.validation.validator import CaaCheck

ACCOUNT = "https://acme.candor.test/acme/acct/1"


@pytest.fixture
def resolver(named: Named, clock: FakeClock) -> DnsResolver:
    return DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors, clock=clock)


def check(resolver: DnsResolver, clock: FakeClock, name: str, key_authorization: str = "") -> ValidationResult:
    identifier = Identifier("ip" if name[0].isdigit() else "dns", name)
    return validate_dns01(identifier, key_authorization or DNS01_KEY_AUTHORIZATION, txt_source=resolver, clock=clock)


def test_digest_is_base64url_sha256_without_padding() -> None:
    # RFC 8555 §8.4, computed independently: 32 bytes are 43 base64url characters without "=".
    expected = base64.urlsafe_b64encode(hashlib.sha256(DNS01_KEY_AUTHORIZATION.encode()).digest()).rstrip(b"=")
    assert dns01_digest(DNS01_KEY_AUTHORIZATION) == expected.decode() == DNS01_DIGEST
    assert len(DNS01_DIGEST) == 43


def test_matching_record_validates(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "www.example.com")
    assert result.ok, result.detail
    assert result.method == "3.2.2.4.7"
    assert result.checked_at == clock.now()
    (record,) = result.records
    assert (record.url, record.ip, record.port, record.attempted, record.connected) == (
        "dns:_acme-challenge.www.example.com TXT", "", 0, True, False,
    )  # fmt: skip
    assert record.outcome == "1 TXT records, one matching"


def test_one_match_among_several_records_validates(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "multi.example.com")  # "not-the-digest" and the digest in two strings
    assert result.ok, result.detail
    assert result.records[0].outcome == "2 TXT records, one matching"


def test_no_matching_record_is_unauthorized_without_echoing_records(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "wrong.example.com")
    assert (result.ok, result.problem_type) == (False, "unauthorized")
    assert "none of the 2 TXT records at _acme-challenge.wrong.example.com" in result.detail
    assert "not-the-digest" not in result.detail and "also-wrong" not in result.detail
    assert DNS01_DIGEST in result.detail  # what was expected is ours to say


def test_another_key_authorization_does_not_match(resolver: DnsResolver, clock: FakeClock) -> None:
    other = f"{DNS01_TOKEN}.{'A' * 43}"
    result = check(resolver, clock, "www.example.com", other)
    assert (result.ok, result.problem_type) == (False, "unauthorized")


def test_cname_is_followed_into_another_zone(resolver: DnsResolver, clock: FakeClock) -> None:
    assert check(resolver, clock, "moved.example.com").ok  # CNAME to dns01-target.com (NSEC3)


def test_cname_into_an_insecure_zone_validates(resolver: DnsResolver, clock: FakeClock) -> None:
    assert check(resolver, clock, "unsigned.example.com").ok
    assert check(resolver, clock, "insecure.test").ok


def test_nxdomain_is_a_dns_problem(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "missing.example.com")
    assert (result.ok, result.problem_type) == (False, "dns")
    assert "NXDOMAIN" in result.detail
    assert result.records[0].outcome.startswith("NXDOMAIN")


def test_name_without_txt_is_unauthorized(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "wild.example.com")  # _acme-challenge.wild matches *.wild: A, no TXT
    assert (result.ok, result.problem_type) == (False, "unauthorized")
    assert "no TXT record found at _acme-challenge.wild.example.com" in result.detail


@pytest.mark.parametrize("name", ["bogus.test", "expired.test", "wrongkey.test"])
def test_dnssec_bogus_is_a_dns_problem_even_with_the_right_digest(
    resolver: DnsResolver, clock: FakeClock, name: str
) -> None:
    result = check(resolver, clock, name)  # each serves the correct digest, with a signature that fails
    assert (result.ok, result.problem_type) == (False, "dns")
    assert "DNSSEC validation failed" in result.detail and "Bogus" in result.detail


def test_lookup_failure_is_a_dns_problem(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "broken.test")
    assert (result.ok, result.problem_type) == (False, "dns")
    assert "the lookup failed" in result.detail and "SERVFAIL" in result.detail


def test_wildcard_is_validated_at_its_base_name(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "*.www.example.com")
    assert result.ok, result.detail
    assert result.records[0].url == "dns:_acme-challenge.www.example.com TXT"


def test_ip_identifier_is_refused_without_a_lookup(resolver: DnsResolver, clock: FakeClock) -> None:
    result = check(resolver, clock, "192.0.2.10")
    assert (result.ok, result.problem_type) == (False, "rejectedIdentifier")
    assert "RFC 8738 §7" in result.detail
    assert result.records == ()


@pytest.mark.parametrize("key_authorization", ["no-dot", f"{DNS01_TOKEN}.short", f"bad token!.{'A' * 43}"])
def test_malformed_key_authorization_is_refused(
    resolver: DnsResolver, clock: FakeClock, key_authorization: str
) -> None:
    result = check(resolver, clock, "www.example.com", key_authorization)
    assert (result.ok, result.problem_type, result.records) == (False, "malformed", ())


# --- through ChallengeValidator, with CAA -------------------------------------------------------------------


def challenge_validator(named: Named, *, with_txt: bool = True) -> ChallengeValidator:
    clock = SystemClock()  # dyn.test is signed by named, on the real clock
    resolver = DnsResolver([named.nameserver], timeout=3.0, trust_anchors=named.trust_anchors, clock=clock)
    return ChallengeValidator(
        resolver=StaticResolver({}),
        policy=AddressPolicy(),
        clock=clock,
        caa=CaaCheck(resolver, frozenset({"candor.test"})),
        txt_source=resolver if with_txt else None,
    )


def publish(named: Named, name: str, *, caa: str | None = None) -> None:
    """What an ACME client's RFC 2136 plugin does: the challenge TXT (and here a CAA) in dyn.test, TSIG-signed."""
    keyring = dns.tsigkeyring.from_text({named.tsig_key_name: (named.tsig_algorithm, named.tsig_secret)})
    update = dns.update.UpdateMessage(named.dynamic_zone, keyring=keyring, keyalgorithm=dns.tsig.HMAC_SHA256)
    update.replace(f"_acme-challenge.{name}.", 60, "TXT", f'"{DNS01_DIGEST}"')
    if caa is not None:
        update.replace(f"{name}.", 60, "CAA", caa)
    named.update(update)


def test_challenge_validator_dispatches_dns01_and_checks_caa(named: Named) -> None:
    publish(named, "allowed.dyn.test")
    validator = challenge_validator(named)
    result = validator.validate(
        "dns-01", Identifier("dns", "allowed.dyn.test"), DNS01_TOKEN, DNS01_KEY_AUTHORIZATION, account_uri=ACCOUNT
    )
    assert result.ok, result.detail
    assert result.method == "3.2.2.4.7"


def test_challenge_validator_refuses_when_caa_names_another_ca(named: Named) -> None:
    publish(named, "blocked.dyn.test", caa='0 issue "other-ca.example"')
    result = challenge_validator(named).validate(
        "dns-01", Identifier("dns", "blocked.dyn.test"), DNS01_TOKEN, DNS01_KEY_AUTHORIZATION, account_uri=ACCOUNT
    )
    assert (result.ok, result.problem_type) == (False, "caa")


def test_challenge_validator_wildcard_by_dns01_with_caa(named: Named) -> None:
    publish(named, "wc.dyn.test", caa='0 issuewild "candor.test"')
    validator = challenge_validator(named)
    identifier = Identifier("dns", "*.wc.dyn.test")
    result = validator.validate("dns-01", identifier, DNS01_TOKEN, DNS01_KEY_AUTHORIZATION, account_uri=ACCOUNT)
    assert result.ok, result.detail


def test_challenge_validator_bogus_caa_refuses_after_a_valid_dns01(named: Named) -> None:
    # The TXT in example.com is valid; CAA at caa.bogus.test is forged. Here: dns-01 at www.example.com is fine,
    # and the CAA lookup of a Bogus name fails the validation as a dns problem, never as permission.
    validator = challenge_validator(named)
    assert validator.caa is not None
    refusal = validator.recheck_caa(Identifier("dns", "caa.bogus.test"), method="3.2.2.4.7", account_uri=ACCOUNT)
    assert refusal is not None and refusal[0] == "dns" and "dnssec:" in refusal[1]


def test_challenge_validator_token_must_match_the_key_authorization(named: Named) -> None:
    result = challenge_validator(named).validate(
        "dns-01", Identifier("dns", "www.example.com"), "x" * 43, DNS01_KEY_AUTHORIZATION, account_uri=ACCOUNT
    )
    assert (result.ok, result.problem_type) == (False, "malformed")


def test_challenge_validator_without_txt_source_says_dns01_is_not_configured(named: Named) -> None:
    result = challenge_validator(named, with_txt=False).validate(
        "dns-01", Identifier("dns", "www.example.com"), DNS01_TOKEN, DNS01_KEY_AUTHORIZATION, account_uri=ACCOUNT
    )
    assert (result.ok, result.problem_type, result.detail) == (False, "dns", "dns-01 is not configured on this CA")
