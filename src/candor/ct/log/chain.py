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
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID

from candor.ct.log.tls import EntryType, SignedEntry
from candor.profiles.der import DERError, remove_extensions

POISON_OID = ExtensionOID.PRECERT_POISON  # 1.3.6.1.4.1.11129.2.4.3
PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")  # RFC 6962 3.1
MAX_CHAIN_LENGTH = 10
_CACHE_CAP = 4096
_ACCEPTED_CAP = 64  # chains remembered as accepted: enough for one chain's submissions to every log of a CA
_SHARED_CAP = 64  # distinct root sets with a shared checker


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


@dataclass(frozen=True)
class _Issuer:
    """A certificate seen above a leaf, parsed once and remembered with what the checks need of it."""

    certificate: x509.Certificate
    der: bytes
    fingerprint: bytes
    is_ca: bool
    precertificate_signer: bool  # carries the RFC 6962 3.1 Precertificate Signing Certificate EKU
    spki_sha256: bytes


def _issuer_of(der: bytes, position: int) -> _Issuer:
    certificate = _parse(der, position)
    constraints = _extension(certificate, ExtensionOID.BASIC_CONSTRAINTS)
    eku = _extension(certificate, ExtensionOID.EXTENDED_KEY_USAGE)
    try:
        spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except Exception:  # an issuer whose key cannot be read cannot have signed anything we can check
        raise SubmissionError(f"certificate {position}'s public key cannot be read") from None
    return _Issuer(
        certificate=certificate,
        der=der,
        fingerprint=fingerprint(der),
        is_ca=constraints is not None and isinstance(constraints.value, x509.BasicConstraints) and constraints.value.ca,
        precertificate_signer=eku is not None and isinstance(eku.value, x509.ExtendedKeyUsage)
        and PRECERT_SIGNING_EKU in eku.value,
        spki_sha256=hashlib.sha256(spki).digest(),
    )  # fmt: skip


class ChainChecker:
    """Checks submissions against a fixed set of roots. Thread-safe.

    Issuers are parsed once and remembered (by their DER), and issuer-to-issuer links that verified once are
    remembered by the pair's fingerprints, so a busy log parses one certificate and verifies one signature
    per submission: the leaf's. The last accepted chains are remembered too: logs with the same roots share one
    checker (:meth:`for_roots`), and a CA submitting each (pre)certificate to several of them checks it once.
    """

    _shared: ClassVar[dict[frozenset[bytes], ChainChecker]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_roots(cls, roots: Sequence[x509.Certificate]) -> ChainChecker:
        """The process's checker for exactly this set of roots (one is made on first use)."""
        key = frozenset(fingerprint(root.public_bytes(Encoding.DER)) for root in roots)
        with cls._shared_lock:
            checker = cls._shared.get(key)
            if checker is None:
                if len(cls._shared) >= _SHARED_CAP:
                    cls._shared.clear()
                checker = cls._shared[key] = cls(roots)
            return checker

    def __init__(self, roots: Sequence[x509.Certificate]) -> None:
        self.roots = tuple(roots)
        self.root_ders = tuple(root.public_bytes(Encoding.DER) for root in roots)
        self._roots = [_issuer_of(der, 0) for der in self.root_ders]
        self._root_fingerprints = {root.fingerprint for root in self._roots}
        self._roots_by_subject: dict[bytes, list[_Issuer]] = {}
        for root in self._roots:
            self._roots_by_subject.setdefault(root.certificate.subject.public_bytes(), []).append(root)
        self._issuers: dict[bytes, _Issuer] = {}
        self._verified: set[tuple[bytes, bytes]] = set()
        self._accepted: OrderedDict[tuple[tuple[bytes, ...], bool], Submission] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, ders: Sequence[bytes], *, precertificate: bool) -> Submission:
        """RFC 6962 4.1 (add-chain) / 4.2 (add-pre-chain): the entry for *ders*, or :class:`SubmissionError`.
        A chain accepted a moment ago (the same bytes, the same kind) is answered as it was then: the checks
        depend on nothing else (no dates, no revocation: RFC 6962 3.1)."""
        key = (tuple(ders), precertificate)
        with self._lock:
            accepted = self._accepted.get(key)
        if accepted is not None:
            return accepted
        submission = self._check(ders, precertificate=precertificate)
        with self._lock:
            self._accepted[key] = submission
            while len(self._accepted) > _ACCEPTED_CAP:
                self._accepted.popitem(last=False)
        return submission

    def _check(self, ders: Sequence[bytes], *, precertificate: bool) -> Submission:
        if not ders:
            raise SubmissionError("the chain is empty")
        if len(ders) > MAX_CHAIN_LENGTH:
            raise SubmissionError(f"the chain has more than {MAX_CHAIN_LENGTH} certificates")
        leaf = _parse(ders[0], 0)
        issuers = [self._issuer(der, position) for position, der in enumerate(ders[1:], start=1)]
        poison = _extension(leaf, POISON_OID)
        if precertificate and poison is None:
            raise SubmissionError("add-pre-chain takes a precertificate: the first certificate has no poison extension")
        if precertificate and poison is not None and not poison.critical:
            raise SubmissionError("the precertificate's poison extension must be critical (RFC 6962 3.1)")
        if not precertificate and poison is not None:
            raise SubmissionError("add-chain takes a certificate: the first certificate is a precertificate")
        path = self._verify_path(leaf, issuers)
        if not precertificate:
            entry = SignedEntry(EntryType.X509, certificate=ders[0])
        elif not path:
            raise SubmissionError("a precertificate is not an accepted root")
        else:
            entry = _precert_entry(leaf, path[0])
        identity = hashlib.sha256(entry.entry_type.to_bytes(2, "big") + entry.encode()).digest()
        return Submission(entry, identity, ders[0] if precertificate else None, tuple(i.der for i in path))

    def _issuer(self, der: bytes, position: int) -> _Issuer:
        with self._lock:
            known = self._issuers.get(der)
        if known is None:
            known = _issuer_of(der, position)
            with self._lock:
                if len(self._issuers) >= _CACHE_CAP:
                    self._issuers.clear()
                self._issuers[der] = known
        return known

    def _verify_path(self, leaf: x509.Certificate, issuers: list[_Issuer]) -> list[_Issuer]:
        """The issuers from the leaf's up to an accepted root (added if the submission left it off)."""
        child, child_print = leaf, b""
        for position, parent in enumerate(issuers):
            if not parent.is_ca:
                raise SubmissionError(
                    f"certificate {position + 1} issues the one before it but is not a CA certificate"
                )
            self._link(child, child_print, parent, position)
            child, child_print = parent.certificate, parent.fingerprint
        if issuers and issuers[-1].fingerprint in self._root_fingerprints:
            return issuers
        if not issuers and fingerprint(leaf.public_bytes(Encoding.DER)) in self._root_fingerprints:
            return []  # an accepted root submitted on its own (add-chain)
        for root in self._roots_by_subject.get(child.issuer.public_bytes(), []):
            try:
                self._link(child, child_print, root, len(issuers))
            except SubmissionError:
                continue
            return [*issuers, root]
        raise SubmissionError("the chain does not lead to a root this log accepts")

    def _link(self, child: x509.Certificate, child_print: bytes, parent: _Issuer, position: int) -> None:
        """*child* (position *position* of the chain) is signed by *parent*; links between issuers are cached."""
        key = (child_print, parent.fingerprint)
        if child_print:
            with self._lock:
                if key in self._verified:
                    return
        try:
            child.verify_directly_issued_by(parent.certificate)
        except Exception:  # InvalidSignature, ValueError (names differ), TypeError (unsupported key or algorithm)
            raise SubmissionError(
                f"certificate {position} is not signed by the certificate after it in the chain"
            ) from None
        if child_print:
            with self._lock:
                if len(self._verified) >= _CACHE_CAP:
                    self._verified.clear()
                self._verified.add(key)


def _parse(der: bytes, position: int) -> x509.Certificate:
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = certificate.extensions  # parsed lazily: malformed extensions must fail here, as a bad submission
    except Exception:  # any parse failure of submitted bytes is the submitter's error
        raise SubmissionError(f"certificate {position} is not a DER X.509 certificate Candor can parse") from None
    return certificate


def _extension(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def _precert_entry(precert: x509.Certificate, issuer: _Issuer) -> SignedEntry:
    """RFC 6962 3.2 PreCert: SHA-256 of the issuer's SPKI, and the TBSCertificate without the poison."""
    if issuer.precertificate_signer:
        raise SubmissionError(
            "precertificates signed by a Precertificate Signing Certificate are not accepted by this log "
            "(static-ct-api v1.1.0); sign the precertificate with the issuing CA's key"
        )
    try:
        tbs = remove_extensions(precert.tbs_certificate_bytes, {POISON_OID.dotted_string})
    except DERError:
        raise SubmissionError("the precertificate's TBSCertificate cannot be read") from None
    return SignedEntry(EntryType.PRECERT, issuer_key_hash=issuer.spki_sha256, tbs_certificate=tbs)
