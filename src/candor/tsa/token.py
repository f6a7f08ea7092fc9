"""TimeStampToken assembly and signing (RFC 3161 2.4.2; RFC 5652 5; RFC 5816 and RFC 5035 5.4).

A token is a ContentInfo holding a SignedData whose encapsulated content is the DER TSTInfo::

    TSTInfo ::= SEQUENCE { version 1, policy, messageImprint, serialNumber, genTime, accuracy,
                           -- ordering FALSE is the DEFAULT and so omitted (X.690 11.5) --
                           nonce OPTIONAL, tsa [0] GeneralName OPTIONAL }

One signer, identified by issuerAndSerialNumber (SignerInfo version 1), signs three signed attributes:
content-type (id-ct-TSTInfo), message-digest, and signing-certificate-v2 holding one ESSCertIDv2 (SHA-256
over the unit certificate, hashAlgorithm omitted as its DEFAULT, with issuerSerial). The digest and signature
hash is the one that signed the unit certificate (CSBR 6.8). Everything that does not change between tokens
is encoded once per unit, when the signer is made; a token costs a few concatenations, one hash and one
signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPrivateKey
from candor.profiles.der import OCTET_STRING, SEQUENCE, encode
from candor.tsa import asn1
from candor.tsa.request import TimeStampRequest

SET = 0x31
INTEGER = 0x02
GENERALIZED_TIME = 0x18
EXPLICIT_0 = 0xA0  # [0]: the eContent, the certificates, the signedAttrs, TSTInfo.tsa
DIRECTORY_NAME = 0xA4  # GeneralName directoryName [4] (explicit: Name is a CHOICE)
VERSION_1 = bytes.fromhex("020101")
VERSION_3 = bytes.fromhex("020103")  # SignedData: eContentType other than id-data (RFC 5652 5.1)


def integer(value: int) -> bytes:
    """A non-negative INTEGER, minimally encoded."""
    if value.bit_length() == 127:  # every serial the allocator draws: 16 octets, no leading zero
        return b"\x02\x10" + value.to_bytes(16, "big")
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def gen_time(moment: datetime, digits: int) -> bytes:
    """GeneralizedTime in UTC with at most *digits* fractional digits, truncated, trailing zeros and a bare
    decimal point dropped (RFC 3161 2.4.2; X.690 11.7)."""
    text = f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    if digits:
        fraction = f"{moment.microsecond:06d}"[:digits].rstrip("0")
        if fraction:
            text += "." + fraction
    return encode(GENERALIZED_TIME, (text + "Z").encode("ascii"))


def accuracy(milliseconds: int) -> bytes:
    """Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL, ... } with
    implicit tags (RFC 3161's module)."""
    seconds, millis = divmod(milliseconds, 1000)
    content = integer(seconds) if seconds else b""
    if millis:
        content += encode(0x80, integer(millis)[2:])
    return encode(SEQUENCE, content)


@dataclass(frozen=True)
class TokenOptions:
    """What the ``[tsa]`` settings put in every token."""

    policy: str
    accuracy_ms: int
    precision_digits: int
    include_chain: bool
    include_tsa_name: bool


class TokenSigner:
    """Signs tokens as one TSA unit: its certificate, its issuer chain (up to, not including, the root) and key."""

    def __init__(
        self,
        certificate: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
        key: CAPrivateKey,
        options: TokenOptions,
    ) -> None:
        hash_algorithm = certificate.signature_hash_algorithm
        digest = asn1.BY_NAME.get(hash_algorithm.name) if hash_algorithm is not None else None
        if digest is None or digest.new().name not in asn1.ECDSA_WITH:
            raise CandorError(ErrorKind.POLICY, "a TSA unit certificate must be signed with SHA-256, -384 or -512")
        self.certificate = certificate
        self.digest = digest
        self._hash: hashes.HashAlgorithm = digest.new()
        self._sign: Callable[[bytes], bytes]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self._signature_algorithm = asn1.ECDSA_WITH[self._hash.name]
            ecdsa = ec.ECDSA(self._hash)
            self._sign = lambda data: key.sign(data, ecdsa)
        elif isinstance(key, rsa.RSAPrivateKey):
            self._signature_algorithm = asn1.RSA_ENCRYPTION
            pkcs1, rsa_hash = padding.PKCS1v15(), self._hash
            self._sign = lambda data: key.sign(data, pkcs1, rsa_hash)
        else:
            raise CandorError(ErrorKind.KEY, "a TSA unit key is RSA or ECDSA")
        self.digits = options.precision_digits
        certificate_der = certificate.public_bytes(Encoding.DER)
        issuer_name = certificate.issuer.public_bytes()
        # TSTInfo: version and policy; after the serial and genTime, the accuracy; after the nonce, the name.
        self._tst_head = VERSION_1 + asn1.encode_oid(options.policy)
        self._accuracy = accuracy(options.accuracy_ms)
        self._tsa_name = (
            encode(EXPLICIT_0, encode(DIRECTORY_NAME, certificate.subject.public_bytes()))
            if options.include_tsa_name
            else b""
        )
        # signedAttrs: a DER SET OF is sorted by encoding (X.690 11.6); the message digest's place in that
        # order is decided by the attributes' lengths and OIDs, which never change for this unit.
        content_type = encode(SEQUENCE, asn1.ID_CONTENT_TYPE + encode(SET, asn1.ID_CT_TSTINFO))
        issuer_serial = encode(
            SEQUENCE, encode(SEQUENCE, encode(DIRECTORY_NAME, issuer_name)) + integer(certificate.serial_number)
        )
        ess_cert_id = encode(SEQUENCE, encode(OCTET_STRING, hashlib.sha256(certificate_der).digest()) + issuer_serial)
        signing_certificate = encode(
            SEQUENCE,
            asn1.ID_SIGNING_CERTIFICATE_V2 + encode(SET, encode(SEQUENCE, encode(SEQUENCE, ess_cert_id))),
        )
        placeholder = self._digest_attribute(bytes(digest.length))
        ordered = sorted([content_type, signing_certificate, placeholder])
        at = ordered.index(placeholder)
        self._attrs_before = b"".join(ordered[:at]) + placeholder[: -digest.length]  # up to the digest's value
        self._attrs_after = b"".join(ordered[at + 1 :])
        length = len(b"".join(ordered))  # the same for every token: the digest's length is fixed
        self._attrs_to_sign = encode(SET, bytes(length))[:-length]  # RFC 5652 5.4: signed as a SET OF
        self._attrs_in_signer_info = encode(EXPLICIT_0, bytes(length))[:-length]  # stored as [0] IMPLICIT
        self._hashlib = getattr(hashlib, self._hash.name)
        # SignedData around the content, and the SignerInfo around the signature.
        self._digest_algorithms = encode(SET, digest.identifier)
        certificates = [certificate_der]
        if options.include_chain:
            certificates += [c.public_bytes(Encoding.DER) for c in chain]
        self._certificates = encode(EXPLICIT_0, b"".join(sorted(certificates)))
        self._signer_head = (
            VERSION_1
            + encode(SEQUENCE, issuer_name + integer(certificate.serial_number))  # IssuerAndSerialNumber
            + digest.identifier
        )

    @staticmethod
    def _digest_attribute(value: bytes) -> bytes:
        return encode(SEQUENCE, asn1.ID_MESSAGE_DIGEST + encode(SET, encode(OCTET_STRING, value)))

    def tst_info(self, request: TimeStampRequest, serial: int, moment: datetime) -> bytes:
        """The DER TSTInfo for *request*, with *serial* and *moment* as its serialNumber and genTime."""
        return encode(
            SEQUENCE,
            self._tst_head
            + request.message_imprint
            + integer(serial)
            + gen_time(moment, self.digits)
            + self._accuracy
            + (request.nonce or b"")
            + self._tsa_name,
        )

    def sign(self, tst_info: bytes, *, with_certificates: bool) -> bytes:
        """The TimeStampToken (a DER ContentInfo) over *tst_info*; the unit's certificates when asked for."""
        attributes = self._attrs_before + self._hashlib(tst_info).digest() + self._attrs_after
        signature = self._sign(self._attrs_to_sign + attributes)
        signer_info = encode(
            SEQUENCE,
            self._signer_head
            + self._attrs_in_signer_info
            + attributes
            + self._signature_algorithm
            + encode(OCTET_STRING, signature),
        )
        content = encode(SEQUENCE, asn1.ID_CT_TSTINFO + encode(EXPLICIT_0, encode(OCTET_STRING, tst_info)))
        signed_data = encode(
            SEQUENCE,
            VERSION_3
            + self._digest_algorithms
            + content
            + (self._certificates if with_certificates else b"")
            + encode(SET, signer_info),
        )
        return encode(SEQUENCE, asn1.ID_SIGNED_DATA + encode(EXPLICIT_0, signed_data))
