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
    decode_oid,
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


# The poison extension exactly as RFC 6962 3.1 defines it: critical, extnValue an OCTET STRING holding NULL.
_POISON_OID_DER = encode(OBJECT_IDENTIFIER, bytes.fromhex("2b06010401d679020403"))  # 1.3.6.1.4.1.11129.2.4.3
_POISON_DER = encode(SEQUENCE, _POISON_OID_DER + b"\x01\x01\xff" + encode_octet_string(b"\x05\x00"))


def require_correspondence(precert_tbs: bytes, final_tbs: bytes, sct_list: bytes | None) -> None:
    """The technical control of BR 4.3.1.2 that lets a linted precertificate stand for its final certificate:
    *final_tbs* corresponds to *precert_tbs* as RFC 6962 3.1-3.2 describe. Checked independently of how the
    final TBS was built: every TBSCertificate field but the extensions byte for byte equal; the extensions
    equal, in the same order and byte for byte, except that the precertificate's one poison extension (critical,
    NULL) is gone and, when there are SCTs, one non-critical SCT list extension holding exactly *sct_list*
    is last. Anything else is ``ErrorKind.INTERNAL`` and nothing is signed."""
    try:
        precert, final = _top_level(precert_tbs), _top_level(final_tbs)
        if len(precert) != len(final) or not precert or precert[-1][0] != EXTENSIONS_TAG:
            raise DERError("the two TBSCertificates do not have the same fields")
        for (_t1, start1, _c1, end1), (_t2, start2, _c2, end2) in zip(precert[:-1], final[:-1], strict=True):
            if precert_tbs[start1:end1] != final_tbs[start2:end2]:
                raise DERError("a TBSCertificate field other than the extensions differs")
        precert_extensions = _extensions(precert_tbs, precert[-1])
        final_extensions = _extensions(final_tbs, final[-1])
        poisons = [e for e in precert_extensions if _extension_oid(e) == POISON_OID.dotted_string]
        if poisons != [_POISON_DER]:
            raise DERError("the precertificate does not carry exactly one well-formed poison extension")
        expected = [e for e in precert_extensions if e != _POISON_DER]
        if sct_list is not None:
            check_sct_list(sct_list)
            expected.append(encode(SEQUENCE, _SCT_LIST_OID_DER + encode_octet_string(encode_octet_string(sct_list))))
        if final_extensions != expected:
            raise DERError("the final certificate's extensions are not the precertificate's less the poison")
    except DERError as exc:
        raise CandorError(
            ErrorKind.INTERNAL, f"BR 4.3.1.2: the final certificate does not correspond to its precertificate: {exc}"
        ) from None


def _extensions(tbs: bytes, element: tuple[int, int, int, int]) -> list[bytes]:
    _tag, _start, contents, end = element
    inner_tag, inner_start, inner_end = read(tbs, contents, end)
    if inner_tag != SEQUENCE or inner_end != end:
        raise DERError("extensions [3] does not hold exactly one SEQUENCE")
    found = []
    for tag, start, _contents, stop in children(tbs, inner_start, inner_end):
        if tag != SEQUENCE:
            raise DERError("an extension is not a SEQUENCE")
        found.append(tbs[start:stop])
    return found


def _extension_oid(extension: bytes) -> str:
    _tag, start, end = read(extension, 0, len(extension))
    tag, oid_start, oid_end = read(extension, start, end)
    if tag != OBJECT_IDENTIFIER:
        raise DERError("an extension does not start with its extnID")
    return decode_oid(extension[oid_start:oid_end])


def _top_level_start(tbs: bytes) -> int:
    _tag, start, _end = read(tbs, 0, len(tbs))
    return start


__all__ = [
    "SCT_LIST_OID",
    "assemble_certificate",
    "final_tbs_from_precertificate",
    "require_correspondence",
    "tbs_signature_algorithm",
]
