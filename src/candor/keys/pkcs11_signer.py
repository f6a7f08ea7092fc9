"""Signing objects for keys that live on a PKCS#11 token.

:class:`TokenSession` is the one logged-in R/W session a process holds on a token, with the lock that
serialises every call on it (python-pkcs11 sessions are not thread-safe). :class:`Pkcs11RSAPrivateKey` and
:class:`Pkcs11ECPrivateKey` are cryptography private keys whose ``sign()`` runs on the token, so certificate,
CRL and OCSP builders can use them unchanged; everything that would export the private key refuses.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding, PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed, encode_dss_signature
from cryptography.utils import Buffer
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.exceptions import PKCS11Error

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPublicKey

T = TypeVar("T")

_ERRORS: dict[type[PKCS11Error], str] = {
    pkcs11.exceptions.PinIncorrect: "PIN rejected",
    pkcs11.exceptions.PinInvalid: "PIN rejected",
    pkcs11.exceptions.PinLenRange: "PIN rejected",
    pkcs11.exceptions.PinLocked: "PIN locked (too many wrong attempts; the security officer must reset it)",
    pkcs11.exceptions.PinExpired: "PIN expired",
    pkcs11.exceptions.UserPinNotInitialized: "user PIN not initialised",
    pkcs11.exceptions.UserNotLoggedIn: "not logged in",
    pkcs11.exceptions.UserAlreadyLoggedIn: "already logged in by another session of this process",
    pkcs11.exceptions.AnotherUserAlreadyLoggedIn: "another user is logged in",
    pkcs11.exceptions.TokenNotPresent: "token not present",
    pkcs11.exceptions.DeviceRemoved: "token removed",
    pkcs11.exceptions.SessionClosed: "session closed",
    pkcs11.exceptions.SessionHandleInvalid: "session closed",
    pkcs11.exceptions.ObjectHandleInvalid: "key object no longer exists",
    pkcs11.exceptions.KeyHandleInvalid: "key object no longer exists",
    pkcs11.exceptions.MechanismInvalid: "mechanism not supported by the token",
    pkcs11.exceptions.DeviceMemory: "token is out of memory",
    pkcs11.exceptions.TokenWriteProtected: "token is write-protected",
}

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1) for CKM_RSA_PKCS over a precomputed hash.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# DER encodings of the namedCurve OIDs in CKA_EC_PARAMS.
_EC_PARAMS: dict[bytes, ec.EllipticCurve] = {
    bytes.fromhex("06082a8648ce3d030107"): ec.SECP256R1(),
    bytes.fromhex("06052b81040022"): ec.SECP384R1(),
}


def ec_params_for(curve: ec.EllipticCurve) -> bytes:
    """CKA_EC_PARAMS for a named curve Candor allows."""
    for params, known in _EC_PARAMS.items():
        if known.name == curve.name:
            return params
    raise CandorError(ErrorKind.KEY, f"curve {curve.name} is not supported on PKCS#11 tokens")


def translate(exc: PKCS11Error, token_label: str, action: str) -> CandorError:
    """A one-line KEY error for a python-pkcs11 exception; never its (possibly multi-line) text."""
    what = _ERRORS.get(type(exc)) or f"{action} failed ({type(exc).__name__})"
    return CandorError(ErrorKind.KEY, f"PKCS#11 token {token_label!r}: {what}")


class TokenSession:
    """One logged-in R/W session on a token, shared by every backend of this process that opened it."""

    def __init__(self, session: Any, token_label: str, module: str) -> None:
        self.session = session
        self.token_label = token_label
        self.module = module
        self.lock = threading.Lock()
        self.closed = False

    def error(self, message: str) -> CandorError:
        return CandorError(ErrorKind.KEY, f"PKCS#11 token {self.token_label!r}: {message}")

    def call(self, action: str, operation: Callable[[Any], T]) -> T:
        """Run *operation(session)* under the lock, turning PKCS#11 failures into one-line errors."""
        with self.lock:
            if self.closed:
                raise self.error("session closed")
            try:
                return operation(self.session)
            except PKCS11Error as exc:
                raise translate(exc, self.token_label, action) from None

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            # If the token went away or logged out already, there is nothing more to release.
            with contextlib.suppress(PKCS11Error):
                self.session.close()


def _strip_octet_string(value: bytes, point_length: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; a few tokens return the bare point."""
    if len(value) == point_length and value[0] == 0x04:
        return value
    if len(value) >= 2 and value[0] == 0x04:
        length, offset = value[1], 2
        if length == 0x81 and len(value) >= 3:
            length, offset = value[2], 3
        if offset + length == len(value):
            return value[offset:]
    raise ValueError("CKA_EC_POINT is not a DER OCTET STRING")


def public_key_from_token(private: Any, public: Any | None) -> CAPublicKey:
    """Build the public key from the token's public attributes (never from the private object's secrets)."""
    key_type = private[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        source = public if public is not None else private  # RSA private objects carry n and e too
        modulus = int.from_bytes(source[Attribute.MODULUS], "big")
        exponent = int.from_bytes(source[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if key_type == KeyType.EC:
        if public is None:
            raise ValueError("the EC public key object is missing")
        curve = _EC_PARAMS.get(bytes(public[Attribute.EC_PARAMS]))
        if curve is None:
            raise ValueError("its curve is not P-256 or P-384")
        point_length = 1 + 2 * ((curve.key_size + 7) // 8)
        point = _strip_octet_string(bytes(public[Attribute.EC_POINT]), point_length)
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    raise ValueError(f"key type {key_type!r} is neither RSA nor EC")


def _hash_name(algorithm: hashes.HashAlgorithm) -> str:
    if algorithm.name not in _DIGEST_INFO:
        raise CandorError(
            ErrorKind.KEY,
            f"hash {algorithm.name} is not allowed for token signatures (sha256, sha384, sha512)",
        )
    return algorithm.name


def _digest(data: bytes, algorithm: Prehashed | hashes.HashAlgorithm) -> bytes:
    if isinstance(algorithm, Prehashed):
        _hash_name(algorithm._algorithm)
        if len(data) != algorithm.digest_size:
            raise CandorError(ErrorKind.KEY, "prehashed data does not match the digest size")
        return data
    _hash_name(algorithm)
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


class _TokenKey:
    """What both key classes share: the token object, its session, and refusing to export."""

    def __init__(self, session: TokenSession, private: Any, public: CAPublicKey, handle: str) -> None:
        self._session = session
        self._private = private
        self._public = public
        self.handle = handle

    def _sign_on_token(self, data: bytes, mechanism: Mechanism) -> bytes:
        key = self._private
        result: bytes = self._session.call("signing", lambda _: key.sign(data, mechanism=mechanism))
        return result

    def _refuse(self) -> NoReturn:
        raise self._session.error("private key material never leaves the token")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.handle} on {self._session.token_label!r}>"


class Pkcs11RSAPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on a token: PKCS#1 v1.5 signatures with SHA-256/384/512; nothing else."""

    def sign(
        self,
        data: Buffer,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding, PKCS1v15):
            raise self._session.error(f"RSA padding {padding.name} is not supported (only PKCS#1 v1.5)")
        if isinstance(algorithm, NoDigestInfo):
            raise self._session.error("RSA signatures without DigestInfo are not supported")
        if isinstance(algorithm, Prehashed):
            digest = _digest(bytes(data), algorithm)
            digest_info = _DIGEST_INFO[algorithm._algorithm.name] + digest
            return self._sign_on_token(digest_info, Mechanism.RSA_PKCS)
        return self._sign_on_token(bytes(data), _RSA_MECHANISMS[_hash_name(algorithm)])

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        assert isinstance(self._public, rsa.RSAPublicKey)
        return self._public

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> NoReturn:
        self._refuse()

    def private_numbers(self) -> NoReturn:
        self._refuse()

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> NoReturn:
        self._refuse()

    def __copy__(self) -> Pkcs11RSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Pkcs11RSAPrivateKey:
        return self


class Pkcs11ECPrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC key on a token: the hash is computed here, CKM_ECDSA signs it, and r||s becomes DER."""

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise self._session.error("EC keys on the token sign with ECDSA only")
        if signature_algorithm.deterministic_signing:
            raise self._session.error("deterministic ECDSA (RFC 6979) is not supported")
        raw = self._sign_on_token(_digest(bytes(data), signature_algorithm.algorithm), Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    @property
    def curve(self) -> ec.EllipticCurve:
        return self.public_key().curve

    @property
    def key_size(self) -> int:
        return self.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        assert isinstance(self._public, ec.EllipticCurvePublicKey)
        return self._public

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        self._refuse()

    def private_numbers(self) -> NoReturn:
        self._refuse()

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> NoReturn:
        self._refuse()

    def __copy__(self) -> Pkcs11ECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Pkcs11ECPrivateKey:
        return self
