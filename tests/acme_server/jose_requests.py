"""ACME request bodies made by an independent JOSE implementation: certbot's ``acme`` and ``josepy``.

josepy 2.2 has no EdDSA/OKP, so Ed25519 and Ed448 requests are signed here by hand with ``cryptography``
(RFC 8037 §3.1: the signature is the raw EdDSA signature over the JWS signing input). Nothing in this file
uses ``candor``: a test that builds a request here and verifies it with ``candor.acme`` compares two
implementations.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import josepy as jose
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

URL = "https://acme.test/acme/new-order"
NONCE = b"\x01\x02nonce-from-the-server\xfe\xff"
NONCE_B64 = jose.b64encode(NONCE).decode()

ALGS = {"RS256": jose.RS256, "ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512}
KEY_FOR_ALG = {"RS256": "rsa2048", "ES256": "p256", "ES384": "p384", "ES512": "p521"}


@functools.cache
def private_key(name: str) -> Any:
    """Test keys, made once per session. A suffix (``p256_b``, ``p256_eab``) names another key of the same type."""
    base = name.split("_")[0]
    if base.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(base[3:]))
    curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    if base in curves:
        return ec.generate_private_key(curves[base])
    return {"ed25519": ed25519.Ed25519PrivateKey, "ed448": ed448.Ed448PrivateKey}[base].generate()


def jose_key(name: str) -> jose.JWK:
    key = private_key(name)
    return jose.JWKRSA(key=key) if isinstance(key, rsa.RSAPrivateKey) else jose.JWKEC(key=key)


def public_jwk_of(name: str) -> dict[str, Any]:
    """The public JWK as josepy (or, for OKP, RFC 8037 §2 by hand) writes it."""
    key = private_key(name)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        crv = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "Ed448"
        return {"kty": "OKP", "crv": crv, "x": b64(key.public_key().public_bytes_raw())}
    partial: dict[str, Any] = jose_key(name).public_key().to_partial_json()
    return partial


def b64(data: bytes) -> str:
    return jose.b64encode(data).decode()


def signed(
    payload: bytes,
    key_name: str,
    alg: str,
    *,
    kid: str | None = None,
    url: str | None = URL,
    nonce: bytes | None = NONCE,
) -> bytes:
    """A request as certbot's client signs it: acme.jws.JWS.sign, flattened JSON serialization."""
    request = acme_jws.JWS.sign(payload, key=jose_key(key_name), alg=ALGS[alg], nonce=nonce, url=url, kid=kid)
    return request.json_dumps().encode()


def header_for(key_name: str, alg: str, *, kid: str | None = None) -> dict[str, Any]:
    """A complete, valid protected header, as a dict for a test to change before :func:`signed_raw`."""
    header: dict[str, Any] = {"alg": alg, "nonce": NONCE_B64, "url": URL}
    if kid is None:
        header["jwk"] = public_jwk_of(key_name)
    else:
        header["kid"] = kid
    return header


def signed_raw(header: dict[str, Any], payload: bytes, key_name: str, alg: str) -> dict[str, str]:
    """A flattened JWS with exactly ``header`` protected: josepy's algorithms, or EdDSA by hand."""
    protected = b64(json.dumps(header).encode())
    payload_b64 = b64(payload)
    message = f"{protected}.{payload_b64}".encode()
    if alg == "EdDSA":
        signature = private_key(key_name).sign(message)
    else:
        signature = ALGS[alg].sign(private_key(key_name), message)
    return {"protected": protected, "payload": payload_b64, "signature": b64(signature)}


def body(jws: dict[str, Any]) -> bytes:
    return json.dumps(jws).encode()


def as_dict(request: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(request)
    return value


def protected_header(request: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(jose.b64decode(as_dict(request)["protected"]))
    return value
