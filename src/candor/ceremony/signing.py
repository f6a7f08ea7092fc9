"""Checks on what the ceremony's keys sign."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from candor.errors import CandorError, ErrorKind


def verify_crl_signature(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    public_key = issuer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or not crl.is_signature_valid(
        public_key
    ):
        raise CandorError(ErrorKind.KEY, "the key store produced a CRL signature that does not verify")
