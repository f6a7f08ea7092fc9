"""The log's signing key, as the log sees it: something that signs bytes with ECDSA P-256 / SHA-256.

The log never handles key material: :func:`candor.ct.log.keys.log_signer` builds a :class:`LogSigner` from
the configured key stores (a file key or a PKCS#11 token), and tests pass a key of their own. SCTs (RFC 6962
3.2) and tree heads (3.5) are both ``digitally-signed`` with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from candor.ct.log import tls
from candor.ct.log.tls import SignedEntry


class LogSigner(Protocol):
    @property
    def public_key_der(self) -> bytes:
        """The log's SubjectPublicKeyInfo, DER."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A DER ECDSA P-256 signature over SHA-256(*data*)."""
        ...


class EcdsaSigner:
    """A LogSigner over any object with cryptography's EllipticCurvePrivateKey interface (file or PKCS#11)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("RFC 6962 2.1.4: a log signs with ECDSA on NIST P-256 (or RSA); Candor uses P-256")
        self._key = key
        self._spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_key_der(self) -> bytes:
        return self._spki

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def log_id(signer: LogSigner) -> bytes:
    """RFC 6962 3.2: LogID = SHA-256 of the log's public key (SubjectPublicKeyInfo DER)."""
    return hashlib.sha256(signer.public_key_der).digest()


@dataclass(frozen=True)
class SignedTreeHead:
    """RFC 6962 3.5 / 4.3: a tree head and the log's signature over it."""

    tree_size: int
    timestamp: int  # ms since the epoch
    root_hash: bytes
    signature: bytes  # DER ECDSA

    def tree_head_signature(self) -> bytes:
        return tls.digitally_signed(self.signature)

    def to_json(self) -> dict[str, object]:
        from base64 import b64encode

        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "sha256_root_hash": b64encode(self.root_hash).decode(),
            "tree_head_signature": b64encode(self.tree_head_signature()).decode(),
        }


def sign_tree_head(signer: LogSigner, tree_size: int, timestamp: int, root_hash: bytes) -> SignedTreeHead:
    signature = signer.sign(tls.sth_signature_input(timestamp, tree_size, root_hash))
    return SignedTreeHead(tree_size, timestamp, root_hash, signature)


def sign_sct(signer: LogSigner, timestamp: int, entry: SignedEntry, extensions: bytes) -> bytes:
    return signer.sign(tls.sct_signature_input(timestamp, entry, extensions))


def verify_signature(public_key_der: bytes, signature: bytes, data: bytes) -> None:
    """Raise ``cryptography.exceptions.InvalidSignature`` unless *signature* is the log key's over *data*."""
    key = load_der_public_key(public_key_der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError("not an ECDSA public key")
    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
