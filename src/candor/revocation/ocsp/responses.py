"""Building signed OCSP responses (RFC 6960 4.2; RFC 5019 2.2) from a precomputed template: pure except for the
signature, which the caller's key object makes (a key store's key: a file key or a PKCS#11 token).

One response carries two SingleResponses for the same certificate, with a SHA-1 CertID first (RFC 5019 2.1.1:
what clients send) and a SHA-256 CertID second (RFC 9919 allows it), under one signature. RFC 5019 2.2.1
allows additional SingleResponses "to improve response pre-generation performance or cache efficiency";
RFC 6960 4.2.2.3 has clients pick the SingleResponse whose CertID matches theirs.

Per BR 4.9.10 a response is valid for 8 hours to 10 days, and never past the signer's certificate nor the
issuer's notAfter (Mozilla Root Store Policy 6.2). responderID is byKey (RFC 6960 4.2.2.3; RFC 5019 2.2.3),
producedAt equals thisUpdate, and the delegated responder's certificate travels in ``certs`` (RFC 6960 4.2.2.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from candor.errors import CandorError, ErrorKind
from candor.revocation.ocsp import der

MIN_VALIDITY = timedelta(hours=8)  # BR 4.9.10
MAX_VALIDITY = timedelta(days=10)  # BR 4.9.10
RFC5280_UNSPECIFIED = 0

Signer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Status:
    """What a response says about a serial: good, or revoked with the time and RFC 5280 5.3.1 reason."""

    revoked_at: datetime | None = None
    reason: int | None = None

    @property
    def name(self) -> str:
        return "good" if self.revoked_at is None else "revoked"

    def encode(self) -> bytes:
        if self.revoked_at is None:
            return der.GOOD
        # BR 7.2.2 omits the reasonCode of an unspecified revocation; the response mirrors the CRL entry.
        reason = None if self.reason in (None, RFC5280_UNSPECIFIED) else self.reason
        return der.revoked_status(self.revoked_at, reason)


GOOD = Status()


def key_hash(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 6960 4.1.1 issuerKeyHash / 4.2.1 KeyHash: the hash of the subjectPublicKey BIT STRING's value."""
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return _hash(algorithm, _subject_public_key(spki))


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.name, data).digest()


def _subject_public_key(spki: bytes) -> bytes:
    """The subjectPublicKey bits (without the unused-bits octet) of a DER SubjectPublicKeyInfo."""
    offset = _skip_header(spki, 0)  # into the SEQUENCE
    offset = _skip_tlv(spki, offset)  # past the AlgorithmIdentifier
    assert spki[offset] == 0x03
    start = _skip_header(spki, offset)
    return spki[start + 1 :]


def _skip_header(data: bytes, offset: int) -> int:
    first = data[offset + 1]
    return offset + 2 + (first & 0x7F if first & 0x80 else 0)


def _skip_tlv(data: bytes, offset: int) -> int:
    first = data[offset + 1]
    if first & 0x80:
        count = first & 0x7F
        size = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
        return offset + 2 + count + size
    return offset + 2 + first


@dataclass(frozen=True)
class IssuerHashes:
    """The CertID hashes of one issuer (RFC 6960 4.1.1), SHA-1 and SHA-256."""

    name_sha1: bytes
    key_sha1: bytes
    name_sha256: bytes
    key_sha256: bytes

    @classmethod
    def of(cls, issuer: x509.Certificate) -> IssuerHashes:
        name = issuer.subject.public_bytes()
        return cls(
            name_sha1=hashlib.sha1(name).digest(),  # noqa: S324  (RFC 5019 2.1.1 requires SHA-1 CertIDs)
            key_sha1=key_hash(issuer, hashes.SHA1()),  # noqa: S303
            name_sha256=hashlib.sha256(name).digest(),
            key_sha256=key_hash(issuer, hashes.SHA256()),
        )

    def cert_ids(self, serial: int, *, sha256: bool) -> tuple[bytes, ...]:
        """The SHA-1 CertID, and the SHA-256 one if asked (RFC 6960 4.1.1)."""
        return self.cert_ids_of(der.integer_content(serial), sha256=sha256)

    def cert_ids_of(self, content: bytes, *, sha256: bool) -> tuple[bytes, ...]:
        """:meth:`cert_ids` of the serial whose INTEGER content octets are *content*."""
        serial_tlv = der.tlv(0x02, content)
        bodies = self.cert_id_bodies()
        first = der.tlv(0x30, bodies[0] + serial_tlv)
        if not sha256:
            return (first,)
        return first, der.tlv(0x30, bodies[1] + serial_tlv)

    def cert_id(self, serial: int, *, sha256: bool) -> bytes:
        """The one CertID of *serial* hashed with SHA-256 (else SHA-1)."""
        return der.tlv(0x30, self.cert_id_bodies()[1 if sha256 else 0] + der.integer(serial))

    def cert_id_bodies(self) -> tuple[bytes, bytes]:
        """The CertID contents before the serial, the same for every serial of this issuer."""
        cached: tuple[bytes, bytes] | None = self.__dict__.get("_cached_bodies")
        if cached is None:
            cached = (
                der.SHA1_ALGORITHM + der.octet_string(self.name_sha1) + der.octet_string(self.key_sha1),
                der.SHA256_ALGORITHM + der.octet_string(self.name_sha256) + der.octet_string(self.key_sha256),
            )
            object.__setattr__(self, "_cached_bodies", cached)
        return cached

    def lookup_keys(self, serial: int, *, sha256: bool) -> tuple[bytes, ...]:
        """The in-memory index keys of a serial: issuerKeyHash followed by the serial's INTEGER content."""
        return self.lookup_keys_of(der.integer_content(serial), sha256=sha256)

    def lookup_keys_of(self, content: bytes, *, sha256: bool) -> tuple[bytes, ...]:
        keys = (self.key_sha1 + content,)
        return (*keys, self.key_sha256 + content) if sha256 else keys


def request_for(cert_id: bytes) -> bytes:
    """The smallest OCSPRequest for one CertID, no nonce (RFC 6960 4.1.1): what ``openssl ocsp -no_nonce``
    sends; the index holds it so that the common GET is one dictionary lookup of the decoded bytes."""
    prefix = _REQUEST_PREFIX.get(len(cert_id))
    if prefix is None:
        empty = der.sequence(der.sequence(der.sequence(der.sequence(b"\x00" * len(cert_id)))))
        prefix = _REQUEST_PREFIX.setdefault(len(cert_id), empty[: len(empty) - len(cert_id)])
    return prefix + cert_id


_REQUEST_PREFIX: dict[int, bytes] = {}  # the four enclosing SEQUENCE headers depend only on the CertID's length


def signature_parameters(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, Signer]:
    """The signatureAlgorithm and a signing function for *key* (BR 7.1.3.2: P-256/SHA-256, P-384/SHA-384,
    RSA PKCS#1 v1.5 with SHA-256)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        # The hash by hashlib and the key told it is prehashed: the same signature over the same SHA-256 (or -384)
        # of the TBS, without cryptography's Python-side Hash object per call (3 of the 34 µs a P-256 signature took
        # when pre-signing; the file keys and the PKCS#11 keys both take Prehashed)
        if key.curve.name == "secp256r1":
            ecdsa256, sha256_of = ec.ECDSA(Prehashed(hashes.SHA256())), hashlib.sha256
            return der.ECDSA_SHA256, lambda tbs: key.sign(sha256_of(tbs).digest(), ecdsa256)
        if key.curve.name == "secp384r1":
            ecdsa384, sha384_of = ec.ECDSA(Prehashed(hashes.SHA384())), hashlib.sha384
            return der.ECDSA_SHA384, lambda tbs: key.sign(sha384_of(tbs).digest(), ecdsa384)
        raise CandorError(ErrorKind.POLICY, f"BR 7.1.3.2.2: no OCSP signing with curve {key.curve.name}")
    pkcs1 = padding.PKCS1v15()
    sha256 = hashes.SHA256()
    return der.RSA_SHA256, lambda tbs: key.sign(tbs, pkcs1, sha256)


class ResponseBuilder:
    """Signs responses for one issuer with one signing identity: a delegated responder (its certificate goes
    into ``certs``) or the issuer itself (*responder_certificate* None, no ``certs``)."""

    def __init__(
        self,
        *,
        issuer: x509.Certificate,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        responder_certificate: x509.Certificate | None,
        sha256_cert_ids: bool = True,
    ) -> None:
        signer_certificate = responder_certificate or issuer
        self.issuer = IssuerHashes.of(issuer)
        self.sha256_cert_ids = sha256_cert_ids
        self.not_after = min(signer_certificate.not_valid_after_utc, issuer.not_valid_after_utc)
        self.responder_id = der.tlv(0xA2, der.octet_string(key_hash(signer_certificate, hashes.SHA1())))  # noqa: S303
        self.algorithm, self.sign = signature_parameters(key)
        certs = b""
        if responder_certificate is not None:
            certs = der.tlv(0xA0, der.sequence(responder_certificate.public_bytes(Encoding.DER)))
        self.certs = certs

    def validity(self, this_update: datetime, wanted: timedelta) -> datetime:
        """nextUpdate: *wanted* after thisUpdate, cut to the signer's and the issuer's notAfter; refused below
        the 8 hours of BR 4.9.10 (the responder certificate must be rotated first)."""
        if not MIN_VALIDITY <= wanted <= MAX_VALIDITY:
            raise CandorError(ErrorKind.CONFIG, "BR 4.9.10: OCSP responses are valid for 8 hours to 10 days")
        next_update = min(this_update + wanted, self.not_after)
        if next_update - this_update < MIN_VALIDITY:
            raise CandorError(
                ErrorKind.POLICY,
                "BR 4.9.10: the OCSP signer's certificate expires within 8 hours; rotate the responder first",
            )
        return next_update

    def build(self, serial: int, status: Status, *, this_update: datetime, next_update: datetime) -> bytes:
        """The DER OCSPResponse (RFC 6960 4.2.1) for *serial*, encoded field by field; producedAt = thisUpdate.
        Pre-signing in bulk makes the same bytes from templates (:mod:`candor.revocation.ocsp.template`)."""
        this = der.generalized_time(this_update)
        tail = status.encode() + this + der.tlv(0xA0, der.generalized_time(next_update))
        cert_ids = self.issuer.cert_ids(serial, sha256=self.sha256_cert_ids)
        singles = b"".join([der.tlv(0x30, cert_id + tail) for cert_id in cert_ids])
        return self._signed(der.tlv(0x30, self.responder_id + this + der.tlv(0x30, singles)))

    def build_nonced(self, cert_id: bytes, single_tail: bytes, *, produced_at: datetime, nonce: bytes) -> bytes:
        """A response signed now for one request that carries a nonce (RFC 6960 4.4.1 as RFC 9654 2.1 updates it):
        one SingleResponse, *cert_id* (in the request's hash) followed by *single_tail* (certStatus, thisUpdate and
        nextUpdate, taken from the pre-signed response so that both say the same), producedAt = *produced_at*, and
        the nonce echoed in responseExtensions."""
        single = der.tlv(0x30, cert_id + single_tail)
        extensions = der.tlv(0xA1, der.sequence(der.nonce_extension(nonce)))
        produced = der.generalized_time(produced_at)
        return self._signed(der.tlv(0x30, self.responder_id + produced + der.tlv(0x30, single) + extensions))

    def _signed(self, tbs: bytes) -> bytes:
        """The OCSPResponse around BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature, certs }."""
        basic = der.tlv(0x30, tbs + self.algorithm + der.bit_string(self.sign(tbs)) + self.certs)
        return der.successful_response(basic)
