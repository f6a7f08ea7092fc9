"""Precertificates and final certificates (RFC 6962 3.1-3.3, BR 7.1.2.9): WS-14b byte for byte."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from subscriber_pki import LEVELS, SCT_LIST, TIMESTAMP_MS, fake_sct, issuing_ca, request, sct_list, sign, template

from candor.errors import CandorError, ErrorKind
from candor.lint.certificates import CertificateKind, lint_certificate
from candor.profiles import (
    POISON_OID,
    SCT_LIST_OID,
    CertificateTemplate,
    check_sct_list,
    final_certificate,
    final_certificate_without_scts,
    precertificate,
    tbs_without_poison_or_scts,
)
from candor.profiles.der import DERError, children, decode_oid, encode, read, remove_extensions
from candor.profiles.subscriber import Level

# RFC 6962 3.1: Extension { extnID 1.3.6.1.4.1.11129.2.4.3, critical TRUE, extnValue OCTET STRING { NULL } }
POISON_DER = bytes.fromhex("3013060a2b06010401d679020403" + "0101ff" + "04020500")


def _tbs(template_: CertificateTemplate, level: Level = "dv") -> bytes:
    return sign(template_, issuing_ca(level).key).tbs_certificate_bytes


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-2048"])
def test_final_tbs_minus_scts_equals_precert_tbs_minus_poison(level: Level, algorithm: str) -> None:
    """WS-14b / BR 7.1.2.9 / RFC 6962 3.2: what a CT log reconstructs from each side is the same bytes, and
    it is exactly the TBS of the certificate built without either extension."""
    precert = precertificate(template(request(level, algorithm=algorithm)))
    final = final_certificate(precert, SCT_LIST)
    precert_tbs, final_tbs = _tbs(precert, level), _tbs(final, level)

    assert POISON_DER in precert_tbs and POISON_DER not in final_tbs
    reconstructed = tbs_without_poison_or_scts(final_tbs)
    assert reconstructed == tbs_without_poison_or_scts(precert_tbs)
    assert reconstructed == _tbs(final_certificate_without_scts(precert), level)
    assert reconstructed != final_tbs and reconstructed != precert_tbs
    # the rest of the final TBS is the reconstructed one plus the SCT extension, nothing else
    assert len(final_tbs) > len(reconstructed) + len(SCT_LIST)


def test_poison_is_critical_null_and_last() -> None:
    precert = precertificate(template(request()))
    assert precert.extensions[-1].oid == POISON_OID and precert.extensions[-1].critical
    assert precert.extensions[:-1] == template(request()).extensions
    certificate = sign(precert, issuing_ca("dv").key)
    last = list(certificate.extensions)[-1]
    assert last.oid == POISON_OID and last.critical and isinstance(last.value, x509.PrecertPoison)
    assert certificate.tbs_certificate_bytes.endswith(POISON_DER)


def test_sct_extension_is_non_critical_last_and_wraps_the_tls_list() -> None:
    final = final_certificate(precertificate(template(request())), SCT_LIST)
    certificate = sign(final, issuing_ca("dv").key)
    last = list(certificate.extensions)[-1]
    assert last.oid == SCT_LIST_OID and not last.critical
    # RFC 6962 3.3: extnValue is an OCTET STRING holding an OCTET STRING holding the TLS-encoded list
    inner = encode(0x04, SCT_LIST)
    assert certificate.tbs_certificate_bytes.endswith(encode(0x04, inner))
    # cryptography parses it back into the two SCTs we put in
    scts = last.value
    assert isinstance(scts, x509.PrecertificateSignedCertificateTimestamps)
    assert [int(s.timestamp.timestamp() * 1000) for s in scts] == [TIMESTAMP_MS, TIMESTAMP_MS + 17]


def test_final_without_scts_is_the_precert_without_poison() -> None:
    base = template(request())
    assert final_certificate_without_scts(precertificate(base)) == base
    report = lint_certificate(
        sign(final_certificate_without_scts(precertificate(base)), issuing_ca("dv").key).public_bytes(Encoding.DER),
        CertificateKind.DV_CERTIFICATE,
    )
    assert report.ok, [str(f) for f in report.errors]


def test_precert_of_a_precert_or_final_is_refused() -> None:
    precert = precertificate(template(request()))
    for not_a_base in (precert, final_certificate(precert, SCT_LIST)):
        with pytest.raises(CandorError) as caught:
            precertificate(not_a_base)
        assert caught.value.kind is ErrorKind.POLICY and "RFC 6962 3.1" in caught.value.message


def test_final_needs_a_precert() -> None:
    base = template(request())
    moved = dataclasses.replace(
        precertificate(base), extensions=(precertificate(base).extensions[-1], *base.extensions)
    )
    for not_a_precert in (base, moved, final_certificate(precertificate(base), SCT_LIST)):
        with pytest.raises(CandorError, match=r"RFC 6962 3\.1"):
            final_certificate(not_a_precert, SCT_LIST)
        with pytest.raises(CandorError, match=r"RFC 6962 3\.1"):
            final_certificate_without_scts(not_a_precert)


GOOD_SCT = fake_sct(b"log", TIMESTAMP_MS)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00",
        b"\x00\x00",  # empty list
        struct.pack(">H", 2) + b"\x00\x00",  # one empty SCT
        struct.pack(">H", len(GOOD_SCT) + 2) + struct.pack(">H", len(GOOD_SCT)) + GOOD_SCT + b"\x00",  # trailing byte
        struct.pack(">H", len(GOOD_SCT) + 1) + struct.pack(">H", len(GOOD_SCT)) + GOOD_SCT[:-1],  # cut SCT
        sct_list(GOOD_SCT)[:-1],
        sct_list(GOOD_SCT) + b"\x00",
        sct_list(b"\x01" + GOOD_SCT[1:]),  # version 2 is not RFC 6962
        sct_list(GOOD_SCT + b"\x00"),  # bytes after the signature
        sct_list(GOOD_SCT[:41] + b"\x00\x00\x04\x03\x00\x00"),  # empty signature
        sct_list(GOOD_SCT[:10]),
        b"\x30\x03\x02\x01\x00",  # DER, not TLS
    ],
)
def test_garbage_sct_lists_are_refused(garbage: bytes) -> None:
    with pytest.raises(CandorError) as caught:
        final_certificate(precertificate(template(request())), garbage)
    assert caught.value.kind is ErrorKind.POLICY and caught.value.message.startswith("RFC 6962 3.")


def test_well_formed_sct_lists_are_accepted() -> None:
    check_sct_list(sct_list(GOOD_SCT))
    check_sct_list(SCT_LIST)
    with_extensions = GOOD_SCT[:41] + b"\x00\x03abc" + GOOD_SCT[43:]
    check_sct_list(sct_list(with_extensions, GOOD_SCT, GOOD_SCT))


def _precert_with(count: int, *, crl: bool) -> CertificateTemplate:
    names = tuple(f"h{i:02d}.example.com" for i in range(count))
    crl_url = "http://pki.example.com/crl/1.crl" if crl else None
    return precertificate(template(request(dns_names=names, common_name=None), crl_url=crl_url))


def _extensions_length_octets(tbs: bytes) -> int:
    """How many octets the Extensions SEQUENCE's length takes (1: short form, 2: 0x81 nn, 3: 0x82 nn nn)."""
    _, start, end = read(tbs, 0, len(tbs))
    *_, (_, _, wrapper_content, wrapper_end) = children(tbs, start, end)
    _, inner_content, _ = read(tbs, wrapper_content, wrapper_end)
    return inner_content - wrapper_content - 1


@pytest.mark.parametrize("crl", [False, True], ids=["ocsp-only", "crl-and-ocsp"])
@pytest.mark.parametrize("count", range(1, 41))
def test_reconstruction_is_exact_at_every_size(count: int, crl: bool) -> None:
    """1..40 SANs, with and without a CRL URL: removing the poison (21 bytes) or the SCT list re-encodes the
    Extensions, [3] and TBSCertificate lengths, and must give the certificate built without them exactly."""
    precert = _precert_with(count, crl=crl)
    expected = _tbs(final_certificate_without_scts(precert))
    assert tbs_without_poison_or_scts(_tbs(precert)) == expected
    assert tbs_without_poison_or_scts(_tbs(final_certificate(precert, SCT_LIST))) == expected


def test_reconstruction_crosses_a_length_form_boundary() -> None:
    """The smallest case above really moves the Extensions length from the 0x82 to the 0x81 form."""
    precert = _precert_with(1, crl=False)
    stripped = tbs_without_poison_or_scts(_tbs(precert))
    assert _extensions_length_octets(_tbs(precert)) == 3
    assert _extensions_length_octets(_tbs(final_certificate(precert, SCT_LIST))) == 3
    assert _extensions_length_octets(stripped) == 2
    assert stripped == _tbs(final_certificate_without_scts(precert))


def test_reconstruction_leaves_other_tbs_alone() -> None:
    tbs = _tbs(template(request()))
    assert tbs_without_poison_or_scts(tbs) == tbs


def test_removing_the_only_extension_drops_the_extensions_field() -> None:
    body = encode(0x02, b"\x05")  # stand-in for the fields before [3]
    tbs = encode(0x30, body + encode(0xA3, encode(0x30, POISON_DER)))
    assert remove_extensions(tbs, {POISON_OID.dotted_string}) == encode(0x30, body)


@pytest.mark.parametrize(
    "broken",
    [b"", b"\x30", b"\x30\x05\x02\x01", b"\x30\x80\x00\x00", b"\x30\x81\x01\x00", b"\x31\x00", b"\x30\x00\x00"],
)
def test_reconstruction_refuses_broken_der(broken: bytes) -> None:
    with pytest.raises(CandorError) as caught:
        tbs_without_poison_or_scts(broken)
    assert caught.value.kind is ErrorKind.INTEGRITY


@pytest.mark.parametrize(
    ("content", "dotted"),
    [
        (bytes.fromhex("2b06010401d679020403"), "1.3.6.1.4.1.11129.2.4.3"),
        (bytes.fromhex("550403"), "2.5.4.3"),
        (bytes.fromhex("8837"), "2.999"),
        (bytes.fromhex("00"), "0.0"),
    ],
)
def test_decode_oid(content: bytes, dotted: str) -> None:
    assert decode_oid(content) == dotted


@pytest.mark.parametrize("content", [b"", b"\x2b\x86", b"\x2b\x80\x01"])
def test_decode_oid_refuses_malformed(content: bytes) -> None:
    with pytest.raises(DERError):
        decode_oid(content)
