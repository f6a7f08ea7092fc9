"""DER for large CRLs, assembled in one pass (RFC 5280 5.1).

cryptography's ``CertificateRevocationListBuilder.add_revoked_certificate`` copies its list on every call
(quadratic), and even through the constructor one ``RevokedCertificate`` object per entry costs about 17 us.
Here cryptography still writes everything but the entries: the TBSCertList of the same CRL without entries
(version, signature algorithm, issuer, thisUpdate, nextUpdate, extensions), signed by a throwaway key. The
entries, whose encoding is fixed and small, are written directly from the stored serial octets, and spliced in
before ``crlExtensions``; the result is then signed by the issuer's key. Every CRL made this way is parsed back
by cryptography and checked before publication (:mod:`candor.revocation.crl.checks`), and the tests check
it with OpenSSL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from candor.errors import CandorError, ErrorKind

# RFC 5280 5.3.1: Extension { extnID id-ce-cRLReasons (2.5.29.21), extnValue OCTET STRING { ENUMERATED } },
# non-critical (BR 7.2.2), wrapped as crlEntryExtensions (SEQUENCE OF Extension). Unspecified (0) is never
# encoded: BR 7.2.2 says the reasonCode extension is then omitted. certificateHold (6) is never allowed.
_REASON_EXTENSIONS = {
    reason: bytes.fromhex("300c300a0603551d1504030a01") + bytes((reason,)) for reason in (1, 2, 3, 4, 5, 8, 9, 10)
}
_EXTENSIONS_TAG = 0xA0  # [0] EXPLICIT crlExtensions of TBSCertList


def length(n: int) -> bytes:
    """A DER length (X.690 8.1.3)."""
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of element) of the element at *offset*."""
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    count = first & 0x7F
    size = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return tag, start, start + size


def children(data: bytes) -> list[bytes]:
    """The elements inside the SEQUENCE *data*, each as its whole encoding."""
    tag, start, end = read_tlv(data, 0)
    if tag != 0x30 or end != len(data):
        raise CandorError(ErrorKind.INTERNAL, "not one DER SEQUENCE")
    elements = []
    offset = start
    while offset < end:
        _, _, element_end = read_tlv(data, offset)
        elements.append(data[offset:element_end])
        offset = element_end
    return elements


def time_der(moment: datetime | str) -> bytes:
    """RFC 5280 5.1.2.6 (as 5.1.2.4): UTCTime through 2049, GeneralizedTime from 2050, in whole seconds, "Z".

    A string is SQLite's stored form of a UTC timestamp (``YYYY-MM-DD HH:MM:SS[.ffffff]``), read without
    conversion on the bulk path."""
    if isinstance(moment, str):
        digits = moment[0:4] + moment[5:7] + moment[8:10] + moment[11:13] + moment[14:16] + moment[17:19]
        if len(digits) != 14 or not digits.isdigit() or moment[4] != "-" or moment[10] not in " T":
            raise CandorError(ErrorKind.STORAGE, f"unexpected stored timestamp {moment!r}")
        year = int(digits[:4])
    else:
        if moment.tzinfo is None:
            raise CandorError(ErrorKind.INTERNAL, "naive revocation time")
        moment = moment.astimezone(UTC)
        year = moment.year
        digits = f"{year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    if 1950 <= year <= 2049:
        return b"\x17\x0d" + digits[2:].encode() + b"Z"
    return b"\x18\x0f" + digits.encode() + b"Z"


def entry_der(serial_octets: bytes, revocation_time: bytes, reason: int) -> bytes:
    """One revokedCertificates entry: SEQUENCE { userCertificate INTEGER, revocationDate Time,
    crlEntryExtensions OPTIONAL } (RFC 5280 5.1.2.6). *serial_octets* are the DER INTEGER content octets exactly
    as stored, so the CRL's serial is byte-identical to the certificate's (BR 7.2.2)."""
    body = b"\x02" + bytes((len(serial_octets),)) + serial_octets + revocation_time
    if reason:
        body += _REASON_EXTENSIONS[reason]
    return b"\x30" + length(len(body)) + body


def splice_entries(skeleton_tbs: bytes, entries: Iterable[bytes]) -> bytes:
    """The TBSCertList *skeleton_tbs* (no revokedCertificates) with *entries* inserted before crlExtensions.
    With no entries the field stays absent (RFC 5280 5.1.2.6)."""
    parts = children(skeleton_tbs)
    if not parts or parts[-1][0] != _EXTENSIONS_TAG:
        raise CandorError(ErrorKind.INTERNAL, "the CRL skeleton has no crlExtensions")
    joined = b"".join(entries)
    revoked = [b"\x30" + length(len(joined)) + joined] if joined else []
    content = b"".join([*parts[:-1], *revoked, parts[-1]])
    return b"\x30" + length(len(content)) + content


def certificate_list(tbs: bytes, signature_algorithm: bytes, signature: bytes) -> bytes:
    """CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING } (5.1.1)."""
    content = tbs + signature_algorithm + tlv(0x03, b"\x00" + signature)
    return b"\x30" + length(len(content)) + content
