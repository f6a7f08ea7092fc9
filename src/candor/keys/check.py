"""Prove that a stored key is usable and is the key the database says it is."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from candor.errors import CandorError, ErrorKind
from candor.keys.base import KeyBackend
from candor.policy.algorithms import KeyAlgorithm

_PROBE = b"candor key check: this signature proves the key can sign and matches its record"


def check_key(store: KeyBackend, *, handle: str, algorithm: KeyAlgorithm, public_key_der: bytes, label: str) -> None:
    """Sign a fixed probe with the key at *handle* and verify it with the recorded public key.

    A wrong passphrase or PIN, a missing key, or a key that is not the recorded one fails with
    ``ErrorKind.KEY`` and one line naming the key.
    """
    key = store.load(handle, algorithm)
    recorded = serialization.load_der_public_key(public_key_der)
    hash_algorithm = algorithm.signature_hash()
    try:
        if isinstance(key, rsa.RSAPrivateKey) and isinstance(recorded, rsa.RSAPublicKey):
            recorded.verify(
                key.sign(_PROBE, padding.PKCS1v15(), hash_algorithm), _PROBE, padding.PKCS1v15(), hash_algorithm
            )
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(recorded, ec.EllipticCurvePublicKey):
            recorded.verify(key.sign(_PROBE, ec.ECDSA(hash_algorithm)), _PROBE, ec.ECDSA(hash_algorithm))
        else:
            raise InvalidSignature
    except InvalidSignature:
        raise CandorError(
            ErrorKind.KEY, f"key {label!r} in store {store.name!r} does not match its recorded public key"
        ) from None
