"""ACME request verification against requests made by certbot's ``acme``/``josepy`` (see jose_requests.py).

Every refusal test builds a request that is valid except for the one rule under test (re-signed after the
change, so the signature is not what fails), and checks both the RFC 8555 §6.7 type and the rule's words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import josepy as jose
import pytest
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jose_requests import (
    NONCE_B64,
    URL,
    as_dict,
    b64,
    body,
    header_for,
    jose_key,
    private_key,
    protected_header,
    public_jwk_of,
    signed,
    signed_raw,
)

from candor.acme import SUPPORTED_ALGS, JwsError, PublicKey, VerifiedRequest, verify_request
from candor.errors import CandorError, ErrorKind

ACCOUNT = "https://acme.test/acme/acct/7"
PAYLOAD = b'{"identifiers": [{"type": "dns", "value": "example.com"}]}'
JOSE_CASES = [("RS256", "rsa2048"), ("ES256", "p256"), ("ES384", "p384"), ("ES512", "p521")]
EDDSA_CASES = [("EdDSA", "ed25519"), ("EdDSA", "ed448")]


def accounts(key_name: str | None = None) -> Callable[[str], PublicKey | None]:
    """An account lookup that knows ACCOUNT (with the public half of ``key_name``) and nothing else."""

    def lookup(kid: str) -> PublicKey | None:
        if key_name is None or kid != ACCOUNT:
            return None
        public: PublicKey = private_key(key_name).public_key()
        return public

    return lookup


def verify(request: bytes, *, key_name: str | None = None, url: str = URL, **kwargs: Any) -> VerifiedRequest:
    return verify_request(request, url=url, account_key=accounts(key_name), **kwargs)


def refused(request: bytes, acme_type: str, words: str, **kwargs: Any) -> JwsError:
    with pytest.raises(JwsError) as caught:
        verify(request, **kwargs)
    assert caught.value.acme_type == acme_type, caught.value.message
    assert words in caught.value.message
    return caught.value


# --- requests that verify ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "key_name"), JOSE_CASES)
def test_certbot_request_with_jwk_verifies(alg: str, key_name: str) -> None:
    request = signed(PAYLOAD, key_name, alg)
    verified = verify(request)
    assert (verified.alg, verified.nonce, verified.url, verified.kid) == (alg, NONCE_B64, URL, None)
    assert verified.jwk == public_jwk_of(key_name)
    assert verified.payload == PAYLOAD
    assert verified.payload_json() == json.loads(PAYLOAD)
    assert not verified.is_post_as_get
    assert verified.protected == protected_header(request)
    # josepy's own RFC 7638 thumbprint of the key that signed
    assert verified.thumbprint == b64(jose_key(key_name).public_key().thumbprint())


@pytest.mark.parametrize(("alg", "key_name"), JOSE_CASES)
def test_certbot_request_with_kid_verifies_with_the_account_key(alg: str, key_name: str) -> None:
    verified = verify(signed(PAYLOAD, key_name, alg, kid=ACCOUNT), key_name=key_name)
    assert (verified.kid, verified.jwk, verified.payload) == (ACCOUNT, None, PAYLOAD)
    assert verified.thumbprint == b64(jose_key(key_name).public_key().thumbprint())


@pytest.mark.parametrize(("alg", "key_name"), EDDSA_CASES)
def test_eddsa_request_verifies_with_jwk_and_with_kid(alg: str, key_name: str) -> None:
    with_jwk = verify(body(signed_raw(header_for(key_name, alg), PAYLOAD, key_name, alg)))
    assert (with_jwk.alg, with_jwk.jwk, with_jwk.payload) == ("EdDSA", public_jwk_of(key_name), PAYLOAD)
    with_kid = verify(
        body(signed_raw(header_for(key_name, alg, kid=ACCOUNT), PAYLOAD, key_name, alg)), key_name=key_name
    )
    assert (with_kid.kid, with_kid.thumbprint) == (ACCOUNT, with_jwk.thumbprint)


def test_post_as_get_has_the_empty_payload() -> None:
    verified = verify(signed(b"", "p256", "ES256", kid=ACCOUNT), key_name="p256")
    assert verified.is_post_as_get
    assert verified.payload == b""
    with pytest.raises(JwsError) as caught:
        verified.payload_json()
    assert caught.value.acme_type == "malformed"


def test_empty_object_payload_is_not_post_as_get() -> None:
    verified = verify(signed(b"{}", "p256", "ES256", kid=ACCOUNT), key_name="p256")
    assert not verified.is_post_as_get
    assert verified.payload_json() == {}


def test_payload_that_is_not_an_object_is_malformed() -> None:
    verified = verify(signed(b"[1, 2]", "p256", "ES256", kid=ACCOUNT), key_name="p256")
    with pytest.raises(JwsError, match="JSON object"):
        verified.payload_json()


@pytest.mark.parametrize(
    ("request_body", "kind"),
    [
        (b"not json", ErrorKind.MALFORMED),
        (signed(PAYLOAD, "rsa1024", "RS256"), ErrorKind.BAD_PUBLIC_KEY),
        (signed(PAYLOAD, "p256", "ES256", url="https://acme.test/other"), ErrorKind.UNAUTHORIZED),
        (signed(PAYLOAD, "p256", "ES256", kid=ACCOUNT), ErrorKind.NOT_FOUND),
        (signed(PAYLOAD, "p256", "ES256", nonce=None), ErrorKind.POLICY),
        (signed(PAYLOAD, "p384", "ES256"), ErrorKind.POLICY),
    ],
)
def test_refusal_is_the_one_internal_error_type_with_the_nearest_kind(request_body: bytes, kind: ErrorKind) -> None:
    with pytest.raises(CandorError) as caught:
        verify(request_body)
    assert isinstance(caught.value, JwsError)
    assert caught.value.kind is kind
    assert "\n" not in str(caught.value)


# --- algorithms -------------------------------------------------------------------------------------------


def test_alg_none_is_refused_with_the_supported_list() -> None:
    header = header_for("p256", "ES256") | {"alg": "none"}
    request = body({"protected": b64(json.dumps(header).encode()), "payload": b64(PAYLOAD), "signature": ""})
    error = refused(request, "badSignatureAlgorithm", "'none'")
    assert error.algorithms == SUPPORTED_ALGS


@pytest.mark.parametrize("alg", [jose.HS256, jose.HS512])
def test_mac_algorithms_are_refused(alg: jose.JWASignature) -> None:
    mac_key = jose.JWKOct(key=b"k" * 32)
    request = acme_jws.JWS.sign(PAYLOAD, key=mac_key, alg=alg, nonce=b"n", url=URL, kid=ACCOUNT).json_dumps()
    refused(request.encode(), "badSignatureAlgorithm", alg.name, key_name="p256")


@pytest.mark.parametrize("alg", [jose.PS256, jose.RS512])
def test_rsa_algorithms_other_than_rs256_are_refused(alg: jose.JWASignature) -> None:
    request = acme_jws.JWS.sign(PAYLOAD, key=jose_key("rsa2048"), alg=alg, nonce=b"n", url=URL).json_dumps()
    refused(request.encode(), "badSignatureAlgorithm", alg.name)


@pytest.mark.parametrize(
    ("alg", "key_name", "words"),
    [
        ("ES256", "p384", "secp384r1"),
        ("ES512", "p256", "secp256r1"),
        ("RS256", "p256", "EC"),
        ("ES256", "rsa2048", "RSA"),
    ],
)
def test_alg_that_does_not_fit_the_jwk_is_refused(alg: str, key_name: str, words: str) -> None:
    if alg.startswith("ES") and key_name.startswith("p"):
        request = signed(PAYLOAD, key_name, alg)  # josepy signs ES256 with a P-384 key when asked to
    else:
        signer = "p256" if alg.startswith("ES") else "rsa2048"
        request = body(signed_raw(header_for(key_name, alg), PAYLOAD, signer, alg))
    refused(request, "badSignatureAlgorithm", words)


def test_alg_that_does_not_fit_the_account_key_is_refused() -> None:
    request = signed(PAYLOAD, "rsa2048", "RS256", kid=ACCOUNT)
    refused(request, "badSignatureAlgorithm", "RS256 does not fit the EC secp256r1 key", key_name="p256")


def test_eddsa_with_an_ec_account_key_is_refused() -> None:
    request = body(signed_raw(header_for("ed25519", "EdDSA", kid=ACCOUNT), PAYLOAD, "ed25519", "EdDSA"))
    refused(request, "badSignatureAlgorithm", "EdDSA", key_name="p256")


# --- protected header -------------------------------------------------------------------------------------


def resigned(change: Callable[[dict[str, Any]], None], *, kid: str | None = None) -> bytes:
    """A valid ES256 request whose protected header ``change`` altered, signed again."""
    header = header_for("p256", "ES256", kid=kid)
    change(header)
    return body(signed_raw(header, PAYLOAD, "p256", "ES256"))


def test_unchanged_resigned_request_verifies() -> None:
    assert verify(resigned(lambda header: None)).payload == PAYLOAD  # the baseline of the tests below


def test_both_jwk_and_kid_is_malformed() -> None:
    refused(resigned(lambda h: h.update(kid=ACCOUNT)), "malformed", "exactly one of 'jwk' and 'kid'", key_name="p256")


def test_neither_jwk_nor_kid_is_malformed() -> None:
    refused(resigned(lambda h: h.pop("jwk")), "malformed", "exactly one of 'jwk' and 'kid'")


def test_missing_alg_is_malformed() -> None:
    refused(resigned(lambda h: h.pop("alg")), "malformed", "'alg'")


def test_missing_nonce_is_bad_nonce() -> None:
    refused(signed(PAYLOAD, "p256", "ES256", nonce=None), "badNonce", "'nonce'")


def test_empty_nonce_is_bad_nonce() -> None:
    refused(resigned(lambda h: h.update(nonce="")), "badNonce", "'nonce'")


@pytest.mark.parametrize("nonce", ["abc+def", "abcd==", 12345])
def test_nonce_that_is_not_base64url_is_malformed(nonce: object) -> None:
    refused(resigned(lambda h: h.update(nonce=nonce)), "malformed", "'nonce'")


def test_missing_url_is_malformed() -> None:
    refused(signed(PAYLOAD, "p256", "ES256", url=None), "malformed", "'url'")


def test_url_of_another_resource_is_unauthorized() -> None:
    request = signed(PAYLOAD, "p256", "ES256", url="https://acme.test/acme/revoke-cert")
    refused(request, "unauthorized", "RFC 8555 §6.4")


def test_crit_is_refused() -> None:
    refused(resigned(lambda h: h.update(crit=["exp"], exp=1)), "malformed", "'crit'")


def test_b64_false_is_refused() -> None:
    refused(resigned(lambda h: h.update(b64=False)), "malformed", "'b64'")


def test_b64_true_is_the_default_and_accepted() -> None:
    assert verify(resigned(lambda h: h.update(b64=True))).payload == PAYLOAD


def test_duplicate_names_in_the_protected_header_are_malformed() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    header = jose.b64decode(raw["protected"]).decode()
    raw["protected"] = b64((header[:-1] + ', "url": "https://acme.test/other"}').encode())
    refused(body(raw), "malformed", "duplicate")


# --- envelope ---------------------------------------------------------------------------------------------


def test_unprotected_header_is_malformed() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256")) | {"header": {"kid": ACCOUNT}}
    refused(body(raw), "malformed", "unprotected 'header'")


def test_general_serialization_is_malformed() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    general = {
        "payload": raw["payload"],
        "signatures": [{"protected": raw["protected"], "signature": raw["signature"]}],
    }
    refused(body(general), "malformed", "'signatures'")


def test_extra_member_is_malformed() -> None:
    refused(body(as_dict(signed(PAYLOAD, "p256", "ES256")) | {"extra": 1}), "malformed", "exactly the members")


def test_compact_serialization_is_malformed() -> None:
    compact = acme_jws.JWS.sign(PAYLOAD, key=jose_key("p256"), alg=jose.ES256, nonce=b"n", url=URL).to_compact()
    refused(compact, "malformed", "JSON")


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_base64_padding_is_malformed(member: str) -> None:
    # vary the nonce and payload lengths until this member's encoding is one that padding would lengthen
    raw = next(
        raw
        for n in range(4)
        if len((raw := as_dict(signed(PAYLOAD + b" " * n, "rsa2048", "RS256", nonce=b"n" * (n + 1))))[member]) % 4
    )
    raw[member] += "=" * (-len(raw[member]) % 4)
    refused(body(raw), "malformed", f"'{member}' must be a base64url string without padding")


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_standard_base64_alphabet_is_malformed(member: str) -> None:
    raw = as_dict(signed(PAYLOAD, "rsa2048", "RS256"))
    raw[member] = "+/" + raw[member][2:]
    refused(body(raw), "malformed", f"'{member}' must be a base64url string")


def test_base64url_of_impossible_length_is_malformed() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    raw["signature"] += "AAA"  # 86 + 3 = 89 characters: 1 more than a multiple of 4, which no octets encode
    assert len(raw["signature"]) % 4 == 1
    refused(body(raw), "malformed", "'signature' must be a base64url string without padding")


def test_non_canonical_base64url_is_malformed() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = raw["signature"][-1]  # 64 octets: 86 characters, the last carries 2 bits and 4 unused ones
    raw["signature"] = raw["signature"][:-1] + alphabet[alphabet.index(last) | 1]
    refused(body(raw), "malformed", "not canonical")


@pytest.mark.parametrize("request_body", [b"not json", b"[]", b'"a string"', b"\xff\xfe{}", b"[" * 60_000])
def test_body_that_is_not_a_json_object_is_malformed(request_body: bytes) -> None:
    refused(request_body, "malformed", "request body")


def test_body_over_the_limit_is_malformed() -> None:
    request = signed(PAYLOAD, "p256", "ES256")
    assert verify(request, max_bytes=len(request)).payload == PAYLOAD
    refused(request, "malformed", f"at most {len(request) - 1}", max_bytes=len(request) - 1)


def test_body_over_the_default_limit_of_64_kib_is_malformed() -> None:
    request = signed(b'{"x": "' + b"a" * 50_000 + b'"}', "p256", "ES256")
    assert len(request) > 65_536
    refused(request, "malformed", "at most 65536")


# --- keys -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["rsa2048", "p256"])
def test_private_key_in_jwk_is_malformed(key_name: str) -> None:
    alg = "RS256" if key_name.startswith("rsa") else "ES256"
    private_jwk = jose_key(key_name).to_partial_json()
    assert "d" in private_jwk
    header = header_for(key_name, alg) | {"jwk": private_jwk}
    refused(body(signed_raw(header, PAYLOAD, key_name, alg)), "malformed", "private member(s)")


def test_ec_point_off_the_curve_is_bad_public_key() -> None:
    def off_curve(header: dict[str, Any]) -> None:
        y = bytearray(jose.b64decode(header["jwk"]["y"]))
        y[-1] ^= 1
        header["jwk"]["y"] = b64(bytes(y))

    refused(resigned(off_curve), "badPublicKey", "not on curve P-256")


def test_rsa_1024_jwk_is_bad_public_key() -> None:
    refused(signed(PAYLOAD, "rsa1024", "RS256"), "badPublicKey", "1024 bits")


def test_ec_coordinate_without_leading_zeros_is_malformed() -> None:
    def shortened(header: dict[str, Any]) -> None:
        header["jwk"]["x"] = b64(jose.b64decode(header["jwk"]["x"])[1:])

    refused(resigned(shortened), "malformed", "32 octets")


def test_unsupported_curve_is_bad_public_key() -> None:
    refused(resigned(lambda h: h["jwk"].update(crv="secp256k1")), "badPublicKey", "crv")


def test_symmetric_jwk_is_refused() -> None:
    refused(resigned(lambda h: h.update(jwk={"kty": "oct", "k": "c2VjcmV0"})), "malformed", "private member(s)")


def test_unknown_account_is_account_does_not_exist() -> None:
    refused(signed(PAYLOAD, "p256", "ES256", kid=ACCOUNT + "0"), "accountDoesNotExist", "kid", key_name="p256")


# --- signatures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "key_name"), JOSE_CASES + EDDSA_CASES)
def test_tampered_signature_does_not_verify(alg: str, key_name: str) -> None:
    raw = signed_raw(header_for(key_name, alg), PAYLOAD, key_name, alg)
    signature = bytearray(jose.b64decode(raw["signature"]))
    signature[len(signature) // 2] ^= 0x01
    raw["signature"] = b64(bytes(signature))
    refused(body(raw), "malformed", "JWS signature does not verify")


@pytest.mark.parametrize(("alg", "key_name"), JOSE_CASES + EDDSA_CASES)
def test_tampered_payload_does_not_verify(alg: str, key_name: str) -> None:
    raw = signed_raw(header_for(key_name, alg), PAYLOAD, key_name, alg)
    raw["payload"] = b64(PAYLOAD.replace(b"example.com", b"example.net"))
    refused(body(raw), "malformed", "JWS signature does not verify")


def test_tampered_protected_header_does_not_verify() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    other = as_dict(signed(PAYLOAD, "p256", "ES256", nonce=b"another nonce"))
    raw["protected"] = other["protected"]
    assert verify(body(other)).nonce != NONCE_B64
    refused(body(raw), "malformed", "JWS signature does not verify")


def test_kid_request_signed_by_another_key_does_not_verify() -> None:
    refused(signed(PAYLOAD, "p256_b", "ES256", kid=ACCOUNT), "malformed", "does not verify", key_name="p256")


def test_es256_signature_in_der_does_not_verify() -> None:
    raw = as_dict(signed(PAYLOAD, "p256", "ES256"))
    signature = jose.b64decode(raw["signature"])
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    raw["signature"] = b64(der)
    refused(body(raw), "malformed", "JWS signature does not verify: ES256 needs 64 octets")


def test_empty_signature_does_not_verify() -> None:
    raw = as_dict(signed(PAYLOAD, "rsa2048", "RS256")) | {"signature": ""}
    refused(body(raw), "malformed", "JWS signature does not verify")
