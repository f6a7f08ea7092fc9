"""Issue 4 acceptance 5 (first part): CAA, looked up in a real bind9, decides after a successful http-01."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from acme_harness import AcmeHarness, acme_server
from acme_raw import URN, Raw, expect_problem, route_for
from bind9 import running_named
from issuing import build_home, csr_for
from jose_requests import public_jwk_of

from candor.acme.jwk import key_authorization
from candor.validation import CaaRecord, DnsResolver
from candor.validation.validator import CaaCheck

NAMES = ("www.example.com", "other.example.com", "alias.example.com")


class Lookups:
    """The real bind9 resolver, counting climbs; ``moved`` makes one name's CAA come from another name's
    records, as if the domain holder had changed them between validation and finalization."""

    def __init__(self, resolver: DnsResolver) -> None:
        self.resolver, self.moved, self.climbs = resolver, dict[str, str](), list[str]()

    def caa_climb(self, name: str) -> list[tuple[str, list[CaaRecord]]]:
        self.climbs.append(name)
        target = self.moved.get(name, name)
        return [(found.replace(target, name), records) for found, records in self.resolver.caa_climb(target)]


@pytest.fixture(scope="module")
def lookups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lookups]:
    with running_named(tmp_path_factory.mktemp("named")) as named:
        yield Lookups(DnsResolver([named.nameserver], trust_anchors=named.trust_anchors))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, lookups: Lookups) -> Iterator[AcmeHarness]:
    home = build_home(tmp_path_factory.mktemp("acme-caa"))
    check = CaaCheck(lookups, frozenset({"candor.test"}))
    with acme_server(home, names=NAMES, caa=check) as running:
        yield running


def _challenge_result(harness: AcmeHarness, client: Raw, name: str) -> dict[str, Any]:
    return _validated_order(harness, client, name)[1]


def _validated_order(harness: AcmeHarness, client: Raw, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    status, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})
    assert status == 201
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    harness.responder_routes[f"/.well-known/acme-challenge/{challenge['token']}"] = route_for(
        key_authorization(challenge["token"], public_jwk_of(client.key_name))
    )
    _, answered, _ = client.post(urlsplit(challenge["url"]).path, {})
    return order, answered


def test_caa_naming_this_ca_allows(harness: AcmeHarness) -> None:
    answered = _challenge_result(harness, Raw(harness, "p256").register(), "www.example.com")
    assert answered["status"] == "valid", answered


@pytest.mark.parametrize("name", ["other.example.com", "alias.example.com"])
def test_caa_naming_another_ca_blocks_even_after_a_good_challenge(harness: AcmeHarness, name: str) -> None:
    """other.example.com says `issue "other-ca.example"`; alias.example.com is a CNAME to it (RFC 8659 3)."""
    answered = _challenge_result(harness, Raw(harness, "p384", "ES384").register(), name)
    assert answered["status"] == "invalid"
    error = answered["error"]
    assert error["type"] == "urn:ietf:params:acme:error:caa", error  # type: ignore[index]


def test_the_directory_publishes_the_caa_identities(harness: AcmeHarness) -> None:
    status, directory, _headers = Raw(harness, "p256").request("GET", "/acme/directory")
    assert status == 200
    assert directory["meta"]["caaIdentities"] == ["candor.test"]


def _finalize(client: Raw, order: dict[str, Any], name: str) -> tuple[int, Any, dict[str, str]]:
    csr = base64.urlsafe_b64encode(csr_for([name])).rstrip(b"=").decode()
    return client.post(urlsplit(order["finalize"]).path, {"csr": csr})


def test_caa_is_checked_again_a_little_before_the_signers_eight_hours(harness: AcmeHarness, lookups: Lookups) -> None:
    """A check 7 h 55 min old would turn 8 hours old while finalize runs, and the signer refuses that on a public
    issuer: the RA looks again first, so the order is issued, not made invalid."""
    client = Raw(harness, "p256_caa_margin").register()
    order, answered = _validated_order(harness, client, "www.example.com")
    assert answered["status"] == "valid"
    harness.ca.clock.advance(timedelta(hours=7, minutes=55))
    before = len(lookups.climbs)
    status, finished, _ = _finalize(client, order, "www.example.com")
    assert status == 200 and finished["status"] == "valid", finished
    assert len(lookups.climbs) > before and lookups.climbs[-1] == "www.example.com"  # rechecked


def test_caa_is_checked_again_at_finalization_after_eight_hours(harness: AcmeHarness, lookups: Lookups) -> None:
    """BR 3.2.2.8: the check must be no older than 8 hours at issuance. Within 8 hours the validation's own
    CAA check stands; after 8 hours finalization looks again, and a record that now names another CA stops
    issuance: the order becomes invalid with a caa error and nothing is signed."""
    fresh = Raw(harness, "p256_caa_fresh").register()
    order, answered = _validated_order(harness, fresh, "www.example.com")
    assert answered["status"] == "valid"
    before = len(lookups.climbs)
    harness.ca.clock.advance(timedelta(hours=7))
    status, finished, _ = _finalize(fresh, order, "www.example.com")
    assert status == 200 and finished["status"] == "valid", finished
    assert len(lookups.climbs) == before  # no recheck inside 8 hours

    later = Raw(harness, "p256_caa_later").register()
    order, answered = _validated_order(harness, later, "www.example.com")
    assert answered["status"] == "valid"
    harness.ca.clock.advance(timedelta(hours=8))
    status, finished, _ = _finalize(later, order, "www.example.com")
    assert status == 200 and finished["status"] == "valid", finished
    assert lookups.climbs[-1] == "www.example.com"  # rechecked, still allowed

    changed = Raw(harness, "p256_caa_changed").register()
    order, answered = _validated_order(harness, changed, "www.example.com")
    assert answered["status"] == "valid"
    harness.ca.clock.advance(timedelta(hours=9))
    lookups.moved["www.example.com"] = "other.example.com"  # now: 0 issue "other-ca.example"
    try:
        refused = _finalize(changed, order, "www.example.com")
    finally:
        lookups.moved.clear()
    expect_problem(refused, "caa", 403)
    _, after, _ = changed.post(urlsplit(order["finalize"]).path.removesuffix("/finalize"), None)
    assert after["status"] == "invalid" and after["error"]["type"] == URN + "caa", after
    assert "certificate" not in after
