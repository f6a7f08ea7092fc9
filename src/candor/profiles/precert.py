"""Precertificates and the certificates that follow them (RFC 6962 3.1-3.3, BR 7.1.2.9).

A precertificate is the final certificate's template plus the critical poison extension; the final certificate
is the same template with the poison replaced by the SCT list. Both extensions go LAST, so that removing
either from its TBSCertificate gives the same bytes: that is what a CT log reconstructs and what BR 7.1.2.9
means by "a corresponding Certificate" (WS-14b). The precertificate is signed directly by the issuing CA
(BR 7.1.2.4: no Precertificate Signing CA).
"""

from __future__ import annotations

import dataclasses

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from candor.errors import CandorError, ErrorKind
from candor.profiles.der import DERError, encode_octet_string, remove_extensions
from candor.profiles.template import CertificateTemplate, ext

POISON_OID = ExtensionOID.PRECERT_POISON  # 1.3.6.1.4.1.11129.2.4.3, RFC 6962 3.1
SCT_LIST_OID = ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS  # 1.3.6.1.4.1.11129.2.4.2, RFC 6962 3.3

_SCT_V1 = 0  # RFC 6962 3.2: Version v1(0)
_SCT_FIXED = 1 + 32 + 8  # version, LogID (SHA-256 of the log key), uint64 timestamp


def _policy(message: str) -> CandorError:
    return CandorError(ErrorKind.POLICY, message)


def precertificate(template: CertificateTemplate) -> CertificateTemplate:
    """RFC 6962 3.1: the template plus the critical poison extension (extnValue ASN.1 NULL), appended last."""
    for oid in (POISON_OID, SCT_LIST_OID):
        if template.extension(oid) is not None:
            raise _policy(
                f"RFC 6962 3.1: a precertificate is made from a template without the {oid.dotted_string} extension"
            )
    return dataclasses.replace(template, extensions=(*template.extensions, ext(x509.PrecertPoison(), critical=True)))


def _without_poison(precert: CertificateTemplate) -> tuple[x509.Extension[x509.ExtensionType], ...]:
    extensions = precert.extensions
    if not extensions or extensions[-1].oid != POISON_OID or not extensions[-1].critical:
        raise _policy("RFC 6962 3.1: the template is not a precertificate (no critical poison extension last)")
    if any(e.oid in (POISON_OID, SCT_LIST_OID) for e in extensions[:-1]):
        raise _policy("RFC 6962 3.1: the precertificate template carries a second poison or an SCT list")
    return extensions[:-1]


def final_certificate(precert_template: CertificateTemplate, sct_list: bytes) -> CertificateTemplate:
    """RFC 6962 3.3 / BR 7.1.2.9: the precertificate without the poison and with the SCT list extension
    (non-critical; extnValue = OCTET STRING containing the TLS SignedCertificateTimestampList) appended last."""
    extensions = _without_poison(precert_template)
    check_sct_list(sct_list)
    # UnrecognizedExtension's value is written as the extnValue contents: add the inner OCTET STRING here
    scts = x509.UnrecognizedExtension(SCT_LIST_OID, encode_octet_string(sct_list))
    return dataclasses.replace(precert_template, extensions=(*extensions, ext(scts, critical=False)))


def final_certificate_without_scts(precert_template: CertificateTemplate) -> CertificateTemplate:
    """The certificate for a precertificate when the issuer does not embed SCTs (a private hierarchy run
    without CT): the poison removed and nothing added."""
    return dataclasses.replace(precert_template, extensions=_without_poison(precert_template))


def check_sct_list(sct_list: bytes) -> None:
    """RFC 6962 3.3: ``opaque SerializedSCT<1..2^16-1>; struct { SerializedSCT sct_list<1..2^16-1>; }``,
    each SerializedSCT a v1 SignedCertificateTimestamp (RFC 6962 3.2). Checks the structure only: whether the
    SCTs are genuine is the CT submission's business (WS-14a)."""
    if len(sct_list) < 2:
        raise _policy("RFC 6962 3.3: the SCT list is shorter than its length prefix")
    total = int.from_bytes(sct_list[:2], "big")
    body = sct_list[2:]
    if total == 0 or total != len(body):
        raise _policy(f"RFC 6962 3.3: the SCT list announces {total} bytes but carries {len(body)} (at least 1)")
    offset = 0
    count = 0
    while offset < len(body):
        if offset + 2 > len(body):
            raise _policy(f"RFC 6962 3.3: SCT {count} is cut inside its length prefix")
        length = int.from_bytes(body[offset : offset + 2], "big")
        start = offset + 2
        if length == 0 or start + length > len(body):
            raise _policy(f"RFC 6962 3.3: SCT {count} announces {length} bytes, {len(body) - start} remain")
        _check_sct(body[start : start + length], count)
        offset = start + length
        count += 1


def _check_sct(sct: bytes, index: int) -> None:
    """RFC 6962 3.2: version(1) = v1, LogID(32), timestamp(8), CtExtensions<0..2^16-1>,
    digitally-signed: hash(1), signature algorithm(1), signature<0..2^16-1> (non-empty), nothing after."""
    where = f"RFC 6962 3.2: SCT {index}"
    if len(sct) < _SCT_FIXED + 2 + 2 + 2:
        raise _policy(f"{where} is too short ({len(sct)} bytes)")
    if sct[0] != _SCT_V1:
        raise _policy(f"{where} has version {sct[0]}, not v1(0)")
    offset = _SCT_FIXED
    extensions_length = int.from_bytes(sct[offset : offset + 2], "big")
    offset += 2 + extensions_length
    if offset + 4 > len(sct):
        raise _policy(f"{where} is cut inside its extensions or signature header")
    offset += 2  # SignatureAndHashAlgorithm (RFC 5246 7.4.1.4.1)
    signature_length = int.from_bytes(sct[offset : offset + 2], "big")
    offset += 2
    if signature_length == 0 or offset + signature_length != len(sct):
        raise _policy(f"{where} has a signature of {signature_length} bytes where {len(sct) - offset} remain")


def tbs_without_poison_or_scts(tbs_der: bytes) -> bytes:
    """The DER TBSCertificate *tbs_der* without the poison and SCT list extensions, lengths re-encoded: the
    TBS a CT log reconstructs from a precertificate or a final certificate (RFC 6962 3.2)."""
    try:
        return remove_extensions(tbs_der, {POISON_OID.dotted_string, SCT_LIST_OID.dotted_string})
    except DERError as exc:
        raise CandorError(ErrorKind.INTEGRITY, f"RFC 6962 3.2: cannot reconstruct the TBSCertificate: {exc}") from None
