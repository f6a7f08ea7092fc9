"""Subscriber TLS server certificates (BR 7.1.2.7) as a pure function: (request, policy values, now) -> template.

The identifiers and the organization data arrive already validated and vetted (by the RA and the
domain/IP validation code); this module only places them and enforces every rule of the certificate profile
itself: the subject per validation level (BR 7.1.2.7.2-.5, EV Guidelines 7.1.4.2), the extensions and their
criticality (BR 7.1.2.7.6-.12), the validity period (BR 6.3.2, BR 7.1.2.7) and revocation pointers
(BR 7.1.2.11.2). The extension order is fixed, so the same inputs always give the same TBSCertificate.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from candor.clock import ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.profiles.ca import TLS_POLICIES, IssuerInfo, _within_issuer
from candor.profiles.template import CertificateTemplate, ext, key_usage

Level = Literal["dv", "ov", "ev"]
LEVELS: tuple[Level, ...] = ("dv", "ov", "ev")
SubscriberPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_BACKDATE = timedelta(hours=1)  # BR 7.1.2.7 tolerates 48 h of backdating; Candor allows at most 1 h
MAX_SAN_ENTRIES = 100  # Candor's limit on identifiers per certificate
SHORT_LIVED = timedelta(days=7)  # BR 1.6.1 "Short-lived Subscriber Certificate" (issued on or after 2026-03-15)
MAX_COMMON_NAME = 64  # RFC 5280 Appendix A ub-common-name; BR 7.1.4.3
EV_BUSINESS_CATEGORIES = frozenset(
    {"Private Organization", "Government Entity", "Business Entity", "Non-Commercial Entity"}
)  # EV Guidelines 7.1.4.2.3
_MRSP_CURVES = ("secp256r1", "secp384r1")  # BR 6.1.5 with Mozilla Root Store Policy 5.1 (no P-521)
_COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2 (BR 7.1.4.3)
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")  # X.680 PrintableString, for serialNumber (X.520)


@dataclass(frozen=True, kw_only=True)
class VettedOrganization:
    """Organization data the RA vetted (BR 3.2.2.1/3.2.2.2; EV Guidelines 3.2.2). The profile only places it:
    OV in the subject of BR 7.1.2.7.4, EV in the subject of EV Guidelines 7.1.4.2."""

    organization: str
    locality: str | None
    state: str | None
    country: str
    # EV only (EV Guidelines 7.1.4.2.3-.5)
    business_category: str | None = None
    jurisdiction_country: str | None = None
    jurisdiction_state: str | None = None
    jurisdiction_locality: str | None = None
    registration_number: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubscriberRequest:
    """What a subscriber certificate is for. ``dns_names`` are normalised A-labels (at most one ``*.``
    wildcard label, leftmost) and every identifier has been validated (BR 3.2.2.4/3.2.2.5)."""

    public_key: SubscriberPublicKey
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...] = ()
    level: Level
    organization: VettedOrganization | None = None
    common_name: str | None = None  # None: no commonName (BR 7.1.2.7.2: NOT RECOMMENDED anyway)
    validity: timedelta


def _policy(message: str) -> CandorError:
    return CandorError(ErrorKind.POLICY, message)


def subscriber_certificate(
    request: SubscriberRequest,
    *,
    issuer: IssuerInfo,
    serial: int,
    now: datetime,
    max_validity: timedelta,
    backdate: timedelta,
    crl_url: str | None,
    ocsp_url: str | None,
) -> CertificateTemplate:
    """The template of a DV/OV/EV subscriber TLS server certificate issued by *issuer* at *now*.

    *max_validity* is the maximum validity in force at *now* (BR 6.3.2 dates it; the caller looks it up);
    *backdate* moves notBefore back by up to one hour; *crl_url* and *ocsp_url* are this issuer's revocation
    pointers for the certificate (at least one of them unless the certificate is short-lived, BR 7.1.2.11.2).
    """
    if request.level not in LEVELS:
        raise _policy(f"BR 7.1.2.7: validation level {request.level!r} is not one of {', '.join(LEVELS)}")
    _check_serial(serial)
    _check_public_key(request.public_key)
    not_before, not_after = _validity(request.validity, now=now, max_validity=max_validity, backdate=backdate)
    _within_issuer(not_after, issuer, "subscriber certificate")
    sans = _subject_alt_names(request)
    subject = _subject(request)
    _check_revocation(request.validity, crl_url=crl_url, ocsp_url=ocsp_url)

    # The fixed extension order (BR 7.1.2.7.6 lists the set; the order is Candor's and never varies).
    extensions = [
        _key_usage(request.public_key),
        # BR 7.1.2.7.10: id-kp-serverAuth only, non-critical
        ext(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False),
        # BR 7.1.2.7.8: cA FALSE, no pathLenConstraint, critical
        ext(x509.BasicConstraints(ca=False, path_length=None), critical=True),
        # BR 7.1.2.11.1: keyIdentifier of the issuer's key, no issuer/serial. No subjectKeyIdentifier:
        # BR 7.1.2.7.6 makes it NOT RECOMMENDED for subscriber certificates.
        ext(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key), critical=False),
        _authority_information_access(issuer, ocsp_url),
        # BR 7.1.2.7.12 / RFC 5280 4.2.1.6: critical if and only if the subject is empty
        ext(x509.SubjectAlternativeName(sans), critical=len(subject) == 0),
        # BR 7.1.2.7.9: exactly one reserved policy identifier, the level's, no qualifiers, non-critical
        ext(
            x509.CertificatePolicies([x509.PolicyInformation(TLS_POLICIES[request.level], None)]),
            critical=False,
        ),
    ]
    if crl_url is not None:
        # BR 7.1.2.11.2: one DistributionPoint with one http URI, nothing else
        crldp = x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
        )
        extensions.append(ext(crldp, critical=False))
    return CertificateTemplate(
        subject=subject,
        issuer=issuer.name,
        public_key=request.public_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        extensions=tuple(extensions),
    )


def _check_serial(serial: int) -> None:
    # BR 7.1 / RFC 5280 4.1.2.2: a positive integer of at most 20 octets (randomness is the caller's job)
    if serial <= 0 or serial.bit_length() > 159:
        raise _policy("BR 7.1: the serial number must be positive and at most 20 octets (RFC 5280 4.1.2.2)")


def _check_public_key(public_key: object) -> None:
    """BR 6.1.5 and MRSP 5.1: RSA of at least 2048 bits with a modulus divisible by 8, or ECDSA on P-256/P-384.
    (Weak and compromised keys are refused before a request gets here, BR 6.1.1.3.)"""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048 or public_key.key_size % 8:
            raise _policy(f"BR 6.1.5: an RSA-{public_key.key_size} subscriber key is not allowed")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _MRSP_CURVES:
            raise _policy(f"BR 6.1.5: an ECDSA key on {public_key.curve.name} is not allowed (P-256 or P-384)")
    else:
        raise _policy(f"BR 6.1.5: a {type(public_key).__name__} subscriber key is not allowed (RSA or ECDSA)")


def _not_before(now: datetime, backdate: timedelta) -> datetime:
    """now - backdate on a whole second (X.509 times have no fractions), rounded up so that the certificate
    is never backdated by more than *backdate*, and never later than *now*."""
    moment = ensure_utc(now) - backdate
    rounded = moment.replace(microsecond=0)
    if rounded < moment:
        rounded += timedelta(seconds=1)
    return min(rounded, ensure_utc(now).replace(microsecond=0))


def _validity(
    validity: timedelta, *, now: datetime, max_validity: timedelta, backdate: timedelta
) -> tuple[datetime, datetime]:
    # BR 7.1.2.7 (notBefore): may be backdated by up to 48 h; Candor allows at most MAX_BACKDATE, and never
    # dates a certificate in the future.
    if not timedelta(0) <= backdate <= MAX_BACKDATE:
        raise _policy(f"BR 7.1.2.7: backdating notBefore by {backdate} is outside Candor's 0..1 h (never forward)")
    # BR 6.3.2: the validity period (notAfter - notBefore + 1 s, BR 1.6.1) must not exceed the dated maximum
    if validity <= timedelta(0) or validity > max_validity:
        raise _policy(f"BR 6.3.2: a validity period of {validity} is outside 1 s..{max_validity}")
    if validity.microseconds:
        raise _policy(f"BR 6.3.2: a validity period of {validity} is not a whole number of seconds (RFC 5280 4.1.2.5)")
    not_before = _not_before(now, backdate)
    return not_before, not_before + validity - timedelta(seconds=1)


def _subject_alt_names(request: SubscriberRequest) -> list[x509.GeneralName]:
    """BR 7.1.2.7.12: dNSName and iPAddress entries only, at least one. EV Guidelines 9.8.1 (1.x numbering):
    dNSName only, no wildcards."""
    count = len(request.dns_names) + len(request.ip_addresses)
    if count == 0:
        raise _policy("BR 7.1.2.7.12: a subscriber certificate needs at least one subjectAltName entry")
    if count > MAX_SAN_ENTRIES:
        raise _policy(f"BR 7.1.2.7.12: {count} subjectAltName entries exceed Candor's limit of {MAX_SAN_ENTRIES}")
    if len(set(request.dns_names)) != len(request.dns_names) or len(set(request.ip_addresses)) != len(
        request.ip_addresses
    ):
        raise _policy("BR 7.1.2.7.12: the subjectAltName entries contain a duplicate")
    for name in request.dns_names:
        _check_dns_name(name, ev=request.level == "ev")
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in request.dns_names]
    for address in request.ip_addresses:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise _policy(f"BR 7.1.2.7.12: {address!r} is not an IPv4 or IPv6 address")
        if request.level == "ev":
            raise _policy(f"EV Guidelines 9.8.1: an EV certificate cannot name the IP address {address}")
        names.append(x509.IPAddress(address))
    return names


def _check_dns_name(name: str, *, ev: bool) -> None:
    # BR 7.1.2.7.12: an FQDN or a Wildcard Domain Name (BR 1.6.1: "*." followed by an FQDN), as A-labels
    if not name or not name.isascii() or name.endswith(".") or name != name.lower():
        raise _policy(f"BR 7.1.2.7.12: dNSName {name!r} is not a lower-case A-label FQDN without a trailing dot")
    if "*" in name:
        if not name.startswith("*.") or "*" in name[2:] or "." not in name[2:]:
            raise _policy(f"BR 7.1.2.7.12: {name!r} is not a Wildcard Domain Name ('*.' followed by an FQDN)")
        if ev:
            raise _policy(f"EV Guidelines 9.8.1: an EV certificate cannot contain the wildcard {name!r}")


def _subject(request: SubscriberRequest) -> x509.Name:
    """BR 7.1.2.7.2 (DV: commonName only, optional), 7.1.2.7.4 (OV), EV Guidelines 7.1.4.2 (EV). Attributes
    in the order of BR 7.1.4.2, one per RDN; never organizationalUnitName (BR 7.1.2.7.4, SC-047)."""
    attributes: list[x509.NameAttribute[str]] = []
    organization = request.organization
    if request.level == "dv":
        if organization is not None:
            raise _policy("BR 7.1.2.7.2: a DV certificate carries no organization data")
    else:
        if organization is None:
            raise _policy(f"BR 7.1.2.7.4: an {request.level.upper()} certificate needs the vetted organization")
        if request.level == "ev":
            attributes.extend(_ev_attributes(organization))
        attributes.extend(_organization_attributes(organization, level=request.level))
    if request.common_name is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, _common_name(request)))
    return x509.Name([x509.RelativeDistinguishedName([attribute]) for attribute in attributes])


def _common_name(request: SubscriberRequest) -> str:
    # BR 7.1.2.7.2 / 7.1.4.3: a character-for-character copy of one subjectAltName entry (A-labels;
    # IPv4 dotted decimal, IPv6 per RFC 5952 as Python prints it), at most 64 characters
    common_name = request.common_name
    candidates = {*request.dns_names, *(str(address) for address in request.ip_addresses)}
    if common_name is None or common_name not in candidates:
        raise _policy(f"BR 7.1.2.7.2/7.1.4.3: commonName {common_name!r} is not one of the subjectAltName entries")
    if len(common_name) > MAX_COMMON_NAME:
        raise _policy(f"BR 7.1.2.7.2/7.1.4.3: commonName is longer than {MAX_COMMON_NAME} characters")
    return common_name


def _meaningful(value: str | None, what: str, rule: str, *, limit: int) -> str | None:
    # BR 7.1.4.3: no metadata-only values (".", "-", " "), no padding; the X.520 upper bounds
    if value is None:
        return None
    if value.strip() != value or not any(ch.isalnum() for ch in value) or len(value) > limit:
        raise _policy(f"{rule}: {what} {value!r} is blank, padded, punctuation only or longer than {limit}")
    return value


def _country(value: str | None, what: str, rule: str) -> str:
    if value is None or not _COUNTRY.fullmatch(value):
        raise _policy(f"{rule}: {what} {value!r} is not a two-letter upper-case ISO 3166-1 code")
    return value


def _organization_attributes(organization: VettedOrganization, *, level: str) -> list[x509.NameAttribute[str]]:
    """C, ST, L, O in the order of BR 7.1.4.2 (countryName a PrintableString of two letters)."""
    rule = "BR 7.1.2.7.4" if level == "ov" else "EV Guidelines 7.1.4.2"
    country = _country(organization.country, "countryName", rule)
    state = _meaningful(organization.state, "stateOrProvinceName", rule, limit=128)
    locality = _meaningful(organization.locality, "localityName", rule, limit=128)
    name = _meaningful(organization.organization, "organizationName", rule, limit=64)
    if name is None:
        raise _policy(f"{rule}: organizationName is required")
    if state is None and locality is None:
        raise _policy(f"{rule}: stateOrProvinceName or localityName is required")
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    if state is not None:
        attributes.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    if locality is not None:
        attributes.append(x509.NameAttribute(NameOID.LOCALITY_NAME, locality))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, name))
    return attributes


def _ev_attributes(organization: VettedOrganization) -> list[x509.NameAttribute[str]]:
    """EV Guidelines 7.1.4.2.3-.5: businessCategory, the jurisdiction of incorporation or registration,
    and the registration number as serialNumber. These are outside BR 7.1.4.2's ordered table; Candor puts
    them first, as most EV issuers do."""
    rule = "EV Guidelines 7.1.4.2"
    category = organization.business_category
    if category not in EV_BUSINESS_CATEGORIES:
        raise _policy(
            f"{rule}: businessCategory {category!r} is not one of {', '.join(sorted(EV_BUSINESS_CATEGORIES))}"
        )
    country = _country(organization.jurisdiction_country, "jurisdictionCountryName", rule)
    state = _meaningful(organization.jurisdiction_state, "jurisdictionStateOrProvinceName", rule, limit=128)
    locality = _meaningful(organization.jurisdiction_locality, "jurisdictionLocalityName", rule, limit=128)
    if locality is not None and state is None:
        raise _policy(f"{rule}: jurisdictionLocalityName needs jurisdictionStateOrProvinceName")
    number = _meaningful(organization.registration_number, "serialNumber", rule, limit=64)
    if number is None or not _PRINTABLE.fullmatch(number):
        raise _policy(f"{rule}: the registration number (serialNumber) must be a non-empty PrintableString")
    attributes = [
        x509.NameAttribute(NameOID.BUSINESS_CATEGORY, category),
        x509.NameAttribute(NameOID.JURISDICTION_COUNTRY_NAME, country),
    ]
    if state is not None:
        attributes.append(x509.NameAttribute(NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME, state))
    if locality is not None:
        attributes.append(x509.NameAttribute(NameOID.JURISDICTION_LOCALITY_NAME, locality))
    attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, number))
    return attributes


def _key_usage(public_key: SubscriberPublicKey) -> x509.Extension[x509.ExtensionType]:
    """BR 7.1.2.7.11, critical. ECDSA: digitalSignature only (never keyEncipherment, keyAgreement NOT
    RECOMMENDED). RSA: digitalSignature and keyEncipherment (RSA key transport for TLS 1.2 clients)."""
    return key_usage(digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey))


def _check_http_url(url: str, rule: str, what: str) -> None:
    if not url.startswith("http://") or len(url) <= len("http://"):
        raise _policy(f"{rule}: the {what} URL {url!r} must be an http:// URL")


def _authority_information_access(issuer: IssuerInfo, ocsp_url: str | None) -> x509.Extension[x509.ExtensionType]:
    """BR 7.1.2.7.7: id-ad-ocsp (MAY) and id-ad-caIssuers (SHOULD), http URLs only, non-critical."""
    descriptions: list[x509.AccessDescription] = []
    if ocsp_url is not None:
        _check_http_url(ocsp_url, "BR 7.1.2.7.7", "OCSP")
        descriptions.append(
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        )
    _check_http_url(issuer.certificate_url, "BR 7.1.2.7.7", "caIssuers")
    descriptions.append(
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer.certificate_url)
        )
    )
    return ext(x509.AuthorityInformationAccess(descriptions), critical=False)


def _check_revocation(validity: timedelta, *, crl_url: str | None, ocsp_url: str | None) -> None:
    # BR 7.1.2.11.2: cRLDistributionPoints MUST be present unless the certificate carries an OCSP URL or is a
    # Short-lived Subscriber Certificate (BR 1.6.1: a validity period of at most 7 days since 2026-03-15)
    if crl_url is not None:
        _check_http_url(crl_url, "BR 7.1.2.11.2", "CRL")
    if crl_url is None and ocsp_url is None and validity > SHORT_LIVED:
        raise _policy(
            f"BR 7.1.2.11.2: a certificate valid for more than {SHORT_LIVED.days} days needs a CRL or OCSP URL"
        )
