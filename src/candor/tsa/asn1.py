"""Object identifiers and algorithm tables of the time-stamp protocol, as complete DER encodings.

RFC 3161 (TSP), RFC 5652 (CMS), RFC 5035 and RFC 5816 (ESSCertIDv2), RFC 5754 (SHA-2 in CMS), RFC 8702 (SHA-3).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from candor.profiles.der import OBJECT_IDENTIFIER, SEQUENCE, encode


def encode_oid(dotted: str) -> bytes:
    """X.690 8.19: the complete OBJECT IDENTIFIER TLV of a dotted OID."""
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError(f"{dotted!r} has fewer than two arcs")
    content = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        content.extend(reversed(chunk))
    return encode(OBJECT_IDENTIFIER, bytes(content))


def algorithm_identifier(dotted: str, parameters: bytes = b"") -> bytes:
    return encode(SEQUENCE, encode_oid(dotted) + parameters)


NULL = b"\x05\x00"
ID_SIGNED_DATA = encode_oid("1.2.840.113549.1.7.2")  # RFC 5652 5.1
ID_CT_TSTINFO = encode_oid("1.2.840.113549.1.9.16.1.4")  # RFC 3161 2.4.2
ID_CONTENT_TYPE = encode_oid("1.2.840.113549.1.9.3")  # RFC 5652 11.1
ID_MESSAGE_DIGEST = encode_oid("1.2.840.113549.1.9.4")  # RFC 5652 11.2
ID_SIGNING_CERTIFICATE_V2 = encode_oid("1.2.840.113549.1.9.16.2.47")  # RFC 5035 5.4
ID_SIGNING_CERTIFICATE = encode_oid("1.2.840.113549.1.9.16.2.12")  # RFC 2634 5.4 (ESSCertID, SHA-1)
RSA_ENCRYPTION = algorithm_identifier("1.2.840.113549.1.1.1", NULL)  # RFC 3370 3.2: SignerInfo signatureAlgorithm


@dataclass(frozen=True)
class HashAlgorithm:
    """A hash a client may time-stamp (its imprint) or a token may be signed with."""

    name: str
    oid: str
    length: int  # octets of the digest: a hashedMessage of another length is refused (RFC 3161 2.4.1)
    hash: type[hashes.HashAlgorithm]

    def new(self) -> hashes.HashAlgorithm:
        return self.hash()

    @property
    def identifier(self) -> bytes:
        """The AlgorithmIdentifier with parameters absent (RFC 5754 2: the preferred encoding)."""
        return algorithm_identifier(self.oid)


_NIST = "2.16.840.1.101.3.4.2."
IMPRINT_ALGORITHMS: dict[str, HashAlgorithm] = {
    a.oid: a
    for a in (
        HashAlgorithm("SHA-224", _NIST + "4", 28, hashes.SHA224),
        HashAlgorithm("SHA-256", _NIST + "1", 32, hashes.SHA256),
        HashAlgorithm("SHA-384", _NIST + "2", 48, hashes.SHA384),
        HashAlgorithm("SHA-512", _NIST + "3", 64, hashes.SHA512),
        HashAlgorithm("SHA-512/224", _NIST + "5", 28, hashes.SHA512_224),
        HashAlgorithm("SHA-512/256", _NIST + "6", 32, hashes.SHA512_256),
        HashAlgorithm("SHA3-224", _NIST + "7", 28, hashes.SHA3_224),
        HashAlgorithm("SHA3-256", _NIST + "8", 32, hashes.SHA3_256),
        HashAlgorithm("SHA3-384", _NIST + "9", 48, hashes.SHA3_384),
        HashAlgorithm("SHA3-512", _NIST + "10", 64, hashes.SHA3_512),
    )
}
# Refused by name in the rejection's statusString (CSBR 6.8: SHA-1; the others are broken too).
REFUSED_IMPRINT_ALGORITHMS = {
    "1.3.14.3.2.26": "SHA-1",
    "1.2.840.113549.2.5": "MD5",
    "1.2.840.113549.2.4": "MD4",
    "1.2.840.113549.2.2": "MD2",
    "1.3.36.3.2.1": "RIPEMD-160",
}
BY_NAME = {a.new().name: a for a in IMPRINT_ALGORITHMS.values()}  # cryptography's name ("sha384") -> algorithm
BY_OID_CONTENT = {encode_oid(a.oid)[2:]: a for a in IMPRINT_ALGORITHMS.values()}  # the OID's DER contents -> it

# ECDSA signature AlgorithmIdentifiers (RFC 5758 3.2: parameters absent), by the hash they sign with.
ECDSA_WITH = {
    "sha256": algorithm_identifier("1.2.840.10045.4.3.2"),
    "sha384": algorithm_identifier("1.2.840.10045.4.3.3"),
    "sha512": algorithm_identifier("1.2.840.10045.4.3.4"),
}
