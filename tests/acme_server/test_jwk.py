"""JWK conversion, RFC 7638 thumbprints and RFC 8555 §8.1 key authorizations.

Vectors: RFC 7638 §3.1 (the RSA key of RFC 7517 Appendix A.1) and RFC 8037 Appendix A.3 (Ed25519). Other
keys are checked against josepy's thumbprint and certbot's ``acme.challenges`` key authorization.
"""

from __future__ import annotations

from typing import Any

import josepy as jose
import pytest
from acme import challenges
from jose_requests import b64, jose_key, private_key, public_jwk_of

from candor.acme import JwsError, jwk_thumbprint, key_authorization, key_from_jwk, public_jwk

# RFC 7638 §3.1: the JWK as printed there, with "alg" and "kid", which the thumbprint leaves out.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
    "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6q"
    "MQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
    "nqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
# RFC 8037 Appendix A.2 public key and A.3 thumbprint.
RFC8037_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
KEYS = ["rsa2048", "p256", "p384", "p521", "ed25519", "ed448"]


def test_rfc7638_rsa_thumbprint_vector() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_member_order_and_optional_members() -> None:
    reordered = dict(reversed(list(RFC7638_JWK.items()))) | {"use": "sig"}
    assert jwk_thumbprint(reordered) == RFC7638_THUMBPRINT
    assert jwk_thumbprint(RFC7638_JWK | {"e": "AQAC"}) != RFC7638_THUMBPRINT


def test_rfc8037_ed25519_thumbprint_vector() -> None:
    assert jwk_thumbprint(RFC8037_JWK) == RFC8037_THUMBPRINT


@pytest.mark.parametrize("key_name", ["rsa2048", "p256", "p384", "p521"])
def test_thumbprint_agrees_with_josepy(key_name: str) -> None:
    expected = b64(jose_key(key_name).public_key().thumbprint())
    assert jwk_thumbprint(public_jwk_of(key_name)) == expected


@pytest.mark.parametrize("jwk", [{"kty": "oct", "k": "c2VjcmV0"}, {"n": "AQAB", "e": "AQAB"}, {"kty": "RSA", "n": "x"}])
def test_thumbprint_of_an_unusable_jwk_is_refused(jwk: dict[str, Any]) -> None:
    with pytest.raises(JwsError):
        jwk_thumbprint(jwk)


def test_key_authorization_agrees_with_certbot() -> None:
    token = b"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    expected = challenges.HTTP01(token=token).key_authorization(jose_key("p256").public_key())
    assert key_authorization(jose.b64encode(token).decode(), public_jwk_of("p256")) == expected


@pytest.mark.parametrize("key_name", KEYS)
def test_public_jwk_is_what_a_client_sends(key_name: str) -> None:
    assert public_jwk(private_key(key_name).public_key()) == public_jwk_of(key_name)


@pytest.mark.parametrize("key_name", KEYS)
def test_jwk_round_trips_to_the_same_key(key_name: str) -> None:
    key = private_key(key_name).public_key()
    assert key_from_jwk(public_jwk(key)) == key


def test_rfc7517_example_key_loads() -> None:
    key = key_from_jwk(RFC7638_JWK)
    assert public_jwk(key) == {m: RFC7638_JWK[m] for m in ("kty", "n", "e")}


def test_rsa_modulus_with_a_leading_zero_octet_is_malformed() -> None:
    n = b64(b"\x00" + jose.b64decode(RFC7638_JWK["n"]))
    with pytest.raises(JwsError, match="minimal-length") as caught:
        key_from_jwk(RFC7638_JWK | {"n": n})
    assert caught.value.acme_type == "malformed"


@pytest.mark.parametrize(("e", "words"), [("AAE", "minimal-length"), ("Ag", "exponent")])
def test_bad_rsa_exponent_is_refused(e: str, words: str) -> None:
    with pytest.raises(JwsError, match=words):
        key_from_jwk(RFC7638_JWK | {"e": e})


def test_rsa_modulus_over_8192_bits_is_bad_public_key() -> None:
    with pytest.raises(JwsError, match="8193 bits") as caught:
        key_from_jwk({"kty": "RSA", "n": b64((1 << 8192 | 1).to_bytes(1025, "big")), "e": "AQAB"})
    assert caught.value.acme_type == "badPublicKey"


@pytest.mark.parametrize("crv", ["X25519", "Ed25519ph", None])
def test_unsupported_okp_curve_is_bad_public_key(crv: str | None) -> None:
    with pytest.raises(JwsError, match="OKP JWK crv") as caught:
        key_from_jwk(RFC8037_JWK | {"crv": crv})
    assert caught.value.acme_type == "badPublicKey"


def test_okp_private_member_is_malformed() -> None:
    private = RFC8037_JWK | {"d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}  # RFC 8037 A.1
    with pytest.raises(JwsError, match=r"private member\(s\) \['d'\]"):
        key_from_jwk(private)


@pytest.mark.parametrize(
    ("jwk", "acme_type", "words"),
    [
        ([], "malformed", "JSON object"),
        ("jwk", "malformed", "JSON object"),
        ({"kty": "DSA"}, "badPublicKey", "kty"),
        ({}, "badPublicKey", "kty"),
    ],
)
def test_jwk_that_is_not_a_supported_key_is_refused(jwk: object, acme_type: str, words: str) -> None:
    with pytest.raises(JwsError, match=words) as caught:
        key_from_jwk(jwk)
    assert caught.value.acme_type == acme_type
