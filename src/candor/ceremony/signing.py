"""Sign a CA-side certificate exactly as it was linted.

The template is first signed with a throwaway key of the same algorithm (so the signatureAlgorithm field
is identical), linted with pkilint, and only then signed by the real key. The two TBSCertificates are
compared byte for byte, and the real signature is verified with the issuer's public key before the
certificate is returned: a token that signs garbage is caught here, not by a relying party.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from candor.errors import CandorError, ErrorKind
from candor.keys.file import generate_private_key
from candor.lint import CertificateKind, LintReport, require_clean
from candor.policy import CAPrivateKey, CAPublicKey, KeyAlgorithm
from candor.profiles import CertificateTemplate, to_builder


@functools.cache
def _throwaway(algorithm: KeyAlgorithm) -> CAPrivateKey:
    return generate_private_key(algorithm)


def verify_signature(certificate: x509.Certificate, issuer_key: CAPublicKey) -> None:
    """Check *certificate*'s signature with *issuer_key* (PKCS#1 v1.5 or ECDSA, as Candor signs)."""
    hash_algorithm = certificate.signature_hash_algorithm
    if hash_algorithm is None:
        raise CandorError(ErrorKind.INTERNAL, "certificate signature has no hash algorithm")
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey):
            issuer_key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm
            )
        else:
            issuer_key.verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
    except InvalidSignature:
        raise CandorError(ErrorKind.KEY, "the key store produced a signature that does not verify") from None


def sign_linted(
    template: CertificateTemplate,
    *,
    signer: CAPrivateKey,
    signer_algorithm: KeyAlgorithm,
    kind: CertificateKind,
    what: str,
    allow_local_urls: bool,
) -> tuple[x509.Certificate, LintReport, str]:
    """Return (certificate, lint report, SHA-256 of the linted TBS)."""
    builder = to_builder(template)
    hash_algorithm = signer_algorithm.signature_hash()
    draft = builder.sign(_throwaway(signer_algorithm), hash_algorithm)
    report = require_clean(draft.public_bytes(Encoding.DER), kind, what=what, allow_local_urls=allow_local_urls)
    certificate = builder.sign(signer, hash_algorithm)
    if certificate.tbs_certificate_bytes != draft.tbs_certificate_bytes:
        raise CandorError(ErrorKind.INTERNAL, f"{what}: the signed TBSCertificate differs from the linted one")
    verify_signature(certificate, signer.public_key())
    return certificate, report, hashlib.sha256(draft.tbs_certificate_bytes).hexdigest()


def verify_crl_signature(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    public_key = issuer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or not crl.is_signature_valid(
        public_key
    ):
        raise CandorError(ErrorKind.KEY, "the key store produced a CRL signature that does not verify")
