"""Verification of ACME request bodies: JWS in flattened JSON serialization (RFC 8555 §6.2-6.5, RFC 7515).

:func:`verify_request` turns a POST body into a :class:`VerifiedRequest` or raises :class:`JwsError` with the
RFC 8555 §6.7 error type. It checks the envelope, the protected header, the key and the signature, and that
the signed "url" is the request's URL. The caller keeps what needs state or context: that the nonce is fresh
(RFC 8555 §6.5), whether this resource takes "jwk" or "kid" (RFC 8555 §6.2), its key policy, and the
account's status. :func:`verify_eab` checks an external account binding (RFC 8555 §7.3.4).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from candor.acme.jwk import JwsError, PublicKey, b64url_decode, jwk_thumbprint, key_from_jwk, public_jwk, quoted

__all__ = [
    "MAX_BODY_BYTES",
    "SUPPORTED_ALGS",
    "JwsError",
    "ParsedJws",
    "VerifiedRequest",
    "parse_flattened_jws",
    "verify_eab",
    "verify_key_change",
    "verify_request",
]

MAX_BODY_BYTES = 64 * 1024
# RFC 8555 §6.2: never "none" nor a MAC. RS256 and ES256 are what RFC 7518 §3.1 requires or recommends;
# EdDSA (RFC 8037 §3.1) is the SHOULD of RFC 8555 §6.2.
SUPPORTED_ALGS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
_EC_ALGS: dict[str, tuple[str, Callable[[], hashes.HashAlgorithm]]] = {  # RFC 7518 §3.4
    "ES256": ("secp256r1", hashes.SHA256),
    "ES384": ("secp384r1", hashes.SHA384),
    "ES512": ("secp521r1", hashes.SHA512),
}
_EAB_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}  # RFC 7518 §3.2
_MEMBERS = ("payload", "protected", "signature")


@dataclass(frozen=True)
class ParsedJws:
    """A flattened JWS whose envelope is well formed; nothing about it is verified yet."""

    protected_b64: str
    payload_b64: str
    header: Mapping[str, Any]
    payload: bytes
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        """RFC 7515 §5.1 step 8: ASCII(BASE64URL(protected) || '.' || BASE64URL(payload))."""
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature verifies with ``key``: the jwk it carried, or the key of account ``kid``."""

    alg: str
    nonce: str  # base64url as sent; the caller checks that it is one it issued and not yet used (RFC 8555 §6.5)
    url: str
    kid: str | None
    jwk: Mapping[str, Any] | None
    key: PublicKey
    payload: bytes
    protected: Mapping[str, Any]

    @functools.cached_property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of ``key`` (computed when asked: newAccount needs it, most requests do not)."""
        return jwk_thumbprint(public_jwk(self.key))

    @property
    def is_post_as_get(self) -> bool:
        """RFC 8555 §6.3: a POST-as-GET has the empty string as its payload (not "{}")."""
        return self.payload == b""

    def payload_json(self) -> dict[str, Any]:
        """The payload as a JSON object, or :class:`JwsError` (malformed)."""
        value = _loads(self.payload, "JWS payload")
        if not isinstance(value, dict):
            raise JwsError("malformed", "JWS payload must be a JSON object (RFC 8555 §7)")
        return value


def parse_flattened_jws(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> ParsedJws:
    """Parse a request body that must be one JWS in flattened JSON serialization (RFC 8555 §6.2)."""
    if len(body) > max_bytes:
        raise JwsError("malformed", f"request body is {len(body)} bytes; at most {max_bytes} are accepted")
    value = _loads(body, "request body")
    if not isinstance(value, dict):
        raise JwsError("malformed", "request body must be a JWS as a JSON object (RFC 8555 §6.2)")
    return _flattened(value, "JWS")


def verify_request(
    body: bytes,
    *,
    url: str,
    account_key: Callable[[str], PublicKey | None],
    max_bytes: int = MAX_BODY_BYTES,
) -> VerifiedRequest:
    """Verify an ACME POST body sent to ``url``; ``account_key`` maps a "kid" (account URL) to its key."""
    parsed = parse_flattened_jws(body, max_bytes=max_bytes)
    header = parsed.header
    _refuse_extensions(header, "JWS protected header")
    alg = header.get("alg")
    if alg is None:
        raise JwsError("malformed", "JWS protected header has no 'alg' (RFC 7515 §4.1.1)")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        raise JwsError(
            "badSignatureAlgorithm",
            f"JWS alg {quoted(alg)} is not supported; allowed: {', '.join(SUPPORTED_ALGS)} (RFC 8555 §6.2)",
            algorithms=SUPPORTED_ALGS,
        )
    if ("jwk" in header) == ("kid" in header):
        raise JwsError("malformed", "JWS protected header must have exactly one of 'jwk' and 'kid' (RFC 8555 §6.2)")
    nonce = header.get("nonce")
    if nonce is None or nonce == "":
        raise JwsError("badNonce", "JWS protected header has no 'nonce' (RFC 8555 §6.5)")
    b64url_decode(nonce, "JWS header 'nonce'")  # RFC 8555 §6.5.2: not base64url -> malformed
    signed_url = _string(header, "url", "JWS protected header", "RFC 8555 §6.4.1")

    kid: str | None = None
    jwk: Mapping[str, Any] | None = None
    if "jwk" in header:
        key = key_from_jwk(header["jwk"])
        jwk = header["jwk"]
    else:
        kid = _string(header, "kid", "JWS protected header", "RFC 8555 §6.2")
        found = account_key(kid)
        if found is None:
            raise JwsError("accountDoesNotExist", f"no account has the JWS 'kid' {quoted(kid)} (RFC 8555 §6.2)")
        key = found
    _verify_signature(alg, key, parsed)
    # Checked after the signature, as Boulder does, so only an authentic request learns the expected URL.
    if signed_url != url:
        raise JwsError(
            "unauthorized", f"JWS header 'url' {quoted(signed_url)} is not the request URL {url!r} (RFC 8555 §6.4)"
        )
    return VerifiedRequest(
        alg=alg,
        nonce=nonce,
        url=signed_url,
        kid=kid,
        jwk=jwk,
        key=key,
        payload=parsed.payload,
        protected=header,
    )


def verify_eab(
    eab_jws: Mapping[str, Any],
    *,
    outer_jwk: Mapping[str, Any],
    url: str,
    hmac_key_for: Callable[[str], bytes | None],
) -> str:
    """Verify a newAccount "externalAccountBinding" (RFC 8555 §7.3.4) and return its "kid"."""
    where = "externalAccountBinding"
    if not isinstance(eab_jws, Mapping):
        raise JwsError("malformed", f"{where} must be a JWS as a JSON object (RFC 8555 §7.3.4)")
    parsed = _flattened(eab_jws, where)
    header = parsed.header
    _refuse_extensions(header, f"{where} protected header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _EAB_ALGS:
        raise JwsError("malformed", f"{where} alg {quoted(alg)} must be HS256, HS384 or HS512 (RFC 8555 §7.3.4)")
    if "nonce" in header:
        raise JwsError("malformed", f"{where} protected header must not have 'nonce' (RFC 8555 §7.3.4)")
    kid = _string(header, "kid", f"{where} protected header", "RFC 8555 §7.3.4")
    signed_url = _string(header, "url", f"{where} protected header", "RFC 8555 §7.3.4")
    if signed_url != url:
        raise JwsError(
            "unauthorized", f"{where} 'url' {quoted(signed_url)} is not the newAccount URL (RFC 8555 §7.3.4)"
        )
    mac_key = hmac_key_for(kid)
    if not mac_key:
        raise JwsError(
            "unauthorized", f"{where} kid {quoted(kid)} is not a key identifier of this CA (RFC 8555 §7.3.4)"
        )
    expected = hmac.new(mac_key, parsed.signing_input, _EAB_ALGS[alg]).digest()
    if not hmac.compare_digest(expected, parsed.signature):
        raise JwsError("unauthorized", f"{where} MAC does not verify with the key of its kid (RFC 8555 §7.3.4)")
    bound = _loads(parsed.payload, f"{where} payload")
    if bound != dict(outer_jwk):
        raise JwsError("unauthorized", f"{where} payload is not the JWK of the outer JWS (RFC 8555 §7.3.4)")
    return kid


# --- helpers ---------------------------------------------------------------------------------------------


def _loads(data: bytes, what: str) -> Any:
    """Strict JSON: UTF-8 (RFC 8259 §8.1), no duplicate member names (RFC 7515 §5.2 step 4), no NaN."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError("duplicate member name")
        return dict(pairs)

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JwsError("malformed", f"{what} is not valid JSON without duplicate names (RFC 8259)") from None


@dataclass(frozen=True)
class KeyChange:
    new_key: PublicKey
    new_jwk: Mapping[str, Any]
    account: str
    old_jwk: Mapping[str, Any]


def verify_key_change(inner: object, *, url: str) -> KeyChange:
    """RFC 8555 7.3.5: the inner JWS of a keyChange request, signed by the new key: a "jwk" header and no
    "kid", no "nonce", the same "url" as the outer JWS, and a payload naming the account and its old key."""
    if not isinstance(inner, dict):
        raise JwsError("malformed", "keyChange payload must be a JWS (RFC 8555 7.3.5)")
    parsed = _flattened(inner, "keyChange inner JWS")
    header = parsed.header
    _refuse_extensions(header, "keyChange inner JWS header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        raise JwsError(
            "badSignatureAlgorithm", f"inner JWS alg {quoted(alg)} is not supported", algorithms=SUPPORTED_ALGS
        )
    if "jwk" not in header or "kid" in header:
        raise JwsError("malformed", "the inner JWS carries the new key as 'jwk' and no 'kid' (RFC 8555 7.3.5)")
    if "nonce" in header:
        raise JwsError("malformed", "the inner JWS must not carry a 'nonce' (RFC 8555 7.3.5)")
    new_key = key_from_jwk(header["jwk"])
    _verify_signature(alg, new_key, parsed)
    if _string(header, "url", "keyChange inner JWS header", "RFC 8555 7.3.5") != url:
        raise JwsError("malformed", "the inner JWS 'url' differs from the outer one (RFC 8555 7.3.5)")
    payload = _loads(parsed.payload, "keyChange inner payload")
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("account"), str)
        or not isinstance(payload.get("oldKey"), dict)
    ):
        raise JwsError("malformed", "the inner payload needs 'account' and 'oldKey' (RFC 8555 7.3.5)")
    return KeyChange(new_key, header["jwk"], payload["account"], payload["oldKey"])


def _flattened(value: Mapping[str, Any], where: str) -> ParsedJws:
    """RFC 8555 §6.2: flattened JSON serialization (RFC 7515 §7.2.2) with no unprotected header."""
    if "signatures" in value:
        raise JwsError(
            "malformed", f"{where} must use the flattened JSON serialization, not 'signatures' (RFC 8555 §6.2)"
        )
    if "header" in value:
        raise JwsError("malformed", f"{where} must not have an unprotected 'header' (RFC 8555 §6.2)")
    if sorted(value) != list(_MEMBERS):
        raise JwsError("malformed", f"{where} must have exactly the members {list(_MEMBERS)} (RFC 8555 §6.2)")
    protected = b64url_decode(value["protected"], f"{where} 'protected'")
    header = _loads(protected, f"{where} protected header")
    if not isinstance(header, dict):
        raise JwsError("malformed", f"{where} protected header must be a JSON object (RFC 7515 §4)")
    payload = b64url_decode(value["payload"], f"{where} 'payload'")
    signature = b64url_decode(value["signature"], f"{where} 'signature'")
    return ParsedJws(value["protected"], value["payload"], header, payload, signature)


def _refuse_extensions(header: Mapping[str, Any], where: str) -> None:
    if "crit" in header:  # RFC 7515 §4.1.11: we understand no extension, so any "crit" must be refused
        raise JwsError("malformed", f"{where} must not have 'crit' (RFC 7515 §4.1.11)")
    if "b64" in header and header["b64"] is not True:  # RFC 7797 §3: an unencoded payload is not ACME
        raise JwsError("malformed", f"{where} 'b64' must not be false (RFC 7797 §3, RFC 8555 §6.2)")


def _string(header: Mapping[str, Any], name: str, where: str, rule: str) -> str:
    value = header.get(name)
    if not isinstance(value, str) or not value:
        raise JwsError("malformed", f"{where} needs a non-empty string '{name}' ({rule})")
    return value


def _verify_signature(alg: str, key: PublicKey, parsed: ParsedJws) -> None:
    """RFC 7515 §5.2 step 8 with the algorithms of RFC 7518 §3.3, §3.4 and RFC 8037 §3.1."""
    message, signature = parsed.signing_input, parsed.signature
    # Boulder (wfe2/verify.go) answers a bad signature with malformed; RFC 8555 §6.7 names no better type.
    failed = JwsError("malformed", "JWS signature does not verify")
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            return
        if alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _EC_ALGS[alg][0]:
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:  # RFC 7518 §3.4: R || S, each exactly the coordinate length
                raise JwsError("malformed", f"JWS signature does not verify: {alg} needs {2 * size} octets R || S")
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(_EC_ALGS[alg][1]()))
            return
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, message)
            return
    except InvalidSignature:
        raise failed from None
    raise JwsError(
        "badSignatureAlgorithm",
        f"JWS alg {alg} does not fit the {_describe(key)} key (RFC 7518 §3.1, RFC 8037 §3.1)",
        algorithms=SUPPORTED_ALGS,
    )


def _describe(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
