"""Issue 4 acceptance 5 (first part): CAA, looked up in a real bind9, decides after a successful http-01."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from acme_harness import AcmeHarness, acme_server
from acme_raw import Raw, route_for
from bind9 import running_named
from issuing import build_home
from jose_requests import public_jwk_of

from candor.acme.jwk import key_authorization
from candor.validation import DnsResolver
from candor.validation.validator import CaaCheck

NAMES = ("www.example.com", "other.example.com", "alias.example.com")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHarness]:
    home = build_home(tmp_path_factory.mktemp("acme-caa"))
    with running_named(tmp_path_factory.mktemp("named")) as named:
        check = CaaCheck(DnsResolver([(named.address, named.port)]), frozenset({"candor.test"}))
        with acme_server(home, names=NAMES, caa=check) as running:
            yield running


def _challenge_result(harness: AcmeHarness, client: Raw, name: str) -> dict[str, object]:
    from urllib.parse import urlsplit

    status, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})
    assert status == 201
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    harness.responder_routes[f"/.well-known/acme-challenge/{challenge['token']}"] = route_for(
        key_authorization(challenge["token"], public_jwk_of(client.key_name))
    )
    _, answered, _ = client.post(urlsplit(challenge["url"]).path, {})
    return answered  # type: ignore[no-any-return]


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
