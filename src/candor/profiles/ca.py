"""CA certificate profiles as pure functions: (subject, key, serial, now, issuer) -> template.

Root CA: BR 7.1.2.1. TLS subordinate CA: BR 7.1.2.6 with the common CA fields of BR 7.1.2.10.
Time-stamping subordinate CA: CA/B Forum Code Signing BR 7.1.2.2 (the TSA branch), with the same CA fields.
OCSP responder: BR 7.1.2.8. Every bound the BR put on these fields is checked here, so that a ceremony
file asking for something else fails before any key is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ObjectIdentifier

from candor.clock import ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPublicKey
from candor.profiles.template import CertificateTemplate, ext, key_usage

# BR 7.1.6.1 reserved policy identifiers, and CSBR 7.1.6.1 for time-stamping.
POLICY_DV = ObjectIdentifier("2.23.140.1.2.1")
POLICY_OV = ObjectIdentifier("2.23.140.1.2.2")
POLICY_IV = ObjectIdentifier("2.23.140.1.2.3")
POLICY_EV = ObjectIdentifier("2.23.140.1.1")
POLICY_TIMESTAMPING = ObjectIdentifier("2.23.140.1.4.2")
TLS_POLICIES = {"dv": POLICY_DV, "ov": POLICY_OV, "iv": POLICY_IV, "ev": POLICY_EV}

ROOT_MIN_DAYS = 2922  # BR 7.1.2.1.1
ROOT_MAX_DAYS = 9132
TSA_CA_MAX_MONTHS_AS_DAYS = 135 * 31  # CSBR 6.3.2 caps time-stamping certificates; keep sub-CAs inside it too


@dataclass(frozen=True)
class IssuerInfo:
    """What a child certificate needs to know about its issuer."""

    name: x509.Name
    public_key: CAPublicKey
    not_after: datetime
    certificate_url: str  # AIA caIssuers: the issuer's certificate over http (BR 7.1.2.10.3)
    crl_url: str  # CRLDP: the issuer's CRL over http (BR 7.1.2.11.2)


def signing_start(now: datetime) -> datetime:
    """notBefore for a CA certificate: the signing time to the second (BR 7.1.2.10.1: within one day)."""
    return ensure_utc(now).replace(microsecond=0)


def _key_ids(public_key: CAPublicKey, issuer_key: CAPublicKey) -> list[x509.Extension[x509.ExtensionType]]:
    return [
        ext(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False),
        ext(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False),
    ]


def _ca_key_usage(*, digital_signature: bool) -> x509.Extension[x509.ExtensionType]:
    return key_usage(digital_signature=digital_signature, key_cert_sign=True, crl_sign=True)


def _within_issuer(not_after: datetime, issuer: IssuerInfo, what: str) -> None:
    if not_after > issuer.not_after:
        raise CandorError(
            ErrorKind.POLICY,
            f"{what}: notAfter {not_after:%Y-%m-%d} is after the issuer's notAfter {issuer.not_after:%Y-%m-%d}",
        )


def _distribution(issuer: IssuerInfo) -> list[x509.Extension[x509.ExtensionType]]:
    """BR 7.1.2.11.2 CRLDP (one http URI) and BR 7.1.2.10.3 AIA (caIssuers over http)."""
    crldp = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.crl_url)], None, None, None)]
    )
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(issuer.certificate_url),
            )
        ]
    )
    return [ext(crldp, critical=False), ext(aia, critical=False)]


def root_ca(
    *, subject: x509.Name, public_key: CAPublicKey, serial: int, now: datetime, validity_days: int
) -> CertificateTemplate:
    """BR 7.1.2.1: self-issued, basicConstraints cA without pathLen, keyCertSign+cRLSign, SKI, AKI,
    no certificatePolicies and no EKU."""
    if not ROOT_MIN_DAYS <= validity_days <= ROOT_MAX_DAYS:
        raise CandorError(
            ErrorKind.POLICY,
            f"root validity of {validity_days} days is outside {ROOT_MIN_DAYS}..{ROOT_MAX_DAYS} (BR 7.1.2.1.1)",
        )
    start = signing_start(now)
    extensions = [
        ext(x509.BasicConstraints(ca=True, path_length=None), critical=True),
        _ca_key_usage(digital_signature=False),
        *_key_ids(public_key, public_key),
    ]
    return CertificateTemplate(
        subject=subject,
        issuer=subject,
        public_key=public_key,
        serial=serial,
        not_before=start,
        not_after=start + timedelta(days=validity_days) - timedelta(seconds=1),
        extensions=tuple(extensions),
    )


def tls_subordinate_ca(
    *,
    subject: x509.Name,
    public_key: CAPublicKey,
    serial: int,
    now: datetime,
    validity_days: int,
    issuer: IssuerInfo,
    policies: tuple[ObjectIdentifier, ...],
) -> CertificateTemplate:
    """BR 7.1.2.6: serverAuth EKU, pathLen 0, exactly one reserved policy OID (an affiliated CA,
    BR 7.1.2.10.5), CRLDP and AIA caIssuers; digitalSignature so that it may also sign OCSP responses."""
    reserved = [p for p in policies if p in TLS_POLICIES.values()]
    if len(reserved) != 1:
        raise CandorError(
            ErrorKind.POLICY, "a TLS CA carries exactly one reserved DV/OV/IV/EV policy OID (BR 7.1.2.10.5)"
        )
    return _subordinate_ca(
        subject=subject,
        public_key=public_key,
        serial=serial,
        now=now,
        validity_days=validity_days,
        issuer=issuer,
        what="TLS subordinate CA",
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        policy=reserved[0],
        digital_signature=True,
    )


def tsa_subordinate_ca(
    *,
    subject: x509.Name,
    public_key: CAPublicKey,
    serial: int,
    now: datetime,
    validity_days: int,
    issuer: IssuerInfo,
) -> CertificateTemplate:
    """A CA dedicated to time-stamping (CSBR 7.1.2.2): EKU timeStamping only, the CA/B Forum time-stamping
    policy OID 2.23.140.1.4.2, pathLen 0; kept apart from the TLS hierarchy below the root."""
    return _subordinate_ca(
        subject=subject,
        public_key=public_key,
        serial=serial,
        now=now,
        validity_days=validity_days,
        issuer=issuer,
        what="time-stamping subordinate CA",
        eku=ExtendedKeyUsageOID.TIME_STAMPING,
        policy=POLICY_TIMESTAMPING,
        digital_signature=False,
    )


def _subordinate_ca(
    *,
    subject: x509.Name,
    public_key: CAPublicKey,
    serial: int,
    now: datetime,
    validity_days: int,
    issuer: IssuerInfo,
    what: str,
    eku: ObjectIdentifier,
    policy: ObjectIdentifier,
    digital_signature: bool,
) -> CertificateTemplate:
    """The fields every Candor subordinate CA shares (BR 7.1.2.10): critical basicConstraints with pathLen 0,
    critical keyUsage, one EKU purpose, one policy, CRLDP and AIA to the issuer, SKI and AKI."""
    start = signing_start(now)
    not_after = start + timedelta(days=validity_days) - timedelta(seconds=1)
    _within_issuer(not_after, issuer, what)
    extensions = [
        ext(x509.BasicConstraints(ca=True, path_length=0), critical=True),
        _ca_key_usage(digital_signature=digital_signature),
        ext(x509.ExtendedKeyUsage([eku]), critical=False),
        ext(x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False),
        *_distribution(issuer),
        *_key_ids(public_key, issuer.public_key),
    ]
    return CertificateTemplate(
        subject=subject,
        issuer=issuer.name,
        public_key=public_key,
        serial=serial,
        not_before=start,
        not_after=not_after,
        extensions=tuple(extensions),
    )


def ocsp_responder(
    *,
    subject: x509.Name,
    public_key: CAPublicKey,
    serial: int,
    now: datetime,
    validity: timedelta,
    issuer: IssuerInfo,
) -> CertificateTemplate:
    """BR 7.1.2.8: a delegated responder, EKU id-kp-OCSPSigning only, id-pkix-ocsp-nocheck, keyUsage
    digitalSignature only, AKI; short-lived because nocheck means it cannot itself be revoked usefully."""
    if validity <= timedelta(0) or validity > timedelta(days=90):
        raise CandorError(ErrorKind.POLICY, "an OCSP responder certificate must be valid for 1 second to 90 days")
    start = signing_start(now)
    not_after = start + validity - timedelta(seconds=1)
    _within_issuer(not_after, issuer, "OCSP responder")
    extensions = [
        key_usage(digital_signature=True),
        ext(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False),
        ext(x509.OCSPNoCheck(), critical=False),
        *_key_ids(public_key, issuer.public_key),
    ]
    return CertificateTemplate(
        subject=subject,
        issuer=issuer.name,
        public_key=public_key,
        serial=serial,
        not_before=start,
        not_after=not_after,
        extensions=tuple(extensions),
    )
