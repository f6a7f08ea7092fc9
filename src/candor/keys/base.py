"""The interface every key backend implements.

A backend generates CA keys inside its store and hands back objects that implement cryptography's
private-key interface (``RSAPrivateKey`` / ``EllipticCurvePrivateKey``), so that certificate, CRL and OCSP
builders sign through the store without knowing which one it is. For a PKCS#11 token the private key never
leaves the token; for the file backend it lives encrypted at rest and is decrypted only in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from candor.policy.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm


@dataclass(frozen=True)
class GeneratedKey:
    """What a backend returns for a new key: how to find it again, and its public half."""

    handle: str  # backend-specific reference: a file name, or a PKCS#11 CKA_ID in hex
    algorithm: KeyAlgorithm
    public_key: CAPublicKey


@dataclass(frozen=True)
class KeyProtection:
    """How a stored private key is protected, as the store itself reports it."""

    location: str  # e.g. "file keys/root-x1.key (PKCS#8, scrypt/AES-256-CBC)" or "PKCS#11 token 'candor-root'"
    extractable: bool
    sensitive: bool
    encrypted_at_rest: bool


class KeyBackend(Protocol):
    """A named key store (one directory of encrypted files, or one PKCS#11 token)."""

    backend_type: ClassVar[str]  # "file" or "pkcs11"

    @property
    def name(self) -> str:
        """The store's name in the configuration."""
        ...

    def generate(self, label: str, algorithm: KeyAlgorithm) -> GeneratedKey:
        """Create a new key pair called *label*; refuse if a key with that label exists."""
        ...

    def load(self, handle: str, algorithm: KeyAlgorithm) -> CAPrivateKey:
        """A signing object for the key at *handle*; fails with ``ErrorKind.KEY`` if it cannot be used."""
        ...

    def protection(self, handle: str) -> KeyProtection:
        """Report how the key at *handle* is protected."""
        ...

    def close(self) -> None:
        """Release sessions and handles."""
        ...
