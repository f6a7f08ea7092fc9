"""RFC 6962 wire structures (TLS presentation language, RFC 5246 4): log entries, SCTs, tree heads.

Everything here is bytes in, bytes out: the log signs what :func:`sct_signature_input` and
:func:`sth_signature_input` return, and stores :func:`merkle_tree_leaf`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

V1 = 0  # RFC 6962 3.2 Version v1(0)
SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP = 0  # 3.2 SignatureType
SIGNATURE_TYPE_TREE_HASH = 1
LEAF_TYPE_TIMESTAMPED_ENTRY = 0  # 3.4 MerkleLeafType
HASH_SHA256 = 4  # RFC 5246 7.4.1.4.1 HashAlgorithm sha256(4)
SIGNATURE_ECDSA = 3  # RFC 5246 7.4.1.4.1 SignatureAlgorithm ecdsa(3)
EXTENSION_LEAF_INDEX = 0  # static-ct-api "SCT Extension": leaf_index(0), a uint40


class EntryType(enum.IntEnum):
    """RFC 6962 3.1 LogEntryType."""

    X509 = 0
    PRECERT = 1


class TLSError(ValueError):
    """Bytes that are not the structure they should be."""


def opaque(data: bytes, length_bytes: int) -> bytes:
    """``opaque x<0..2^(8*length_bytes)-1>``: the length, big-endian, then the bytes."""
    if len(data) >= 1 << (8 * length_bytes):
        raise TLSError(f"{len(data)} bytes do not fit a {length_bytes}-byte length")
    return len(data).to_bytes(length_bytes, "big") + data


def read_opaque(data: bytes, offset: int, length_bytes: int) -> tuple[bytes, int]:
    """The opaque value at *offset* and the offset after it."""
    end = offset + length_bytes
    if end > len(data):
        raise TLSError("truncated length")
    length = int.from_bytes(data[offset:end], "big")
    if end + length > len(data):
        raise TLSError("truncated value")
    return data[end : end + length], end + length


@dataclass(frozen=True)
class SignedEntry:
    """The ``signed_entry`` of RFC 6962 3.2/3.4: an X.509 certificate, or a PreCert (issuer_key_hash, TBS)."""

    entry_type: EntryType
    certificate: bytes = b""  # x509_entry: the certificate's DER
    issuer_key_hash: bytes = b""  # precert_entry: SHA-256 of the issuer's SubjectPublicKeyInfo
    tbs_certificate: bytes = b""  # precert_entry: the TBSCertificate without the poison extension

    def encode(self) -> bytes:
        if self.entry_type is EntryType.X509:
            return opaque(self.certificate, 3)  # ASN.1Cert: opaque<1..2^24-1>
        if len(self.issuer_key_hash) != 32:
            raise TLSError("issuer_key_hash is 32 bytes")
        return self.issuer_key_hash + opaque(self.tbs_certificate, 3)  # PreCert


def leaf_index_extension(index: int) -> bytes:
    """static-ct-api: CtExtensions holding one ``leaf_index`` Extension (type, opaque<0..2^16-1> uint40)."""
    if not 0 <= index < 1 << 40:
        raise TLSError(f"leaf index {index} does not fit 40 bits")
    return bytes([EXTENSION_LEAF_INDEX]) + opaque(index.to_bytes(5, "big"), 2)


def leaf_index_of(extensions: bytes) -> int | None:
    """The ``leaf_index`` in a CtExtensions value, if it has one."""
    offset = 0
    while offset < len(extensions):
        kind = extensions[offset]
        value, offset = read_opaque(extensions, offset + 1, 2)
        if kind == EXTENSION_LEAF_INDEX and len(value) == 5:
            return int.from_bytes(value, "big")
    return None


def timestamped_entry(timestamp: int, entry: SignedEntry, extensions: bytes) -> bytes:
    """RFC 6962 3.4 TimestampedEntry: uint64 timestamp, LogEntryType, signed_entry, CtExtensions."""
    return timestamp.to_bytes(8, "big") + entry.entry_type.to_bytes(2, "big") + entry.encode() + opaque(extensions, 2)


def merkle_tree_leaf(timestamp: int, entry: SignedEntry, extensions: bytes) -> bytes:
    """RFC 6962 3.4 MerkleTreeLeaf: version v1, leaf_type timestamped_entry, the TimestampedEntry."""
    return bytes([V1, LEAF_TYPE_TIMESTAMPED_ENTRY]) + timestamped_entry(timestamp, entry, extensions)


def sct_signature_input(timestamp: int, entry: SignedEntry, extensions: bytes) -> bytes:
    """RFC 6962 3.2: the digitally-signed struct of an SCT (version, certificate_timestamp, timestamp,
    entry_type, signed_entry, extensions)."""
    return bytes([V1, SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP]) + timestamped_entry(timestamp, entry, extensions)


def sth_signature_input(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """RFC 6962 3.5 TreeHeadSignature: version, tree_hash, timestamp, tree_size, sha256_root_hash."""
    if len(root_hash) != 32:
        raise TLSError("sha256_root_hash is 32 bytes")
    return (
        bytes([V1, SIGNATURE_TYPE_TREE_HASH]) + timestamp.to_bytes(8, "big") + tree_size.to_bytes(8, "big") + root_hash
    )


def digitally_signed(signature_der: bytes) -> bytes:
    """RFC 5246 4.7 DigitallySigned with SHA-256 and ECDSA (RFC 6962 2.1.4): hash, signature, opaque<0..2^16-1>."""
    return bytes([HASH_SHA256, SIGNATURE_ECDSA]) + opaque(signature_der, 2)


def parse_digitally_signed(data: bytes) -> bytes:
    """The DER ECDSA signature inside an RFC 6962 DigitallySigned (SHA-256/ECDSA only)."""
    if len(data) < 4 or data[0] != HASH_SHA256 or data[1] != SIGNATURE_ECDSA:
        raise TLSError("not a SHA-256/ECDSA DigitallySigned")
    signature, end = read_opaque(data, 2, 2)
    if end != len(data):
        raise TLSError("trailing bytes after the signature")
    return signature


def serialized_sct(log_id: bytes, timestamp: int, extensions: bytes, signature_der: bytes) -> bytes:
    """RFC 6962 3.2 SignedCertificateTimestamp as it goes into an SCT list (3.3)."""
    return bytes([V1]) + log_id + timestamp.to_bytes(8, "big") + opaque(extensions, 2) + digitally_signed(signature_der)


def sct_list(scts: Sequence[bytes]) -> bytes:
    """RFC 6962 3.3 SignedCertificateTimestampList: ``SerializedSCT sct_list<1..2^16-1>``."""
    return opaque(b"".join(opaque(sct, 2) for sct in scts), 2)


def certificate_chain(chain: Sequence[bytes]) -> bytes:
    """``ASN.1Cert certificate_chain<0..2^24-1>`` (RFC 6962 3.1, 4.6)."""
    return opaque(b"".join(opaque(der, 3) for der in chain), 3)


def extra_data(entry_type: EntryType, chain: Sequence[bytes], precertificate: bytes | None) -> bytes:
    """RFC 6962 4.6 ``extra_data``: the chain for an x509_entry; a PrecertChainEntry (the precertificate, then
    its chain) for a precert_entry."""
    if entry_type is EntryType.X509:
        return certificate_chain(chain)
    if precertificate is None:
        raise TLSError("a precert_entry carries its precertificate")
    return opaque(precertificate, 3) + certificate_chain(chain)


@dataclass(frozen=True)
class ParsedLeaf:
    timestamp: int
    entry: SignedEntry
    extensions: bytes


def parse_merkle_tree_leaf(data: bytes) -> ParsedLeaf:
    """Read a MerkleTreeLeaf (RFC 6962 3.4) back: the inverse of :func:`merkle_tree_leaf`."""
    if len(data) < 12 or data[0] != V1 or data[1] != LEAF_TYPE_TIMESTAMPED_ENTRY:
        raise TLSError("not a v1 timestamped_entry MerkleTreeLeaf")
    timestamp = int.from_bytes(data[2:10], "big")
    try:
        entry_type = EntryType(int.from_bytes(data[10:12], "big"))
    except ValueError:
        raise TLSError("unknown LogEntryType") from None
    if entry_type is EntryType.X509:
        certificate, offset = read_opaque(data, 12, 3)
        entry = SignedEntry(EntryType.X509, certificate=certificate)
    else:
        key_hash = data[12:44]
        tbs, offset = read_opaque(data, 44, 3)
        entry = SignedEntry(EntryType.PRECERT, issuer_key_hash=key_hash, tbs_certificate=tbs)
    extensions, offset = read_opaque(data, offset, 2)
    if offset != len(data):
        raise TLSError("trailing bytes after the MerkleTreeLeaf")
    return ParsedLeaf(timestamp, entry, extensions)
