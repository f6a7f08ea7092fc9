"""The few DER encodings an OCSP response needs (X.690 8.1, 10), written out so that a response is signed from
bytes assembled in microseconds rather than through a general-purpose builder.

Every function here is pure and returns the complete TLV. The structures are those of RFC 6960 4.2.1
(OCSPResponse, BasicOCSPResponse, ResponseData, SingleResponse, CertStatus) and 4.1.1 (CertID).
"""

from __future__ import annotations

from datetime import UTC, datetime

# Object identifiers, complete TLVs.
ID_PKIX_OCSP_BASIC = bytes.fromhex("06092b0601050507300101")  # RFC 6960 4.2.1 id-pkix-ocsp-basic
# AlgorithmIdentifiers of the CertID hash, with the NULL parameters most clients send (RFC 6960 4.1.1).
SHA1_ALGORITHM = bytes.fromhex("300906052b0e03021a0500")
SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")
# Signature AlgorithmIdentifiers (BR 7.1.3.2.1 RSA with NULL parameters; 7.1.3.2.2 ECDSA without parameters).
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
ECDSA_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
RSA_SHA256 = bytes.fromhex("300d06092a864886f70d01010b0500")

# RFC 6960 4.2.1 OCSPResponseStatus: the unsuccessful answers are just the status (no responseBytes).
MALFORMED_REQUEST = bytes.fromhex("30030a0101")
INTERNAL_ERROR = bytes.fromhex("30030a0102")
TRY_LATER = bytes.fromhex("30030a0103")
UNAUTHORIZED = bytes.fromhex("30030a0106")

GOOD = b"\x80\x00"  # CertStatus good: [0] IMPLICIT NULL

ID_PKIX_OCSP_NONCE = bytes.fromhex("06092b0601050507300102")  # RFC 6960 4.4.1 id-pkix-ocsp-nonce


def length(size: int) -> bytes:
    """X.690 8.1.3 definite length, short or long form."""
    if size < 0x80:
        return bytes((size,))
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(encoded),)) + encoded


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def octet_string(content: bytes) -> bytes:
    return tlv(0x04, content)


def integer_content(value: int) -> bytes:
    """The content octets of a non-negative INTEGER, minimal (a leading 00 only when the top bit is set)."""
    if value < 0:
        raise ValueError("a certificate serial number is positive")
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def integer(value: int) -> bytes:
    return tlv(0x02, integer_content(value))


def generalized_time(moment: datetime) -> bytes:
    """RFC 5280 4.1.2.5.2 / RFC 6960: GeneralizedTime in UTC, whole seconds, "YYYYMMDDHHMMSSZ"."""
    return b"\x18\x0f" + moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode()


def cert_id(algorithm: bytes, name_hash: bytes, key_hash: bytes, serial: int) -> bytes:
    """RFC 6960 4.1.1 CertID."""
    return sequence(algorithm, octet_string(name_hash), octet_string(key_hash), integer(serial))


def revoked_status(revoked_at: datetime, reason: int | None) -> bytes:
    """CertStatus revoked: [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason }."""
    inner = generalized_time(revoked_at)
    if reason is not None:
        inner += tlv(0xA0, tlv(0x0A, bytes((reason,))))
    return tlv(0xA1, inner)


def bit_string(content: bytes) -> bytes:
    return tlv(0x03, b"\x00" + content)


def successful_response(basic: bytes) -> bytes:
    """OCSPResponse { successful, [0] EXPLICIT ResponseBytes { id-pkix-ocsp-basic, OCTET STRING basic } }."""
    return sequence(b"\x0a\x01\x00", tlv(0xA0, sequence(ID_PKIX_OCSP_BASIC, octet_string(basic))))


def nonce_extension(nonce: bytes) -> bytes:
    """Extension { id-pkix-ocsp-nonce, extnValue OCTET STRING { Nonce ::= OCTET STRING } } (RFC 9654 2.1: the
    extnValue is the DER of the Nonce), non-critical."""
    return sequence(ID_PKIX_OCSP_NONCE, octet_string(octet_string(nonce)))


def first_single(response: bytes) -> tuple[bytes, bytes]:
    """The CertID of a successful OCSPResponse's first SingleResponse, and what follows it in that SingleResponse
    (certStatus, thisUpdate, nextUpdate, singleExtensions). ValueError if *response* is not shaped so."""
    _, start, _ = _expect(response, 0, 0x30)  # OCSPResponse
    _, _, offset = _expect(response, start, 0x0A)  # responseStatus
    _, start, _ = _expect(response, offset, 0xA0)  # [0] EXPLICIT responseBytes
    _, start, _ = _expect(response, start, 0x30)  # ResponseBytes
    _, _, offset = _expect(response, start, 0x06)  # responseType
    _, start, _ = _expect(response, offset, 0x04)  # response OCTET STRING
    _, start, _ = _expect(response, start, 0x30)  # BasicOCSPResponse
    _, offset, _ = _expect(response, start, 0x30)  # tbsResponseData
    if response[offset] == 0xA0:  # [0] EXPLICIT version, when not the default
        offset = read_tlv(response, offset)[2]
    offset = read_tlv(response, offset)[2]  # responderID, [1] or [2]
    _, _, offset = _expect(response, offset, 0x18)  # producedAt
    _, start, _ = _expect(response, offset, 0x30)  # responses
    _, single, single_end = _expect(response, start, 0x30)  # the first SingleResponse
    _, _, cert_id_end = _expect(response, single, 0x30)  # its CertID
    return response[single:cert_id_end], response[cert_id_end:single_end]


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of element) of the DER element at *offset* (X.690 8.1.2, 8.1.3)."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    size = first
    if first & 0x80:
        count = first & 0x7F
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + size > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + size


def _expect(data: bytes, offset: int, tag: int) -> tuple[int, int, int]:
    found = read_tlv(data, offset)
    if found[0] != tag:
        raise ValueError(f"DER tag {found[0]:#04x} where {tag:#04x} was expected")
    return found
