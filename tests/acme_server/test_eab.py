"""External account binding (RFC 8555 §7.3.4), with bindings made by certbot's ``acme.messages``.

certbot serialises the bound key with ``json.dumps`` defaults (spaces after separators, its own member
order), so a binding that verifies here shows the payload is compared as a JSON object, not as bytes.
"""

from __future__ import annotations

import json
from typing import Any

import josepy as jose
import pytest
from acme import jws as acme_jws
from acme import messages
from jose_requests import b64, jose_key, public_jwk_of

from candor.acme import JwsError, verify_eab

NEW_ACCOUNT = "https://acme.test/acme/new-acct"
EAB_KID = "kid-of-customer-42"
MAC_KEY = b"\x8b" * 32


def hmac_keys(kid: str) -> bytes | None:
    return MAC_KEY if kid == EAB_KID else None


def binding(
    key_name: str = "p256", *, kid: str = EAB_KID, mac_key: bytes = MAC_KEY, url: str = NEW_ACCOUNT, alg: str = "HS256"
) -> dict[str, Any]:
    """A binding as certbot makes it for the account key ``key_name``."""
    made = messages.ExternalAccountBinding.from_data(
        account_public_key=jose_key(key_name).public_key(),
        kid=kid,
        hmac_key=b64(mac_key),
        directory={"newAccount": url},  # from_data only reads this member of the directory
        hmac_alg=alg,
    )
    return dict(made)


def verify(eab: dict[str, Any], outer_key: str = "p256") -> str:
    return verify_eab(eab, outer_jwk=public_jwk_of(outer_key), url=NEW_ACCOUNT, hmac_key_for=hmac_keys)


def refused(eab: dict[str, Any], acme_type: str, words: str, outer_key: str = "p256") -> None:
    with pytest.raises(JwsError) as caught:
        verify(eab, outer_key)
    assert caught.value.acme_type == acme_type, caught.value.message
    assert words in caught.value.message


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("key_name", ["rsa2048", "p256", "ed25519"])
def test_certbot_binding_verifies_and_names_its_kid(alg: str, key_name: str) -> None:
    if key_name == "ed25519":  # josepy has no OKP keys: bind the RFC 8037 JWK by hand, MAC with josepy
        payload = json.dumps(public_jwk_of(key_name)).encode()
        eab = acme_jws.JWS.sign(
            payload, jose.JWKOct(key=MAC_KEY), jose.jwa.JWASignature.from_json(alg), None, NEW_ACCOUNT, EAB_KID
        )
        assert verify(eab.to_partial_json(), key_name) == EAB_KID
    else:
        assert verify(binding(key_name, alg=alg), key_name) == EAB_KID


def test_wrong_mac_key_is_unauthorized() -> None:
    refused(binding(mac_key=b"\x8c" * 32), "unauthorized", "MAC does not verify")


def test_tampered_mac_is_unauthorized() -> None:
    eab = binding()
    mac = bytearray(jose.b64decode(eab["signature"]))
    mac[0] ^= 1
    refused(eab | {"signature": b64(bytes(mac))}, "unauthorized", "MAC does not verify")


def test_binding_of_another_key_is_unauthorized() -> None:
    refused(binding("p256_b"), "unauthorized", "not the JWK of the outer JWS")


def test_binding_with_an_extra_member_in_the_key_is_unauthorized() -> None:
    assert verify(binding("p256")) == EAB_KID
    with pytest.raises(JwsError, match="not the JWK of the outer JWS"):
        verify_eab(
            binding("p256"),
            outer_jwk=public_jwk_of("p256") | {"use": "sig"},
            url=NEW_ACCOUNT,
            hmac_key_for=hmac_keys,
        )


def test_inner_nonce_is_malformed() -> None:
    payload = json.dumps(public_jwk_of("p256")).encode()
    eab = acme_jws.JWS.sign(payload, jose.JWKOct(key=MAC_KEY), jose.HS256, b"a nonce", NEW_ACCOUNT, EAB_KID)
    refused(eab.to_partial_json(), "malformed", "'nonce'")


def test_binding_for_another_url_is_unauthorized() -> None:
    refused(binding(url="https://other.test/acme/new-acct"), "unauthorized", "newAccount URL")


def test_unknown_kid_is_unauthorized() -> None:
    refused(binding(kid="kid-of-nobody"), "unauthorized", "'kid-of-nobody'")


def test_binding_signed_with_an_account_key_algorithm_is_malformed() -> None:
    payload = json.dumps(public_jwk_of("p256")).encode()
    eab = acme_jws.JWS.sign(payload, jose_key("p256"), jose.ES256, None, NEW_ACCOUNT, EAB_KID)
    refused(eab.to_partial_json(), "malformed", "HS256, HS384 or HS512")


def test_binding_without_kid_is_malformed() -> None:
    payload = json.dumps(public_jwk_of("p256")).encode()
    eab = jose.JWS.sign(
        payload, key=jose.JWKOct(key=MAC_KEY), alg=jose.HS256, protect=frozenset({"alg"}), include_jwk=False
    )
    refused(eab.to_partial_json(), "malformed", "'kid'")


@pytest.mark.parametrize("eab", [{}, {"protected": "e30", "payload": "", "signatures": []}, "not an object"])
def test_binding_that_is_not_a_flattened_jws_is_malformed(eab: Any) -> None:
    refused(eab, "malformed", "externalAccountBinding")
