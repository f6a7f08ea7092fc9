"""Key algorithms a CA key may use, and the signature hash that goes with each.

BR 6.1.5 allows RSA keys of at least 2048 bits (modulus divisible by 8) and ECDSA keys on P-256, P-384 and
P-521. For CA keys Candor offers the sizes HSMs commonly generate; BR 7.1.3.2 fixes the hash paired with each
key (P-256 with SHA-256, P-384 with SHA-384; RSA PKCS#1 v1.5 with SHA-256 here). Anything else, such as
RSA-1024, secp256k1, brainpool, SM2, Ed25519 or DSA, is refused by name.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from candor.errors import CandorError, ErrorKind

CAPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CAPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyAlgorithm(StrEnum):
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa-")

    @property
    def rsa_bits(self) -> int:
        if not self.is_rsa:
            raise ValueError(f"{self.value} is not an RSA algorithm")
        return int(self.value.removeprefix("rsa-"))

    @property
    def curve(self) -> ec.EllipticCurve:
        if self is KeyAlgorithm.ECDSA_P256:
            return ec.SECP256R1()
        if self is KeyAlgorithm.ECDSA_P384:
            return ec.SECP384R1()
        raise ValueError(f"{self.value} is not an ECDSA algorithm")

    @property
    def curve_name(self) -> str:
        """The curve's name as OpenSSL and PKCS#11 helpers spell it."""
        return self.curve.name

    def signature_hash(self) -> hashes.SHA256 | hashes.SHA384:
        """BR 7.1.3.2.1/7.1.3.2.2: the only hash this key signs certificates, CRLs and OCSP responses with."""
        if self is KeyAlgorithm.ECDSA_P384:
            return hashes.SHA384()
        return hashes.SHA256()


ALLOWED = ", ".join(a.value for a in KeyAlgorithm)


def parse_key_algorithm(value: str) -> KeyAlgorithm:
    """Parse an algorithm name from configuration; refuse anything outside :class:`KeyAlgorithm`."""
    try:
        return KeyAlgorithm(value.strip().lower())
    except ValueError:
        raise CandorError(
            ErrorKind.CONFIG, f"key algorithm {value!r} is not allowed for a CA key (allowed: {ALLOWED})"
        ) from None


def algorithm_of(public_key: object) -> KeyAlgorithm:
    """The :class:`KeyAlgorithm` of a public key, or a policy error naming what it is."""
    if isinstance(public_key, rsa.RSAPublicKey):
        try:
            return KeyAlgorithm(f"rsa-{public_key.key_size}")
        except ValueError:
            pass
        described = f"RSA-{public_key.key_size}"
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        for algorithm in (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384):
            if public_key.curve.name == algorithm.curve_name:
                return algorithm
        described = f"ECDSA on {public_key.curve.name}"
    else:
        described = type(public_key).__name__
    raise CandorError(ErrorKind.POLICY, f"{described} is not an allowed CA key (allowed: {ALLOWED})")
