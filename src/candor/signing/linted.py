"""Sign exactly what was linted.

``prepare()`` turns a template into a TBSCertificate by signing it with a throwaway key of the issuer's
algorithm (so the signature AlgorithmIdentifier inside the TBS is the real one), lints that certificate
with pkilint, and returns the TBS bytes as a single-use :class:`SigningToken`. ``sign()`` signs those stored
bytes with the CA key: there is no second template rendering that could differ from what was linted.
(Boulder's issuance package does the same: "issuance token already redeemed".)

A final certificate's TBS is not linted a second time: ``corresponding_final()`` admits it only if it
corresponds to the linted precertificate's TBS as RFC 6962 describes, the technical control BR 4.3.1.2
accepts in place of that lint (docs/performance.md gives the argument).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from candor.errors import CandorError, ErrorKind
from candor.keys.file import generate_private_key
from candor.lint import CertificateKind, LintReport, require_clean
from candor.policy.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm
from candor.profiles import CertificateTemplate, to_builder
from candor.signing.der import assemble_certificate, require_correspondence
from candor.signing.lint_process import HELPERS, LintPool


@functools.cache
def _throwaway(algorithm: KeyAlgorithm) -> CAPrivateKey:
    return generate_private_key(algorithm)


@dataclass
class SigningToken:
    """A linted TBSCertificate, good for one signature."""

    tbs: bytes
    algorithm: KeyAlgorithm
    report: LintReport | None
    _redeemed: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tbs_sha256(self) -> str:
        return hashlib.sha256(self.tbs).hexdigest()

    def redeem(self) -> bytes:
        with self._lock:
            if self._redeemed:
                raise CandorError(ErrorKind.INTERNAL, "signing token already redeemed")
            self._redeemed = True
        return self.tbs


def prepare(
    template: CertificateTemplate,
    *,
    algorithm: KeyAlgorithm,
    kind: CertificateKind,
    what: str,
    allow_local_urls: bool = False,
) -> SigningToken:
    """Render and lint *template*; refuse (``ErrorKind.LINT``) on any pkilint error or if pkilint cannot run."""
    draft = to_builder(template).sign(_throwaway(algorithm), algorithm.signature_hash())
    report = _lint(draft.public_bytes(Encoding.DER), kind, what=what, allow_local_urls=allow_local_urls)
    return SigningToken(tbs=draft.tbs_certificate_bytes, algorithm=algorithm, report=report)


def prepare_tbs(
    tbs: bytes, *, algorithm: KeyAlgorithm, kind: CertificateKind, what: str, allow_local_urls: bool = False
) -> SigningToken:
    """Lint a TBSCertificate built at the DER level (a final certificate from its precertificate)."""
    draft = x509.load_der_x509_certificate(assemble_certificate(tbs, _raw_sign(tbs, _throwaway(algorithm), algorithm)))
    report = _lint(draft.public_bytes(Encoding.DER), kind, what=what, allow_local_urls=allow_local_urls)
    return SigningToken(tbs=tbs, algorithm=algorithm, report=report)


_helper: LintPool | None = None


def lint_in_helper_process(
    enabled: bool = True, *, helpers: int = HELPERS, warm: Sequence[CertificateKind] = ()
) -> None:
    """From now on this process lints in helper processes (:mod:`.lint_process`): ``candor serve`` asks for this
    so that pkilint's CPU runs beside its requests instead of under their GIL, in *helpers* processes. Off: in
    this process again. With
    *warm*, the helpers start now and build those kinds' validators in the background (a serving process: its
    first orders then do not wait ~2 s for a helper's start)."""
    global _helper
    previous, _helper = _helper, (LintPool(helpers) if enabled else None)
    if previous is not None:
        previous.close()
    if _helper is not None and warm:
        _helper.warm(warm)


def _lint(der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool) -> LintReport:
    helper = _helper
    if helper is not None:
        return helper.require_clean(der, kind, what=what, allow_local_urls=allow_local_urls)
    return require_clean(der, kind, what=what, allow_local_urls=allow_local_urls)


def corresponding_final(
    precert_tbs: bytes, final_tbs: bytes, sct_list: bytes | None, *, algorithm: KeyAlgorithm
) -> SigningToken:
    """A token for a final certificate's TBS whose precertificate TBS was linted (BR 4.3.1.2): refused
    (``ErrorKind.INTERNAL``) unless it corresponds byte for byte, poison and SCT list aside (RFC 6962)."""
    require_correspondence(precert_tbs, final_tbs, sct_list)
    return SigningToken(tbs=final_tbs, algorithm=algorithm, report=None)


def _raw_sign(tbs: bytes, key: CAPrivateKey, algorithm: KeyAlgorithm) -> bytes:
    hash_algorithm = algorithm.signature_hash()
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(tbs, padding.PKCS1v15(), hash_algorithm)
    return key.sign(tbs, ec.ECDSA(hash_algorithm))


def token_for_stored_tbs(tbs: bytes, algorithm: KeyAlgorithm) -> SigningToken:
    """A token for a TBS that was linted and stored earlier (resuming after a crash)."""
    return SigningToken(tbs=tbs, algorithm=algorithm, report=None)


def sign(token: SigningToken, key: CAPrivateKey, *, issuer_key: CAPublicKey) -> x509.Certificate:
    """Sign the token's TBS with *key*, assemble the certificate, and verify the signature with the issuer's
    recorded public key (*issuer_key*, from its certificate): a key store that hands back the wrong key, or
    signs garbage, is caught here and nothing is returned."""
    tbs = token.redeem()
    signature = _raw_sign(tbs, key, token.algorithm)
    certificate = x509.load_der_x509_certificate(assemble_certificate(tbs, signature))
    if certificate.tbs_certificate_bytes != tbs:
        raise CandorError(ErrorKind.INTERNAL, "the assembled certificate does not carry the linted TBS")
    verify_signature(certificate, issuer_key)
    return certificate


def verify_signature(certificate: x509.Certificate, issuer_key: CAPublicKey) -> None:
    """Check *certificate*'s signature with *issuer_key*: a key store that signs garbage is caught here."""
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
