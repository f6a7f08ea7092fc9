"""Subscriber TLS certificates (BR 7.1.2.7): pkilint-clean at every level and for both key types, accepted by
OpenSSL as TLS server certificates, and every bound of the profile enforced at its edge."""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID
from subscriber_pki import (
    BACKDATE,
    EV_ORGANIZATION,
    LEVELS,
    MAX_VALIDITY,
    NOW,
    ORGANIZATION,
    PUBLIC_IPV4,
    PUBLIC_IPV6,
    SCT_LIST,
    issuing_ca,
    request,
    root,
    sign,
    template,
)

from candor.errors import CandorError, ErrorKind
from candor.lint.certificates import CertificateKind, LintReport, kind_for, lint_certificate
from candor.profiles import (
    POLICY_DV,
    POLICY_EV,
    POLICY_OV,
    CertificateTemplate,
    SubscriberRequest,
    VettedOrganization,
    final_certificate,
    precertificate,
)
from candor.profiles.subscriber import Level

ALGORITHMS = ("ecdsa-p256", "rsa-2048")
RSA_KU_WARNING = "cabf.serverauth.subscriber_rsa_digitalsignature_and_keyencipherment_present"
CN_WARNING = {
    "dv": "cabf.serverauth.dv.common_name_attribute_present",
    "ov": "cabf.serverauth.ov.common_name_attribute_present",
    "ev": "cabf.ev_guidelines.common_name_attribute_present",
}
EXTENSION_ORDER = [
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
]


def _der(template_: CertificateTemplate, level: Level) -> bytes:
    return sign(template_, issuing_ca(level).key).public_bytes(Encoding.DER)


def _lint(template_: CertificateTemplate, level: Level, *, precert: bool) -> LintReport:
    report = lint_certificate(_der(template_, level), kind_for(level, precert))
    assert report.ok, [str(f) for f in report.errors]
    return report


def _refused(fragment: str, subscriber: SubscriberRequest | None = None, **kwargs: object) -> CandorError:
    with pytest.raises(CandorError) as caught:
        template(subscriber if subscriber is not None else request(), **kwargs)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.POLICY
    assert fragment in caught.value.message, caught.value.message
    assert "\n" not in caught.value.message
    return caught.value


def _openssl_verify(tmp_path: Path, leaf: bytes, level: Level) -> subprocess.CompletedProcess[str]:
    files = {
        "root.pem": root().certificate.public_bytes(Encoding.PEM),
        "sub.pem": issuing_ca(level).certificate.public_bytes(Encoding.PEM),
        "leaf.pem": x509.load_der_x509_certificate(leaf).public_bytes(Encoding.PEM),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-attime",
            str(int(NOW.timestamp())),
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "sub.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


# --- the matrix: every level x key type x (precertificate, final certificate with SCTs) ------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("common_name", [None, "www.example.com"])
def test_precert_and_final_lint_clean(level: Level, algorithm: str, common_name: str | None, tmp_path: Path) -> None:
    precert = precertificate(template(request(level, algorithm=algorithm, common_name=common_name)))
    final = final_certificate(precert, SCT_LIST)

    expected_warnings: set[str] = set()
    if algorithm == "rsa-2048":
        expected_warnings.add(RSA_KU_WARNING)  # BR 7.1.2.7.11 allows both bits; pkilint calls the pair a warning
    if common_name is not None:
        expected_warnings.add(CN_WARNING[level])  # BR 7.1.2.7.2-.4 / EVG: commonName NOT RECOMMENDED
    for variant, is_precert in ((precert, True), (final, False)):
        report = _lint(variant, level, precert=is_precert)
        assert {f.code for f in report.warnings} == expected_warnings
        assert {f.severity for f in report.findings} <= {"WARNING", "NOTICE", "INFO"}

    verified = _openssl_verify(tmp_path, _der(final, level), level)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith(": OK")


def test_lint_kinds_map_to_pkilint_types() -> None:
    assert kind_for("dv", False) is CertificateKind.DV_CERTIFICATE
    assert kind_for("dv", True) is CertificateKind.DV_PRECERTIFICATE
    assert kind_for("ov", False) is CertificateKind.OV_CERTIFICATE
    assert kind_for("ov", True) is CertificateKind.OV_PRECERTIFICATE
    assert kind_for("ev", False) is CertificateKind.EV_CERTIFICATE
    assert kind_for("ev", True) is CertificateKind.EV_PRECERTIFICATE
    with pytest.raises(CandorError) as caught:
        kind_for("iv", False)
    assert caught.value.kind is ErrorKind.POLICY


def test_an_ov_certificate_linted_as_dv_fails() -> None:
    """The kinds are not interchangeable: the DV validator set refuses OV subject attributes and policy."""
    der = _der(final_certificate(precertificate(template(request("ov"))), SCT_LIST), "ov")
    assert not lint_certificate(der, CertificateKind.DV_CERTIFICATE).ok


# --- profile content ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_fields_and_fixed_extension_order(level: Level) -> None:
    result = template(request(level))
    assert [e.oid for e in result.extensions] == EXTENSION_ORDER
    assert result.extension(ExtensionOID.SUBJECT_KEY_IDENTIFIER) is None  # BR 7.1.2.7.6: NOT RECOMMENDED
    assert result.issuer == issuing_ca(level).certificate.subject
    assert result.not_before == (NOW - BACKDATE).replace(microsecond=0) + timedelta(seconds=1)
    assert result.not_after - result.not_before == timedelta(days=90) - timedelta(seconds=1)

    certificate = sign(result, issuing_ca(level).key)
    by_oid = {e.oid: e for e in certificate.extensions}
    assert [e.oid for e in certificate.extensions] == EXTENSION_ORDER
    assert by_oid[ExtensionOID.KEY_USAGE].critical and by_oid[ExtensionOID.BASIC_CONSTRAINTS].critical
    assert not any(by_oid[oid].critical for oid in EXTENSION_ORDER[3:])
    assert not by_oid[ExtensionOID.EXTENDED_KEY_USAGE].critical
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(
        ca=False, path_length=None
    )
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [{"dv": POLICY_DV, "ov": POLICY_OV, "ev": POLICY_EV}[level]]
    assert all(p.policy_qualifiers is None for p in policies)
    # AKI keyIdentifier = the issuing CA's subjectKeyIdentifier (BR 7.1.2.11.1)
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuing_ca(level).certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest and aki.authority_cert_issuer is None
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.OCSP, "http://pki.example.com/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, issuing_ca(level).info.certificate_url),
    ]


@pytest.mark.parametrize(
    ("algorithm", "key_encipherment"), [("ecdsa-p256", False), ("rsa-2048", True)], ids=["ecdsa", "rsa"]
)
def test_key_usage_follows_the_key_type(algorithm: str, key_encipherment: bool) -> None:
    extension = template(request(algorithm=algorithm)).extension(ExtensionOID.KEY_USAGE)
    assert extension is not None and extension.critical
    usage = extension.value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.digital_signature and usage.key_encipherment is key_encipherment
    assert not (usage.key_agreement or usage.data_encipherment or usage.key_cert_sign or usage.crl_sign)


@pytest.mark.parametrize(("common_name", "critical"), [(None, True), ("example.com", False)])
def test_san_is_critical_iff_the_subject_is_empty(common_name: str | None, critical: bool) -> None:
    result = template(request(common_name=common_name))
    assert (len(result.subject) == 0) is critical
    san = result.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san is not None and san.critical is critical


def test_ov_subject_is_c_st_l_o_cn_in_br_order() -> None:
    subject = template(request("ov")).subject
    assert [(a.oid, a.value) for a in subject] == [
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Illinois"),
        (NameOID.LOCALITY_NAME, "Springfield"),
        (NameOID.ORGANIZATION_NAME, "Candor Example Inc."),
        (NameOID.COMMON_NAME, "www.example.com"),
    ]
    assert all(len(rdn) == 1 for rdn in subject.rdns)
    assert NameOID.ORGANIZATIONAL_UNIT_NAME not in {a.oid for a in subject}


def test_ev_subject_carries_the_ev_guidelines_fields() -> None:
    subject = template(request("ev", common_name=None)).subject
    assert [(a.oid, a.value) for a in subject] == [
        (NameOID.BUSINESS_CATEGORY, "Private Organization"),
        (NameOID.JURISDICTION_COUNTRY_NAME, "US"),
        (NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME, "Delaware"),
        (NameOID.SERIAL_NUMBER, "1234567"),
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Illinois"),
        (NameOID.LOCALITY_NAME, "Springfield"),
        (NameOID.ORGANIZATION_NAME, "Candor Example Inc."),
    ]


def test_dv_subject_holds_at_most_the_common_name() -> None:
    assert [(a.oid, a.value) for a in template(request("dv")).subject] == [(NameOID.COMMON_NAME, "www.example.com")]
    assert len(template(request("dv", common_name=None)).subject) == 0


@pytest.mark.parametrize("level", ["dv", "ov"])
def test_wildcard_and_ip_sans_lint_clean(level: Level) -> None:
    subscriber = request(
        level,
        dns_names=("*.example.com", "example.com"),
        ip_addresses=(PUBLIC_IPV4, PUBLIC_IPV6),
        common_name="*.example.com",
    )
    precert = precertificate(template(subscriber))
    _lint(precert, level, precert=True)
    report = _lint(final_certificate(precert, SCT_LIST), level, precert=False)
    assert {f.code for f in report.warnings} == {CN_WARNING[level]}
    san = sign(template(subscriber), issuing_ca(level).key).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.IPAddress) == [PUBLIC_IPV4, PUBLIC_IPV6]


@pytest.mark.parametrize(
    ("dns_names", "ip_addresses"),
    [(("*.example.com",), ()), (("example.com",), (PUBLIC_IPV4,))],
    ids=["wildcard", "ip"],
)
def test_ev_refuses_wildcards_and_ip_addresses(
    dns_names: tuple[str, ...], ip_addresses: tuple[ipaddress.IPv4Address, ...]
) -> None:
    subscriber = request("ev", dns_names=dns_names, ip_addresses=ip_addresses, common_name=None)
    _refused("EV Guidelines 9.8.1", subscriber)


# --- commonName (BR 7.1.2.7.2, 7.1.4.3; BR-15) ---------------------------------------------------------------


@pytest.mark.parametrize("common_name", ["example.com", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_common_name_equal_to_a_san_is_accepted(common_name: str) -> None:
    subscriber = request(common_name=common_name, ip_addresses=(PUBLIC_IPV4, PUBLIC_IPV6))
    result = template(subscriber)
    assert result.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
    _lint(result, "dv", precert=False)


@pytest.mark.parametrize(
    "common_name",
    [
        "other.example.com",
        "WWW.EXAMPLE.COM",  # not character for character
        "www.example.com.",
        "bücher.example.com",  # the U-label of a SAN's A-label
        "2606:2800:021f:cb07:6820:80da:af6b:8b2c",  # not RFC 5952
        "",
    ],
)
def test_common_name_not_equal_to_a_san_is_refused(common_name: str) -> None:
    subscriber = request(
        dns_names=("www.example.com", "xn--bcher-kva.example.com"), ip_addresses=(PUBLIC_IPV6,), common_name=common_name
    )
    _refused("BR 7.1.2.7.2/7.1.4.3", subscriber)


def test_common_name_longer_than_64_characters_is_refused() -> None:
    long_name = "a" * 60 + ".example.com"
    _refused("64 characters", request(dns_names=(long_name,), common_name=long_name))
    # ...while the same name is fine as a SAN alone
    template(request(dns_names=(long_name,), common_name=None))


# --- subjectAltName bounds --------------------------------------------------------------------------------------


def test_100_sans_are_accepted_and_lint_clean() -> None:
    names = tuple(f"host{i}.example.com" for i in range(100))
    result = template(request(dns_names=names, common_name=None))
    san = result.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san is not None and len(san.value) == 100  # type: ignore[arg-type]
    report = _lint(result, "dv", precert=False)
    assert not report.warnings


def test_101_sans_are_refused() -> None:
    names = tuple(f"host{i}.example.com" for i in range(100))
    _refused("101 subjectAltName entries", request(dns_names=names, ip_addresses=(PUBLIC_IPV4,), common_name=None))


@pytest.mark.parametrize(
    "dns_names",
    [(), ("example.com", "example.com"), ("*.*.example.com",), ("a*.example.com",), ("*.",), ("Example.com",)],
    ids=["none", "duplicate", "double-wildcard", "partial-wildcard", "bare-wildcard", "upper-case"],
)
def test_malformed_san_lists_are_refused(dns_names: tuple[str, ...]) -> None:
    _refused("BR 7.1.2.7.12", request(dns_names=dns_names, common_name=None))


# --- validity (BR 6.3.2, BR 7.1.2.7) -------------------------------------------------------------------------


def test_validity_at_the_maximum_is_accepted() -> None:
    result = template(request(validity=MAX_VALIDITY))
    # BR 1.6.1: the validity period counts both ends, notAfter - notBefore + 1 s
    assert result.not_after - result.not_before + timedelta(seconds=1) == MAX_VALIDITY
    report = _lint(result, "dv", precert=False)
    # pkilint warns one day before the BR 6.3.2 maximum of 200 days (issued 2026-03-15 .. 2027-03-15)
    assert {f.code for f in report.warnings} == {
        CN_WARNING["dv"],
        "cabf.serverauth.certificate_validity_period_exceeds_199_days",
    }


@pytest.mark.parametrize(
    "validity", [MAX_VALIDITY + timedelta(seconds=1), timedelta(0), timedelta(seconds=-1)], ids=["over", "zero", "neg"]
)
def test_validity_outside_the_maximum_is_refused(validity: timedelta) -> None:
    _refused("BR 6.3.2", request(validity=validity))


def test_validity_with_fractions_of_a_second_is_refused() -> None:
    _refused("BR 6.3.2", request(validity=timedelta(days=1, microseconds=5)))


@pytest.mark.parametrize("backdate", [timedelta(hours=1, seconds=1), timedelta(hours=48), timedelta(seconds=-1)])
def test_backdating_beyond_one_hour_or_forward_dating_is_refused(backdate: timedelta) -> None:
    _refused("BR 7.1.2.7", backdate=backdate)


@pytest.mark.parametrize("backdate", [timedelta(0), timedelta(seconds=1), timedelta(hours=1)])
def test_not_before_is_never_later_than_now_nor_earlier_than_the_backdate(backdate: timedelta) -> None:
    result = template(request(), backdate=backdate)
    assert result.not_before.microsecond == 0
    # whole seconds: rounded up within the backdate, except that it never passes now (rounded down then)
    assert min(NOW - backdate, NOW.replace(microsecond=0)) <= result.not_before <= NOW


def test_certificate_cannot_outlive_its_issuer() -> None:
    issuer_end = issuing_ca("dv").info.not_after
    with pytest.raises(CandorError, match="after the issuer's notAfter"):
        template(request(), now=issuer_end - timedelta(days=10))


# --- revocation pointers (BR 7.1.2.11.2) ---------------------------------------------------------------------


def test_neither_crl_nor_ocsp_is_refused_above_seven_days() -> None:
    _refused("BR 7.1.2.11.2", request(validity=timedelta(days=7, seconds=1)), crl_url=None, ocsp_url=None)


def test_short_lived_certificates_may_omit_both() -> None:
    result = template(request(validity=timedelta(days=7), common_name=None), crl_url=None, ocsp_url=None)
    assert result.extension(ExtensionOID.CRL_DISTRIBUTION_POINTS) is None
    # The BR exempt short-lived certificates (BR 7.1.2.11.2); the Microsoft root program does not (3.A.5), and
    # pkilint's serverauth set includes that check. Candor's issuers always carry a CRL URL for this reason.
    report = lint_certificate(_der(result, "dv"), CertificateKind.DV_CERTIFICATE)
    assert [f.code for f in report.errors] == ["msft.end_entity.revocation_information_absent"]


@pytest.mark.parametrize(
    ("crl_url", "ocsp_url"), [("http://pki.example.com/crl/1.crl", None), (None, "http://o.example.com")]
)
def test_either_crl_or_ocsp_is_enough(crl_url: str | None, ocsp_url: str | None) -> None:
    result = template(request(common_name=None), crl_url=crl_url, ocsp_url=ocsp_url)
    assert (result.extension(ExtensionOID.CRL_DISTRIBUTION_POINTS) is None) is (crl_url is None)
    report = _lint(result, "dv", precert=False)
    assert not report.warnings


@pytest.mark.parametrize(("crl_url", "ocsp_url"), [("https://pki.example.com/1.crl", None), (None, "ldap://o.example")])
def test_revocation_urls_must_be_http(crl_url: str | None, ocsp_url: str | None) -> None:
    _refused("http://", crl_url=crl_url, ocsp_url=ocsp_url)


# --- organization data ---------------------------------------------------------------------------------------


def _with_organization(level: Level, organization: VettedOrganization | None) -> SubscriberRequest:
    return SubscriberRequest(
        public_key=request().public_key,
        dns_names=("www.example.com",),
        level=level,
        organization=organization,
        common_name=None,
        validity=timedelta(days=90),
    )


@pytest.mark.parametrize(
    ("level", "organization", "fragment"),
    [
        ("dv", ORGANIZATION, "BR 7.1.2.7.2"),
        ("ov", None, "BR 7.1.2.7.4"),
        ("ov", VettedOrganization(organization="X Inc", locality="A", state=None, country="USA"), "ISO 3166-1"),
        ("ov", VettedOrganization(organization="X Inc", locality=None, state=None, country="US"), "localityName"),
        ("ov", VettedOrganization(organization="-", locality="Springfield", state=None, country="US"), "punctuation"),
        ("ov", VettedOrganization(organization="O" * 65, locality="Here", state=None, country="US"), "longer"),
        ("ev", ORGANIZATION, "businessCategory"),
        ("ev", VettedOrganization(**{**EV_ORGANIZATION.__dict__, "jurisdiction_country": None}), "jurisdiction"),
        ("ev", VettedOrganization(**{**EV_ORGANIZATION.__dict__, "registration_number": None}), "serialNumber"),
        ("ev", VettedOrganization(**{**EV_ORGANIZATION.__dict__, "registration_number": "Nº 12"}), "PrintableString"),
        (
            "ev",
            VettedOrganization(
                **{**EV_ORGANIZATION.__dict__, "jurisdiction_state": None, "jurisdiction_locality": "X"}
            ),
            "jurisdictionLocalityName needs",
        ),
    ],
)
def test_organization_data_is_checked(level: Level, organization: VettedOrganization | None, fragment: str) -> None:
    _refused(fragment, _with_organization(level, organization))


def test_ev_with_jurisdiction_locality_lints_clean() -> None:
    organization = VettedOrganization(**{**EV_ORGANIZATION.__dict__, "jurisdiction_locality": "Dover"})
    result = template(_with_organization("ev", organization))
    assert result.subject.get_attributes_for_oid(NameOID.JURISDICTION_LOCALITY_NAME)[0].value == "Dover"
    assert not _lint(precertificate(result), "ev", precert=True).warnings


# --- keys and serials ----------------------------------------------------------------------------------------


def test_weak_or_foreign_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    p521 = ec.generate_private_key(ec.SECP521R1()).public_key()
    _refused("BR 6.1.5", SubscriberRequest(**{**request().__dict__, "public_key": p521}))
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    _refused("BR 6.1.5", SubscriberRequest(**{**request().__dict__, "public_key": other}))


@pytest.mark.parametrize("serial", [0, -5, 1 << 159])
def test_serial_must_fit_rfc_5280(serial: int) -> None:
    _refused("BR 7.1", serial=serial)


# --- determinism ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_same_inputs_give_the_same_tbs(level: Level) -> None:
    first, second = template(request(level)), template(request(level))
    assert first == second
    key = issuing_ca(level).key
    assert sign(first, key).tbs_certificate_bytes == sign(second, key).tbs_certificate_bytes
    precert = precertificate(first)
    assert (
        sign(final_certificate(precert, SCT_LIST), key).tbs_certificate_bytes
        == sign(final_certificate(precertificate(second), SCT_LIST), key).tbs_certificate_bytes
    )
