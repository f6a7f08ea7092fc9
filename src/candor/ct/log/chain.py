"""What a log accepts: the chain checks of RFC 6962 3.1 and 4.1/4.2, turned into a log entry.

A submitted chain must lead, signature by signature, to one of the log's accepted roots (the root may be
left off the submission; the log then adds it to the stored chain, RFC 6962 4.6). add-pre-chain takes only
a precertificate (critical poison extension, 3.1), add-chain only a certificate without it. Validity dates
and revocation are not checked (3.1: logs MAY accept expired, not yet valid or revoked certificates). A
precertificate issued by a Precertificate Signing Certificate (the CT EKU, 3.1) is refused: static-ct-api
v1.1.0 lets a log decline them, and Candor's CA signs precertificates with the issuing key itself (BR 7.1.2.4).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID

from candor.ct.log.tls import EntryType, SignedEntry
from candor.profiles.der import DERError, remove_extensions

POISON_OID = ExtensionOID.PRECERT_POISON  # 1.3.6.1.4.1.11129.2.4.3
PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")  # RFC 6962 3.1
MAX_CHAIN_LENGTH = 10
_VERIFIED_LINKS_CAP = 4096


class SubmissionError(ValueError):
    """A chain the log refuses: answered with HTTP 400 (RFC 6962 4) and the message."""


@dataclass(frozen=True)
class Submission:
    """An accepted chain, ready to be logged."""

    entry: SignedEntry
    identity: bytes  # SHA-256 over entry_type || signed_entry: equal for a resubmission of the same thing
    precertificate: bytes | None  # the submitted precertificate (precert entries)
    chain: tuple[bytes, ...]  # the issuers, leaf excluded, ending at an accepted root


def fingerprint(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


def load_roots(paths: Iterable[Path]) -> list[x509.Certificate]:
    """The certificates in PEM files (bundles allowed), for a log's accepted roots."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise ValueError(f"accepted roots {path}: {exc}") from None
    if not roots:
        raise ValueError("a CT log needs at least one accepted root")
    return roots


class ChainChecker:
    """Checks submissions against a fixed set of roots. Thread-safe.

    Issuer-to-issuer links that verified once are remembered (by the pair's fingerprints), so a busy log
    verifies one signature per submission: the leaf's.
    """

    def __init__(self, roots: Sequence[x509.Certificate]) -> None:
        self.roots = tuple(roots)
        self.root_ders = tuple(root.public_bytes(Encoding.DER) for root in roots)
        self._root_fingerprints = {fingerprint(der) for der in self.root_ders}
        self._roots_by_subject: dict[bytes, list[x509.Certificate]] = {}
        for root in self.roots:
            self._roots_by_subject.setdefault(root.subject.public_bytes(), []).append(root)
        self._verified: dict[tuple[bytes, bytes], None] = {}
        self._lock = threading.Lock()

    def check(self, ders: Sequence[bytes], *, precertificate: bool) -> Submission:
        """RFC 6962 4.1 (add-chain) / 4.2 (add-pre-chain): the entry for *ders*, or :class:`SubmissionError`."""
        if not ders:
            raise SubmissionError("the chain is empty")
        if len(ders) > MAX_CHAIN_LENGTH:
            raise SubmissionError(f"the chain has more than {MAX_CHAIN_LENGTH} certificates")
        certificates = [_parse(der, position) for position, der in enumerate(ders)]
        leaf = certificates[0]
        poison = _extension(leaf, POISON_OID)
        if precertificate and poison is None:
            raise SubmissionError("add-pre-chain takes a precertificate: the first certificate has no poison extension")
        if precertificate and poison is not None and not poison.critical:
            raise SubmissionError("the precertificate's poison extension must be critical (RFC 6962 3.1)")
        if not precertificate and poison is not None:
            raise SubmissionError("add-chain takes a certificate: the first certificate is a precertificate")
        chain = self._verify_path(certificates, ders)
        if len(certificates) > 1:
            issuer = certificates[1]
        else:  # the leaf alone: issued by the root the log added, or itself an accepted root
            issuer = x509.load_der_x509_certificate(chain[-1]) if chain else leaf
        entry = _precert_entry(leaf, issuer) if precertificate else SignedEntry(EntryType.X509, certificate=ders[0])
        identity = hashlib.sha256(entry.entry_type.to_bytes(2, "big") + entry.encode()).digest()
        return Submission(entry, identity, ders[0] if precertificate else None, chain)

    def _verify_path(self, certificates: list[x509.Certificate], ders: Sequence[bytes]) -> tuple[bytes, ...]:
        for position in range(len(certificates) - 1):
            child, parent = certificates[position], certificates[position + 1]
            _require_ca(parent, position + 1)
            self._link(child, parent, ders[position], ders[position + 1], position)
        last, last_der = certificates[-1], ders[-1]
        if fingerprint(last_der) in self._root_fingerprints:
            return tuple(ders[1:])
        for root in self._roots_by_subject.get(last.issuer.public_bytes(), []):
            root_der = root.public_bytes(Encoding.DER)
            try:
                self._link(last, root, last_der, root_der, len(certificates) - 1)
            except SubmissionError:
                continue
            return (*ders[1:], root_der)
        raise SubmissionError("the chain does not lead to a root this log accepts")

    def _link(self, child: x509.Certificate, parent: x509.Certificate, child_der: bytes, parent_der: bytes,
              position: int) -> None:  # fmt: skip
        key = (fingerprint(child_der), fingerprint(parent_der))
        if position > 0:
            with self._lock:
                if key in self._verified:
                    return
        try:
            child.verify_directly_issued_by(parent)
        except Exception:  # InvalidSignature, ValueError (names differ), TypeError (unsupported key or algorithm)
            raise SubmissionError(
                f"certificate {position} is not signed by the certificate after it in the chain"
            ) from None
        if position > 0:
            with self._lock:
                if len(self._verified) >= _VERIFIED_LINKS_CAP:
                    self._verified.clear()
                self._verified[key] = None


def _parse(der: bytes, position: int) -> x509.Certificate:
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = certificate.extensions  # parsed lazily: malformed extensions must fail here, as a bad submission
        _ = certificate.public_key()
    except Exception:  # any parse failure of submitted bytes is the submitter's error
        raise SubmissionError(f"certificate {position} is not a DER X.509 certificate Candor can parse") from None
    return certificate


def _extension(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def _require_ca(certificate: x509.Certificate, position: int) -> None:
    constraints = _extension(certificate, ExtensionOID.BASIC_CONSTRAINTS)
    if constraints is None or not isinstance(constraints.value, x509.BasicConstraints) or not constraints.value.ca:
        raise SubmissionError(f"certificate {position} issues the one before it but is not a CA certificate")


def _precert_entry(precert: x509.Certificate, issuer: x509.Certificate) -> SignedEntry:
    """RFC 6962 3.2 PreCert: SHA-256 of the issuer's SPKI, and the TBSCertificate without the poison."""
    eku = _extension(issuer, ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is not None and isinstance(eku.value, x509.ExtendedKeyUsage) and PRECERT_SIGNING_EKU in eku.value:
        raise SubmissionError(
            "precertificates signed by a Precertificate Signing Certificate are not accepted by this log "
            "(static-ct-api v1.1.0); sign the precertificate with the issuing CA's key"
        )
    try:
        tbs = remove_extensions(precert.tbs_certificate_bytes, {POISON_OID.dotted_string})
    except DERError:
        raise SubmissionError("the precertificate's TBSCertificate cannot be read") from None
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return SignedEntry(EntryType.PRECERT, issuer_key_hash=hashlib.sha256(spki).digest(), tbs_certificate=tbs)
