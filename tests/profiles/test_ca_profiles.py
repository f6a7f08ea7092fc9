"""CA profiles are pure functions; the BR bounds on them hold at the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from candor.errors import CandorError, ErrorKind
from candor.profiles import (
    POLICY_DV,
    POLICY_OV,
    CASubject,
    IssuerInfo,
    ocsp_responder,
    root_ca,
    tls_subordinate_ca,
    tsa_subordinate_ca,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, 654321, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP384R1()).public_key()
SUBJECT = CASubject(country="US", organization="Candor", common_name="Candor Test").to_name()
ISSUER = IssuerInfo(
    name=SUBJECT,
    public_key=KEY,
    not_after=NOW + timedelta(days=3000),
    certificate_url="http://pki.example.com/issuers/root.der",
    crl_url="http://pki.example.com/crl/root.crl",
)


@pytest.mark.parametrize(("days", "ok"), [(2921, False), (2922, True), (9132, True), (9133, False)])
def test_root_validity_is_bounded_by_br_7_1_2_1_1(days: int, ok: bool) -> None:
    if ok:
        template = root_ca(subject=SUBJECT, public_key=KEY, serial=1 << 100, now=NOW, validity_days=days)
        assert template.not_after - template.not_before == timedelta(days=days) - timedelta(seconds=1)
    else:
        with pytest.raises(CandorError) as caught:
            root_ca(subject=SUBJECT, public_key=KEY, serial=1 << 100, now=NOW, validity_days=days)
        assert caught.value.kind is ErrorKind.POLICY and "BR 7.1.2.1.1" in caught.value.message


def test_root_has_no_eku_no_policies_and_no_path_length() -> None:
    template = root_ca(subject=SUBJECT, public_key=KEY, serial=5, now=NOW, validity_days=9125)
    oids = {e.oid for e in template.extensions}
    assert ExtensionOID.EXTENDED_KEY_USAGE not in oids and ExtensionOID.CERTIFICATE_POLICIES not in oids
    constraints = template.extension(ExtensionOID.BASIC_CONSTRAINTS)
    assert constraints is not None and constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=None)
    assert template.not_before == NOW.replace(microsecond=0)


def test_subordinate_cannot_outlive_its_issuer() -> None:
    with pytest.raises(CandorError, match="after the issuer's notAfter"):
        tls_subordinate_ca(
            subject=SUBJECT, public_key=KEY, serial=7, now=NOW, validity_days=3001, issuer=ISSUER, policies=(POLICY_DV,)
        )


@pytest.mark.parametrize("policies", [(), (POLICY_DV, POLICY_OV), (x509.ObjectIdentifier("2.5.29.32.0"),)])
def test_tls_ca_carries_exactly_one_reserved_policy(policies: tuple[x509.ObjectIdentifier, ...]) -> None:
    with pytest.raises(CandorError, match="exactly one reserved"):
        tls_subordinate_ca(
            subject=SUBJECT, public_key=KEY, serial=7, now=NOW, validity_days=365, issuer=ISSUER, policies=policies
        )


def test_tsa_ca_is_for_time_stamping_only() -> None:
    template = tsa_subordinate_ca(subject=SUBJECT, public_key=KEY, serial=9, now=NOW, validity_days=365, issuer=ISSUER)
    eku = template.extension(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku is not None and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]  # type: ignore[call-overload]


@pytest.mark.parametrize("validity", [timedelta(0), timedelta(days=91)])
def test_ocsp_responder_is_short_lived(validity: timedelta) -> None:
    with pytest.raises(CandorError, match="90 days"):
        ocsp_responder(subject=SUBJECT, public_key=KEY, serial=3, now=NOW, validity=validity, issuer=ISSUER)


def test_ocsp_responder_carries_nocheck_and_only_ocsp_signing() -> None:
    template = ocsp_responder(
        subject=SUBJECT, public_key=KEY, serial=3, now=NOW, validity=timedelta(days=30), issuer=ISSUER
    )
    assert template.extension(ExtensionOID.OCSP_NO_CHECK) is not None
    eku = template.extension(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku is not None and list(eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]  # type: ignore[call-overload]


@pytest.mark.parametrize("country", ["usa", "U", "us", "1A"])
def test_country_is_an_iso_3166_alpha_2_code(country: str) -> None:
    with pytest.raises(ValueError, match="ISO 3166-1"):
        CASubject(country=country, organization="Candor", common_name="x")


@pytest.mark.parametrize("value", [" Candor", "-", "..."])
def test_meaningless_attribute_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"BR 7\.1\.4\.3"):
        CASubject(country="US", organization=value, common_name="x")
