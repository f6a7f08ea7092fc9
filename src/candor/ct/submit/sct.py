"""SCTs a log returns: read from the add-(pre-)chain answer (RFC 6962 4.1), verified against the log's key over
the RFC 6962 3.2 input, and serialized for the SignedCertificateTimestampList (3.3) the signer embeds.

The TLS encoders of the log (:mod:`candor.ct.log.tls`) build the signed input; what is here and not there is
the reading side and RSA: a log's DigitallySigned may be ECDSA P-256 or RSASSA-PKCS1-v1_5, both with SHA-256
(RFC 6962 2.1.4), while Candor's own log only writes ECDSA.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from candor.ct.log import tls
from candor.ct.submit.loglist import LogInfo, LogKind
from candor.profiles import der, tbs_without_poison_or_scts

HASH_SHA256 = 4  # RFC 5246 7.4.1.4.1 HashAlgorithm
SIGNATURE_RSA = 1  # RFC 5246 7.4.1.4.1 SignatureAlgorithm rsa(1)
SIGNATURE_ECDSA = 3  # ecdsa(3)
DEFAULT_MAX_SKEW = timedelta(seconds=10)
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")  # RFC 6962 3.3


class SctError(ValueError):
    """An SCT that is malformed or does not verify; the message names what is wrong."""


@dataclass(frozen=True)
class Sct:
    """RFC 6962 3.2 SignedCertificateTimestamp, as received."""

    version: int
    log_id: bytes
    timestamp: int  # milliseconds since the epoch
    extensions: bytes
    hash_algorithm: int
    signature_algorithm: int
    signature: bytes  # DER ECDSA-Sig-Value or the RSASSA-PKCS1-v1_5 signature

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, tz=UTC)

    def digitally_signed(self) -> bytes:
        """RFC 5246 4.7 DigitallySigned: hash, signature algorithm, opaque signature<0..2^16-1>."""
        return bytes([self.hash_algorithm, self.signature_algorithm]) + tls.opaque(self.signature, 2)

    def serialize(self) -> bytes:
        """RFC 6962 3.2 wire form: version, log_id[32], timestamp, CtExtensions, DigitallySigned."""
        return (
            bytes([self.version])
            + self.log_id
            + self.timestamp.to_bytes(8, "big")
            + tls.opaque(self.extensions, 2)
            + self.digitally_signed()
        )


@dataclass(frozen=True)
class VerifiedSct:
    """An SCT whose signature verified with *log*'s key over the submitted entry."""

    sct: Sct
    log: LogInfo


def parse_sct_response(body: bytes) -> Sct:
    """RFC 6962 4.1 add-chain/add-pre-chain output: ``{sct_version, id, timestamp, extensions, signature}``."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SctError("the log's answer is not JSON") from None
    if not isinstance(document, dict):
        raise SctError("the log's answer is not a JSON object")
    version, timestamp = document.get("sct_version"), document.get("timestamp")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SctError("sct_version is missing or not a number")
    if version != tls.V1:
        raise SctError(f"sct_version {version} is not v1(0) (RFC 6962 3.2)")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp < 1 << 64:
        raise SctError("timestamp is missing or not a uint64")
    log_id = _b64_field(document, "id")
    if len(log_id) != 32:
        raise SctError("id is not a 32-byte LogID (RFC 6962 3.2)")
    extensions = _b64_field(document, "extensions")
    if len(extensions) >= 1 << 16:
        raise SctError("extensions are longer than 2^16-1 bytes")
    hash_algorithm, signature_algorithm, signature = _digitally_signed(_b64_field(document, "signature"))
    return Sct(version, log_id, timestamp, extensions, hash_algorithm, signature_algorithm, signature)


def parse_serialized_sct(data: bytes) -> Sct:
    """One SerializedSCT (RFC 6962 3.3), e.g. out of an embedded list."""
    if len(data) < 1 + 32 + 8 + 2 or data[0] != tls.V1:
        raise SctError("not a v1 SignedCertificateTimestamp")
    try:
        extensions, offset = tls.read_opaque(data, 41, 2)
    except tls.TLSError as exc:
        raise SctError(str(exc)) from None
    hash_algorithm, signature_algorithm, signature = _digitally_signed(data[offset:])
    timestamp = int.from_bytes(data[33:41], "big")
    return Sct(tls.V1, data[1:33], timestamp, extensions, hash_algorithm, signature_algorithm, signature)


def parse_sct_list(data: bytes) -> list[Sct]:
    """RFC 6962 3.3 SignedCertificateTimestampList: ``opaque SerializedSCT<1..2^16-1>`` items in a
    ``<1..2^16-1>`` list."""
    try:
        body, end = tls.read_opaque(data, 0, 2)
        if end != len(data) or not body:
            raise SctError("an SCT list is one non-empty length-prefixed vector")
        scts, offset = [], 0
        while offset < len(body):
            item, offset = tls.read_opaque(body, offset, 2)
            scts.append(parse_serialized_sct(item))
    except tls.TLSError as exc:
        raise SctError(str(exc)) from None
    return scts


def sct_list(scts: Sequence[Sct]) -> bytes:
    """RFC 6962 3.3: the TLS-encoded SignedCertificateTimestampList of *scts*."""
    if not scts:
        raise SctError("an SCT list holds at least one SCT (RFC 6962 3.3)")
    return tls.sct_list([s.serialize() for s in scts])


def embedded_scts(certificate: x509.Certificate) -> list[Sct]:
    """The SCTs embedded in *certificate* (RFC 6962 3.3, extension 1.3.6.1.4.1.11129.2.4.2); none if absent."""
    for extension in certificate.extensions:
        if extension.oid == SCT_LIST_OID:
            value = extension.value.public_bytes()  # the extnValue's contents: OCTET STRING { SCT list }
            try:
                tag, start, end = der.read(value, 0, len(value))
            except der.DERError as exc:
                raise SctError(f"the SCT list extension: {exc}") from None
            if tag != der.OCTET_STRING or end != len(value):
                raise SctError("the SCT list extension is not one OCTET STRING (RFC 6962 3.3)")
            return parse_sct_list(value[start:end])
    return []


def precert_entry(precertificate: x509.Certificate, issuer: x509.Certificate) -> tls.SignedEntry:
    """RFC 6962 3.2 PreCert: issuer_key_hash = SHA-256 of the issuer's SubjectPublicKeyInfo; the TBSCertificate
    without the poison extension. (cryptography's ``tbs_precertificate_bytes`` gives the same bytes for a final
    certificate, but refuses a precertificate, which has no SCT list to drop.)"""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return tls.SignedEntry(
        tls.EntryType.PRECERT,
        issuer_key_hash=hashlib.sha256(spki).digest(),
        tbs_certificate=tbs_without_poison_or_scts(precertificate.tbs_certificate_bytes),
    )


def x509_entry(certificate: x509.Certificate) -> tls.SignedEntry:
    """RFC 6962 3.2 x509_entry: the certificate's DER."""
    return tls.SignedEntry(tls.EntryType.X509, certificate=certificate.public_bytes(Encoding.DER))


def verify_sct(
    sct: Sct, log: LogInfo, entry: tls.SignedEntry, *, now: datetime, max_skew: timedelta = DEFAULT_MAX_SKEW
) -> VerifiedSct:
    """Check *sct* was issued by *log* for *entry*: v1, this log's ID, not from the future beyond *max_skew*,
    the static-ct-api leaf_index where the log is tiled, and the signature (RFC 6962 3.2, 2.1.4)."""
    if sct.version != tls.V1:
        raise SctError(f"SCT version {sct.version} is not v1(0) (RFC 6962 3.2)")
    if sct.log_id != log.log_id:
        raise SctError("the SCT's log ID is not this log's (RFC 6962 3.2)")
    if sct.time > now + max_skew:
        raise SctError(f"the SCT's timestamp {sct.time:%Y-%m-%dT%H:%M:%S.%fZ} is in the future")
    if log.kind is LogKind.STATIC_CT_API:
        try:
            index = tls.leaf_index_of(sct.extensions)
        except tls.TLSError:
            index = None
        if index is None:
            raise SctError("a static-ct-api SCT carries a leaf_index extension (static-ct-api, SCT Extension)")
    if sct.hash_algorithm != HASH_SHA256:
        raise SctError(f"hash algorithm {sct.hash_algorithm} is not SHA-256 (RFC 6962 2.1.4)")
    signed = tls.sct_signature_input(sct.timestamp, entry, sct.extensions)
    key = _log_key(log.key_der)
    try:
        if sct.signature_algorithm == SIGNATURE_ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
        elif sct.signature_algorithm == SIGNATURE_RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(sct.signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SctError(f"signature algorithm {sct.signature_algorithm} does not match the log's key")
    except InvalidSignature:
        raise SctError("the SCT's signature does not verify with the log's key") from None
    return VerifiedSct(sct, log)


@functools.lru_cache(maxsize=256)
def _log_key(key_der: bytes) -> PublicKeyTypes:
    """A log's public key, parsed once (every SCT of every certificate is verified with one of a few keys)."""
    return load_der_public_key(key_der)


def _digitally_signed(data: bytes) -> tuple[int, int, bytes]:
    if len(data) < 4:
        raise SctError("the signature is not a DigitallySigned struct")
    try:
        signature, end = tls.read_opaque(data, 2, 2)
    except tls.TLSError as exc:
        raise SctError(f"the signature: {exc}") from None
    if end != len(data) or not signature:
        raise SctError("the signature is not one DigitallySigned struct")
    return data[0], data[1], signature


def _b64_field(document: dict[str, object], name: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise SctError(f"{name} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SctError(f"{name} is not valid base64") from None


__all__ = [
    "Sct",
    "SctError",
    "VerifiedSct",
    "embedded_scts",
    "parse_sct_list",
    "parse_sct_response",
    "parse_serialized_sct",
    "precert_entry",
    "sct_list",
    "verify_sct",
    "x509_entry",
]
