"""One shard's CRL, signed (BR 7.2, RFC 5280 5).

A CRL here is v2 with: the issuer's subject byte for byte (BR 7.2.1); thisUpdate from the clock and nextUpdate
at most 10 days later (BR 4.9.7, 7.2.1); AuthorityKeyIdentifier from the issuer's SKI (RFC 5280 5.2.1); a
CRLNumber from the issuer's counter (5.2.3); a critical IssuingDistributionPoint whose only fullName is the
shard's URL, byte for byte the certificates' CRLDP, with onlyContainsUserCerts (BR 7.2.2.1, 5.2.5); and the
entries sorted by serial, each with its reasonCode unless unspecified (BR 7.2.2).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPrivateKey, KeyAlgorithm
from candor.revocation.crl import der

# BR 4.9.7 / 7.2.1: nextUpdate - thisUpdate for subscriber-scope CRLs. A time-stamping CA's CRL may run 12 months
# (CSBR 4.9.7); Candor holds it to the same 10 days, as it regenerates both on the same schedule.
MAX_VALIDITY = timedelta(days=10)
MAX_CRL_NUMBER = 2**159  # RFC 5280 5.2.3 / BR 7.2.1: a CRLNumber is below 2^159


class Entry(NamedTuple):
    """One revoked serial as stored: DER INTEGER content octets, revocation time (DER Time), reason code.
    Immutable; a tuple because a large CRL reads a million of them (a frozen dataclass's construction cost
    about a second per million here)."""

    serial: bytes
    revoked_at: bytes
    reason: int


@dataclass(frozen=True)
class CrlHeader:
    """Everything in a shard's CRL except its entries."""

    issuer: x509.Certificate
    algorithm: KeyAlgorithm
    url: str  # the IDP fullName: the shard's URL, as in its certificates' CRLDP
    number: int
    this_update: datetime
    next_update: datetime
    kind: str = "tls"  # the issuer's: "tls" (the TLS BRs) or "tsa" (a time-stamping CA: the Code Signing BRs)

    def __post_init__(self) -> None:
        if not 0 < self.number < MAX_CRL_NUMBER:
            raise CandorError(ErrorKind.INTERNAL, f"RFC 5280 5.2.3: CRLNumber {self.number} is out of range")
        if self.this_update.microsecond or self.next_update.microsecond:
            raise CandorError(ErrorKind.INTERNAL, "CRL times are whole seconds (RFC 5280 5.1.2.4)")
        if not self.this_update < self.next_update <= self.this_update + MAX_VALIDITY:
            raise CandorError(ErrorKind.POLICY, "BR 4.9.7: nextUpdate must be after thisUpdate, within 10 days")


@dataclass(frozen=True)
class Skeleton:
    """The header encoded by cryptography: the TBSCertList without entries, and the signature algorithm."""

    tbs: bytes
    signature_algorithm: bytes


def skeleton(header: CrlHeader) -> Skeleton:
    """Encode *header* with cryptography's builder (signed by a throwaway key: only its TBS is kept)."""
    issuer = header.issuer
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(header.url)],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    draft = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(header.this_update)
        .next_update(header.next_update)
        .add_extension(aki, critical=False)
        .add_extension(x509.CRLNumber(header.number), critical=False)
        .add_extension(idp, critical=True)
        .sign(_throwaway(header.algorithm), header.algorithm.signature_hash())
    )
    tbs = draft.tbs_certlist_bytes
    fields = der.children(tbs)
    # BR 7.2.1 / RFC 5280 5.1.2.3: the CRL's issuer is the issuer certificate's subject, byte for byte.
    if fields[2] != der.children(issuer.tbs_certificate_bytes)[5]:
        raise CandorError(ErrorKind.INTERNAL, "BR 7.2.1: the CRL issuer would differ from the issuer's subject")
    return Skeleton(tbs=tbs, signature_algorithm=fields[1])


def assemble(skeleton_: Skeleton, entries: Sequence[Entry]) -> bytes:
    """The TBSCertList with *entries* (already sorted and checked) in one pass."""
    entry_der = der.entry_der
    return der.splice_entries(skeleton_.tbs, [entry_der(e.serial, e.revoked_at, e.reason) for e in entries])


def sign(skeleton_: Skeleton, tbs: bytes, key: CAPrivateKey, algorithm: KeyAlgorithm) -> bytes:
    """Sign *tbs* with the issuer's key (BR 7.1.3.2: the hash fixed for the key) and assemble the CRL."""
    hash_algorithm = algorithm.signature_hash()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hash_algorithm)
    else:
        signature = key.sign(tbs, ec.ECDSA(hash_algorithm))
    return der.certificate_list(tbs, skeleton_.signature_algorithm, signature)


@functools.cache
def _throwaway(algorithm: KeyAlgorithm) -> CAPrivateKey:
    """A key whose signatures carry the same AlgorithmIdentifier as the issuer's (for RSA the size does not
    matter to it). Its signatures are thrown away: they only let cryptography encode the header, and sign the
    same-shape sample that pkilint reads for very large CRLs."""
    if algorithm.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(algorithm.curve)


def throwaway_sign(skeleton_: Skeleton, tbs: bytes, algorithm: KeyAlgorithm) -> bytes:
    return sign(skeleton_, tbs, _throwaway(algorithm), algorithm)
