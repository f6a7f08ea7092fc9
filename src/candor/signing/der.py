"""Putting a certificate together from a stored TBSCertificate, and turning a precertificate's TBS into the
final certificate's (RFC 5280 4.1, RFC 6962 3.1-3.3). The DER primitives are candor.profiles.der's."""

from __future__ import annotations

from candor.errors import CandorError, ErrorKind
from candor.profiles.der import (
    EXTENSIONS_TAG,
    OBJECT_IDENTIFIER,
    SEQUENCE,
    DERError,
    children,
    encode,
    encode_octet_string,
    read,
    remove_extensions,
)
from candor.profiles.precert import POISON_OID, SCT_LIST_OID, check_sct_list

_SCT_LIST_OID_DER = encode(OBJECT_IDENTIFIER, bytes.fromhex("2b06010401d679020402"))  # 1.3.6.1.4.1.11129.2.4.2


def _top_level(tbs: bytes) -> list[tuple[int, int, int, int]]:
    tag, start, end = read(tbs, 0, len(tbs))
    if tag != SEQUENCE or end != len(tbs):
        raise DERError("a TBSCertificate is exactly one DER SEQUENCE")
    return list(children(tbs, start, end))


def tbs_signature_algorithm(tbs: bytes) -> bytes:
    """The DER of TBSCertificate.signature (RFC 5280 4.1.2.3), which the outer signatureAlgorithm repeats."""
    elements = _top_level(tbs)
    index = 1 if elements and elements[0][0] == 0xA0 else 0  # skip the explicit [0] version
    if len(elements) < index + 2 or elements[index + 1][0] != SEQUENCE:
        raise DERError("the TBSCertificate has no signature AlgorithmIdentifier")
    _tag, element_start, _contents, stop = elements[index + 1]
    return tbs[element_start:stop]


def assemble_certificate(tbs: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }."""
    try:
        algorithm = tbs_signature_algorithm(tbs)
    except DERError as exc:
        raise CandorError(ErrorKind.INTERNAL, f"RFC 5280 4.1: cannot assemble the certificate: {exc}") from None
    return encode(SEQUENCE, tbs + algorithm + encode(0x03, b"\x00" + signature))


def final_tbs_from_precertificate(precert_tbs: bytes, sct_list: bytes | None) -> bytes:
    """The final certificate's TBS: the precertificate's without the poison, with the SCT list extension
    (non-critical) appended last when there is one (RFC 6962 3.3; BR 7.1.2.9)."""
    try:
        without_poison = remove_extensions(precert_tbs, {POISON_OID.dotted_string})
        if without_poison == precert_tbs:
            raise DERError("the precertificate TBS carries no poison extension")
        if sct_list is None:
            return without_poison
        check_sct_list(sct_list)
        extension = encode(SEQUENCE, _SCT_LIST_OID_DER + encode_octet_string(encode_octet_string(sct_list)))
        return _append_extension(without_poison, extension)
    except DERError as exc:
        raise CandorError(ErrorKind.INTERNAL, f"RFC 6962 3.3: cannot build the final TBS: {exc}") from None


def _append_extension(tbs: bytes, extension: bytes) -> bytes:
    elements = _top_level(tbs)
    last_tag, last_start, last_contents, last_end = elements[-1]
    if last_tag != EXTENSIONS_TAG:
        raise DERError("the TBSCertificate has no extensions")
    inner_tag, inner_start, inner_end = read(tbs, last_contents, last_end)
    if inner_tag != SEQUENCE:
        raise DERError("extensions [3] does not hold a SEQUENCE")
    extensions = encode(SEQUENCE, tbs[inner_start:inner_end] + extension)
    body = tbs[_top_level_start(tbs) : last_start] + encode(EXTENSIONS_TAG, extensions)
    return encode(SEQUENCE, body)


def _top_level_start(tbs: bytes) -> int:
    _tag, start, _end = read(tbs, 0, len(tbs))
    return start


__all__ = ["SCT_LIST_OID", "assemble_certificate", "final_tbs_from_precertificate", "tbs_signature_algorithm"]
