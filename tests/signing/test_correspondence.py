"""BR 4.3.1.2: the final certificate is admitted by its correspondence to the linted precertificate (RFC 6962),
and only then; where it is admitted, pkilint finds the final certificate as clean as it found the precertificate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))

from subscriber_pki import fake_sct, issuing_ca, request, sct_list, template

from candor import signing
from candor.errors import CandorError, ErrorKind
from candor.lint import CertificateKind, lint_certificate
from candor.policy.algorithms import KeyAlgorithm
from candor.profiles import final_certificate, final_certificate_without_scts, precertificate, to_builder
from candor.profiles.der import remove_extensions
from candor.signing.der import require_correspondence

SCTS = sct_list(fake_sct(b"log-a", 1_700_000_000_000), fake_sct(b"log-b", 1_700_000_000_001))


def _tbs(template_: object) -> bytes:
    return to_builder(template_).sign(issuing_ca("dv").key, hashes.SHA256()).tbs_certificate_bytes  # type: ignore[arg-type]


def _precert(serial: int = 0x7A3B_19C2_55D0_E61F_0123) -> object:
    return precertificate(template(request("dv", common_name=None), serial=serial))


@pytest.mark.parametrize("scts", [None, SCTS], ids=["private", "with-scts"])
def test_the_final_built_from_the_precertificate_corresponds_and_lints_clean(scts: bytes | None) -> None:
    precert_tbs = _tbs(_precert())
    final_tbs = signing.final_tbs_from_precertificate(precert_tbs, scts)
    token = signing.corresponding_final(precert_tbs, final_tbs, scts, algorithm=KeyAlgorithm.ECDSA_P256)
    key = issuing_ca("dv").key
    certificate = signing.sign(token, key, issuer_key=key.public_key())
    from cryptography.hazmat.primitives.serialization import Encoding

    # The lint the control stands in for: the precertificate's verdict carries over to the final certificate.
    precert_report = lint_certificate(_tbs_certificate(precert_tbs), CertificateKind.DV_PRECERTIFICATE)
    final_report = lint_certificate(certificate.public_bytes(Encoding.DER), CertificateKind.DV_CERTIFICATE)
    assert precert_report.ok and final_report.ok


def _tbs_certificate(tbs: bytes) -> bytes:
    from candor.signing.der import assemble_certificate

    return assemble_certificate(tbs, b"\x00" * 64)


def test_the_profiles_own_final_corresponds() -> None:
    """An independent construction (the template API, not the DER splice) passes the same control."""
    precert = _precert()
    require_correspondence(_tbs(precert), _tbs(final_certificate(precert, SCTS)), SCTS)  # type: ignore[arg-type]
    require_correspondence(_tbs(precert), _tbs(final_certificate_without_scts(precert)), None)  # type: ignore[arg-type]


def _refused(precert_tbs: bytes, final_tbs: bytes, scts: bytes | None) -> None:
    with pytest.raises(CandorError, match=r"BR 4\.3\.1\.2") as caught:
        require_correspondence(precert_tbs, final_tbs, scts)
    assert caught.value.kind is ErrorKind.INTERNAL


def test_a_final_with_any_other_field_changed_is_refused() -> None:
    other_serial = _tbs(final_certificate_without_scts(_precert(serial=0x7A3B_19C2_55D0_E61F_0124)))  # type: ignore[arg-type]
    _refused(_tbs(_precert()), other_serial, None)


def test_a_final_still_poisoned_or_with_other_extensions_is_refused() -> None:
    precert_tbs = _tbs(_precert())
    _refused(precert_tbs, precert_tbs, None)  # the poison is still there
    final_tbs = signing.final_tbs_from_precertificate(precert_tbs, None)
    _refused(precert_tbs, remove_extensions(final_tbs, {"2.5.29.17"}), None)  # a SAN dropped
    _refused(precert_tbs, final_tbs, SCTS)  # SCTs promised, none embedded
    _refused(precert_tbs, signing.final_tbs_from_precertificate(precert_tbs, SCTS), None)  # SCTs not promised
    other = sct_list(fake_sct(b"log-c", 1_700_000_000_002))
    _refused(precert_tbs, signing.final_tbs_from_precertificate(precert_tbs, other), SCTS)  # other SCTs


def test_a_precertificate_without_its_poison_admits_nothing() -> None:
    plain = _tbs(template(request("dv", common_name=None)))
    _refused(plain, plain, None)
