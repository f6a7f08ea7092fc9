"""Issue 4 acceptance 6 (the part the front end owns): hostile requests get the right ACME error, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from acme_harness import AcmeHarness, acme_server
from acme_raw import Raw, expect_problem, issued_certificate, route_for
from issuing import build_home, csr_for
from jose_requests import b64, public_jwk_of

URN = "urn:ietf:params:acme:error:"


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("acme-hostile"))


@pytest.fixture(scope="module")
def harness(hostile_home: Path) -> Iterator[AcmeHarness]:
    with acme_server(hostile_home) as running:
        yield running


def test_not_json_is_malformed(harness: AcmeHarness) -> None:
    expect_problem(Raw(harness, "p256").request("POST", "/acme/new-account", b"{not json"), "malformed", 400)


def test_wrong_content_type_is_refused(harness: AcmeHarness) -> None:
    expect_problem(
        Raw(harness, "p256").request("POST", "/acme/new-account", b"{}", "application/json"), "malformed", 415
    )


def test_alg_none_is_a_bad_signature_algorithm(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256")
    header = {
        "alg": "none",
        "nonce": client.nonce(),
        "url": client.origin + "/acme/new-account",
        "jwk": public_jwk_of("p256"),
    }
    jws = {"protected": b64(json.dumps(header).encode()), "payload": b64(b"{}"), "signature": ""}
    reply = client.request("POST", "/acme/new-account", json.dumps(jws).encode())
    expect_problem(reply, "badSignatureAlgorithm", 400)
    assert "ES256" in reply[1]["algorithms"]


def test_a_replayed_nonce_is_bad(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256")
    nonce = client.nonce()
    first = client.post("/acme/new-account", {"termsOfServiceAgreed": True}, use_jwk=True, nonce=nonce)
    assert first[0] in (200, 201)
    expect_problem(
        client.post("/acme/new-account", {"termsOfServiceAgreed": True}, use_jwk=True, nonce=nonce), "badNonce", 400
    )


def test_a_nonce_the_server_never_issued_is_bad(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256")
    forged = base64.urlsafe_b64encode(b"0123456789abcdef").rstrip(b"=").decode()
    expect_problem(client.post("/acme/new-account", {}, use_jwk=True, nonce=forged), "badNonce", 400)


def test_the_signed_url_must_be_this_one(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256")
    reply = client.post("/acme/new-account", {}, use_jwk=True, url=client.origin + "/acme/new-order")
    expect_problem(reply, "unauthorized", 403)


def test_an_unknown_kid_is_account_does_not_exist(harness: AcmeHarness) -> None:
    client = Raw(harness, "p384")
    client.kid = client.origin + "/acme/acct/999999"
    expect_problem(client.post("/acme/new-order", {"identifiers": []}, alg="ES384"), "accountDoesNotExist", 400)


@pytest.mark.parametrize("account", ["\u00b2", "1" * 40, str(2**63)])
def test_a_kid_that_is_not_a_64_bit_account_id_is_account_does_not_exist(harness: AcmeHarness, account: str) -> None:
    """ "²" passes str.isdigit() but not int(); a 40-digit id overflows the database's integer: never a 500."""
    client = Raw(harness, "p384")
    client.kid = client.origin + "/acme/acct/" + account
    expect_problem(client.post("/acme/new-order", {"identifiers": []}, alg="ES384"), "accountDoesNotExist", 400)


@pytest.mark.parametrize("path", ["/acme/order/", "/acme/authz/", "/acme/chall/", "/acme/cert/", "/acme/acct/"])
def test_an_object_id_beyond_64_bits_is_not_found(harness: AcmeHarness, path: str) -> None:
    client = Raw(harness, "p256").register()
    expect_problem(client.post(path + "9" * 30, None), "malformed", 404)


def test_new_account_with_kid_is_malformed(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    expect_problem(client.post("/acme/new-account", {}), "malformed", 400)


def test_dates_in_a_new_order_are_refused(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    payload = {"identifiers": [{"type": "dns", "value": "www.example.com"}], "notBefore": "2015-12-20T00:00:00Z"}
    expect_problem(client.post("/acme/new-order", payload), "malformed", 400)


def test_an_unknown_profile_is_refused(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    payload = {"identifiers": [{"type": "dns", "value": "www.example.com"}], "profile": "sha1-legacy"}
    expect_problem(client.post("/acme/new-order", payload), "invalidProfile", 400)


def test_account_b_cannot_touch_account_a(harness: AcmeHarness) -> None:
    alice, mallory = Raw(harness, "p256").register(), Raw(harness, "p256_b").register()
    status, order, headers = alice.post(
        "/acme/new-order", {"identifiers": [{"type": "dns", "value": "www.example.com"}]}
    )
    assert status == 201
    order_path = urlsplit(headers["location"]).path
    authz_path = urlsplit(order["authorizations"][0]).path
    _, authz, _ = alice.post(authz_path, None)
    challenge_path = urlsplit(authz["challenges"][0]["url"]).path
    for path in (
        order_path,
        authz_path,
        challenge_path,
        order_path + "/finalize",
        order_path.replace("/order/", "/cert/"),
    ):
        payload = {"csr": "AAAA"} if path.endswith("finalize") else None
        expect_problem(mallory.post(path, payload), "malformed", 404)
    expect_problem(mallory.post(urlsplit(alice.kid or "").path, None), "unauthorized", 403)


def test_csr_names_must_match_the_order(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    status, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "api.example.org"}]})
    assert status == 201
    # make the order ready by answering its http-01 challenge
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    from candor.acme.jwk import key_authorization

    harness.responder_routes[f"/.well-known/acme-challenge/{challenge['token']}"] = route_for(
        key_authorization(challenge["token"], public_jwk_of("p256"))
    )
    status, answered, _ = client.post(urlsplit(challenge["url"]).path, {})
    assert answered["status"] == "valid", answered
    der = csr_for(["www.example.com"])
    csr = base64.urlsafe_b64encode(der).rstrip(b"=").decode()
    expect_problem(client.post(urlsplit(order["finalize"]).path, {"csr": csr}), "badCSR", 400)


def test_get_on_a_post_resource_is_not_allowed(harness: AcmeHarness) -> None:
    status, body, headers = Raw(harness, "p256").request("GET", "/acme/new-order")
    assert status == 405 and headers["allow"] == "POST"
    assert body["type"] == URN + "malformed" and headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/acme/authz/abc", "/acme/no-such-thing", "/acme/order/1/elsewhere"])
def test_an_unknown_acme_path_is_a_problem_document(harness: AcmeHarness, path: str) -> None:
    status, body, headers = Raw(harness, "p256").request("POST", path, b"{}")
    assert status == 404 and body["type"] == URN + "malformed"
    assert headers["content-type"] == "application/problem+json"


def test_a_huge_body_is_refused_before_it_is_read(harness: AcmeHarness) -> None:
    expect_problem(Raw(harness, "p256").request("POST", "/acme/new-account", b"x" * 100_000), "malformed", 413)


def test_only_the_ordering_account_may_revoke(harness: AcmeHarness) -> None:
    owner, other = Raw(harness, "p384", "ES384").register(), Raw(harness, "rsa2048", "RS256").register()
    certificate = base64.urlsafe_b64encode(issued_certificate(harness, owner, "www.example.com")).rstrip(b"=").decode()
    expect_problem(other.post("/acme/revoke-cert", {"certificate": certificate}), "unauthorized", 403)
    expect_problem(
        owner.post("/acme/revoke-cert", {"certificate": certificate, "reason": 6}), "badRevocationReason", 400
    )
    status, _body, _headers = owner.post("/acme/revoke-cert", {"certificate": certificate, "reason": 4})
    assert status == 200
    expect_problem(owner.post("/acme/revoke-cert", {"certificate": certificate}), "alreadyRevoked", 400)


def test_a_certificate_unknown_here_cannot_be_revoked(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    junk = base64.urlsafe_b64encode(b"\x30\x03\x02\x01\x01").rstrip(b"=").decode()
    expect_problem(client.post("/acme/revoke-cert", {"certificate": junk}), "malformed", 400)


def _key_change(
    client: Raw, new_key: str, new_alg: str, *, old_jwk: dict[str, Any], extra: dict[str, Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    from jose_requests import signed_raw

    header = {"alg": new_alg, "jwk": public_jwk_of(new_key), "url": client.origin + "/acme/key-change", **(extra or {})}
    inner = signed_raw(header, json.dumps({"account": client.kid, "oldKey": old_jwk}).encode(), new_key, new_alg)
    return client.post("/acme/key-change", inner)


def test_key_change_rolls_the_account_key(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    kid = client.kid
    assert _key_change(client, "p384_b", "ES384", old_jwk=public_jwk_of("p256"))[0] == 200
    # the old key no longer speaks for the account (an ES256 signature cannot be checked by its P-384 key)...
    expect_problem(client.post(urlsplit(kid or "").path, None), "badSignatureAlgorithm", 400)
    # ...the new one does
    rolled = Raw(harness, "p384_b", "ES384")
    rolled.kid = kid
    assert rolled.post(urlsplit(kid or "").path, None)[0] == 200


def test_key_change_refuses_a_wrong_old_key_a_nonce_or_a_key_in_use(harness: AcmeHarness) -> None:
    client = Raw(harness, "rsa2048", "RS256").register()
    expect_problem(_key_change(client, "ed25519", "EdDSA", old_jwk=public_jwk_of("p256_b")), "unauthorized", 403)
    expect_problem(
        _key_change(client, "ed25519", "EdDSA", old_jwk=public_jwk_of("rsa2048"), extra={"nonce": client.nonce()}),
        "malformed",
        400,
    )
    other = Raw(harness, "ed448", "EdDSA").register()
    reply = _key_change(client, "ed448", "EdDSA", old_jwk=public_jwk_of("rsa2048"))
    expect_problem(reply, "malformed", 409)
    assert reply[2]["location"] == other.kid


@pytest.mark.parametrize("profile", [["dv"], {"dv": 1}, 7, None])
def test_a_profile_that_is_not_a_string_is_malformed(harness: AcmeHarness, profile: object) -> None:
    client = Raw(harness, "p256").register()
    payload = {"identifiers": [{"type": "dns", "value": "example.com"}], "profile": profile}
    expect_problem(client.post("/acme/new-order", payload), "malformed", 400)
