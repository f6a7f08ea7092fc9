"""JSON Web Keys for ACME: base64url, JWK <-> public key, thumbprints, key authorizations, and the error type.

The error type lives here, at the bottom of the ``candor.acme`` imports, because key parsing refuses keys too;
:mod:`candor.acme.jws` re-exports it. Every refusal is a :class:`JwsError`: a :class:`CandorError` whose kind
is the closest :class:`ErrorKind`, refined with the exact RFC 8555 §6.7 type for the ACME problem document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from candor.errors import CandorError, ErrorKind

__all__ = [
    "AcmeErrorType",
    "JwsError",
    "PublicKey",
    "b64url_decode",
    "b64url_encode",
    "jwk_thumbprint",
    "key_authorization",
    "key_from_jwk",
    "public_jwk",
]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

# RFC 8555 §6.7: the error types a request-authentication failure maps to (without the urn: prefix).
AcmeErrorType = Literal[
    "malformed", "badSignatureAlgorithm", "badNonce", "unauthorized", "accountDoesNotExist", "badPublicKey"
]


# The kind each type maps to; badNonce and badSignatureAlgorithm have no finer kind than POLICY.
_KINDS = {
    "malformed": ErrorKind.MALFORMED,
    "badPublicKey": ErrorKind.BAD_PUBLIC_KEY,
    "unauthorized": ErrorKind.UNAUTHORIZED,
    "accountDoesNotExist": ErrorKind.NOT_FOUND,
}


class JwsError(CandorError):
    """A refused ACME request, with the RFC 8555 §6.7 ``acme_type`` for the problem document.

    ``algorithms`` is set for ``badSignatureAlgorithm``: RFC 8555 §6.2 requires the problem document to list
    the supported "alg" values.
    """

    def __init__(self, acme_type: AcmeErrorType, message: str, *, algorithms: tuple[str, ...] = ()) -> None:
        super().__init__(_KINDS.get(acme_type, ErrorKind.POLICY), message)
        self.acme_type: AcmeErrorType = acme_type
        self.algorithms = algorithms


def quoted(value: object) -> str:
    """A client-supplied value for a one-line message: repr (so no newlines), cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- base64url (RFC 7515 §2: URL-safe alphabet, no padding, no other characters) ------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, what: str) -> bytes:
    """Strict base64url: alphabet only, no padding, canonical (unused trailing bits zero), else malformed."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JwsError("malformed", f"{what} must be a base64url string without padding (RFC 7515 §2)")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise JwsError("malformed", f"{what} is not canonical base64url: its unused bits are set (RFC 7515 §2)")
    return data


# --- JWK -> public key (RFC 7517, RFC 7518 §6, RFC 8037 §2) -----------------------------------------------

MIN_RSA_BITS = 2048  # RFC 8555 §6.2 leaves key policy to the server; nothing smaller is acceptable anywhere.
MAX_RSA_BITS = 8192  # local limit: bounds the work an unauthenticated request can cost.

# RFC 7518 §6.2.1.1 curve name -> (curve, coordinate length); RFC 7518 §6.2.1.2: coordinates are full length.
_EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
}
_EC_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}  # SEC 2 names
_OKP_LENGTHS = {"Ed25519": 32, "Ed448": 57}  # RFC 8037 §2, RFC 8032 §5.1.5 and §5.2.5
# RFC 7518 §6.3.2 (RSA), §6.2.2 (EC), §6.4 (oct), RFC 8037 §2 (OKP "d"): members only a private key has.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def key_from_jwk(jwk: object) -> PublicKey:
    """The public key a JWK describes, or :class:`JwsError` (malformed / badPublicKey)."""
    if not isinstance(jwk, Mapping):
        raise JwsError("malformed", "JWS header 'jwk' must be a JSON object (RFC 7517 §4)")
    private = sorted(_PRIVATE_MEMBERS.intersection(jwk))
    if private:
        raise JwsError("malformed", f"JWK must be a public key; it has private member(s) {private} (RFC 8555 §6.2)")
    kty = jwk.get("kty")
    if kty == "RSA":
        n, e = _uint(jwk, "n"), _uint(jwk, "e")
        if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
            raise JwsError(
                "badPublicKey", f"RSA modulus is {n.bit_length()} bits; allowed {MIN_RSA_BITS} to {MAX_RSA_BITS}"
            )
        try:
            return rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise JwsError("badPublicKey", "RSA public exponent is invalid (RFC 8017 §3.1)") from None
    crv = jwk.get("crv")
    if kty == "EC":
        if not isinstance(crv, str) or crv not in _EC_CURVES:
            raise JwsError("badPublicKey", f"EC JWK crv {quoted(crv)} is not supported; allowed: P-256, P-384, P-521")
        curve, size = _EC_CURVES[crv]
        point = b"\x04" + _fixed(jwk, "x", size) + _fixed(jwk, "y", size)  # SEC 1 §2.3.3 uncompressed point
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve(), point)
        except ValueError:
            raise JwsError("badPublicKey", f"EC JWK point is not on curve {crv} (SEC 1 §3.2.2.1)") from None
    if kty == "OKP":
        if not isinstance(crv, str) or crv not in _OKP_LENGTHS:
            raise JwsError("badPublicKey", f"OKP JWK crv {quoted(crv)} is not supported; allowed: Ed25519, Ed448")
        x = _fixed(jwk, "x", _OKP_LENGTHS[crv])
        try:
            if crv == "Ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(x)
            return ed448.Ed448PublicKey.from_public_bytes(x)
        except ValueError:
            raise JwsError("badPublicKey", f"OKP JWK x is not a valid {crv} public key (RFC 8037 §2)") from None
    raise JwsError("badPublicKey", f"JWK kty {quoted(kty)} is not supported; allowed: RSA, EC, OKP")


def _uint(jwk: Mapping[str, Any], name: str) -> int:
    """RFC 7518 §2 Base64urlUInt: non-empty, minimum number of octets (zero is the one octet 0)."""
    data = b64url_decode(jwk.get(name), f"JWK member {name!r}")
    if not data or (len(data) > 1 and data[0] == 0):
        raise JwsError("malformed", f"JWK member {name!r} must be a minimal-length Base64urlUInt (RFC 7518 §2)")
    return int.from_bytes(data, "big")


def _fixed(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    data = b64url_decode(jwk.get(name), f"JWK member {name!r}")
    if len(data) != size:
        raise JwsError("malformed", f"JWK member {name!r} must be {size} octets (RFC 7518 §6.2.1.2, RFC 8037 §2)")
    return data


# --- public key -> JWK, thumbprints (RFC 7638), key authorizations (RFC 8555 §8.1) ------------------------


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The JWK of a public key with only its required members, in the encodings RFC 7518 and RFC 8037 fix."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _uint_b64(numbers.n), "e": _uint_b64(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _EC_NAMES.get(key.curve.name)
        if crv is None:
            raise JwsError("badPublicKey", f"EC curve {key.curve.name} has no JWK name (RFC 7518 §6.2.1.1)")
        size = _EC_CURVES[crv][1]
        ec_numbers = key.public_numbers()
        x, y = (b64url_encode(v.to_bytes(size, "big")) for v in (ec_numbers.x, ec_numbers.y))
        return {"kty": "EC", "crv": crv, "x": x, "y": y}
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64url_encode(key.public_bytes_raw())}


def _uint_b64(value: int) -> str:
    return b64url_encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


# RFC 7638 §3.2 (RSA, EC) and RFC 8037 §2 (OKP): the required members, which alone enter the thumbprint.
_REQUIRED_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace; base64url."""
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise JwsError("badPublicKey", f"JWK kty {quoted(kty)} has no thumbprint here; allowed: RSA, EC, OKP")
    if not all(isinstance(jwk.get(m), str) for m in members):
        raise JwsError("malformed", f"JWK of kty {kty} needs string members {list(members)} (RFC 7638 §3.2)")
    canonical = json.dumps({m: jwk[m] for m in members}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def key_authorization(token: str, jwk: Mapping[str, Any]) -> str:
    """RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey))."""
    return f"{token}.{jwk_thumbprint(jwk)}"
