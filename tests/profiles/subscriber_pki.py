"""A throw-away TLS hierarchy for subscriber profile tests, built with Candor's own CA profiles.

One ECDSA P-384 root and, below it, one ECDSA P-256 TLS subordinate CA per validation level (each carries the
level's reserved policy OID, BR 7.1.2.10.5). URLs live under http://pki.example.com so that pkilint's
public-name checks hold. Everything is made once per process.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from candor.profiles import (
    TLS_POLICIES,
    CASubject,
    CertificateTemplate,
    IssuerInfo,
    SubscriberRequest,
    VettedOrganization,
    root_ca,
    subscriber_certificate,
    tls_subordinate_ca,
    to_builder,
)
from candor.profiles.subscriber import Level

NOW = datetime(2026, 11, 27, 12, 0, 0, 654321, tzinfo=UTC)
MAX_VALIDITY = timedelta(days=200)  # BR 6.3.2 for certificates issued 2026-03-15 .. 2027-03-15
VALIDITY = timedelta(days=90)
BACKDATE = timedelta(minutes=5)
BASE = "http://pki.example.com"
LEVELS: tuple[Level, ...] = ("dv", "ov", "ev")

ORGANIZATION = VettedOrganization(
    organization="Candor Example Inc.", locality="Springfield", state="Illinois", country="US"
)
EV_ORGANIZATION = VettedOrganization(
    organization="Candor Example Inc.",
    locality="Springfield",
    state="Illinois",
    country="US",
    business_category="Private Organization",
    jurisdiction_country="US",
    jurisdiction_state="Delaware",
    registration_number="1234567",
)
PUBLIC_IPV4 = ipaddress.IPv4Address("93.184.215.14")
PUBLIC_IPV6 = ipaddress.IPv6Address("2606:2800:21f:cb07:6820:80da:af6b:8b2c")


@dataclass(frozen=True)
class CA:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    info: IssuerInfo  # what a child of this CA needs


def sign(template: CertificateTemplate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    digest = hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()
    return to_builder(template).sign(key, digest)


def _info(certificate: x509.Certificate, name: str) -> IssuerInfo:
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return IssuerInfo(
        name=certificate.subject,
        public_key=public_key,
        not_after=certificate.not_valid_after_utc,
        certificate_url=f"{BASE}/issuers/{name}.der",
        crl_url=f"{BASE}/crl/{name}.crl",
    )


@functools.cache
def root() -> CA:
    key = ec.generate_private_key(ec.SECP384R1())
    subject = CASubject(country="US", organization="Candor Example Inc.", common_name="Candor Test Root X1")
    template = root_ca(
        subject=subject.to_name(), public_key=key.public_key(), serial=0x10000001, now=NOW, validity_days=3650
    )
    certificate = sign(template, key)
    return CA(key, certificate, _info(certificate, "root-x1"))


@functools.cache
def issuing_ca(level: Level) -> CA:
    parent = root()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = CASubject(
        country="US", organization="Candor Example Inc.", common_name=f"Candor Test TLS {level.upper()} E1"
    )
    template = tls_subordinate_ca(
        subject=subject.to_name(),
        public_key=key.public_key(),
        serial=0x20000001 + LEVELS.index(level),
        now=NOW,
        validity_days=1825,
        issuer=parent.info,
        policies=(TLS_POLICIES[level],),
    )
    certificate = sign(template, parent.key)
    return CA(key, certificate, _info(certificate, f"tls-{level}-e1"))


@functools.cache
def subscriber_key(algorithm: str) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1()).public_key()
    if algorithm == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    raise ValueError(algorithm)


def organization_for(level: Level) -> VettedOrganization | None:
    return {"dv": None, "ov": ORGANIZATION, "ev": EV_ORGANIZATION}[level]


def request(
    level: Level = "dv",
    *,
    algorithm: str = "ecdsa-p256",
    dns_names: tuple[str, ...] = ("www.example.com", "example.com"),
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = (),
    common_name: str | None = "www.example.com",
    validity: timedelta = VALIDITY,
) -> SubscriberRequest:
    return SubscriberRequest(
        public_key=subscriber_key(algorithm),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        level=level,
        organization=organization_for(level),
        common_name=common_name,
        validity=validity,
    )


def template(
    subscriber: SubscriberRequest,
    *,
    serial: int = 0x7A3B_19C2_55D0_E61F_0123,
    now: datetime = NOW,
    max_validity: timedelta = MAX_VALIDITY,
    backdate: timedelta = BACKDATE,
    crl_url: str | None = f"{BASE}/crl/tls-e1/7.crl",
    ocsp_url: str | None = f"{BASE}/ocsp",
) -> CertificateTemplate:
    return subscriber_certificate(
        subscriber,
        issuer=issuing_ca(subscriber.level).info,
        serial=serial,
        now=now,
        max_validity=max_validity,
        backdate=backdate,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
    )


def fake_sct(log_name: bytes, timestamp_ms: int) -> bytes:
    """A well-formed but unsigned RFC 6962 3.2 v1 SCT: version, LogID, timestamp, no extensions,
    sha256/ecdsa and a 71-byte stand-in for the signature."""
    log_id = hashlib.sha256(log_name).digest()
    signature = b"\x30\x45" + hashlib.sha512(log_name).digest()[:69]
    return (
        bytes([0])
        + log_id
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 0)
        + bytes([4, 3])
        + struct.pack(">H", len(signature))
        + signature
    )


def sct_list(*scts: bytes) -> bytes:
    """RFC 6962 3.3: SignedCertificateTimestampList, TLS-encoded."""
    body = b"".join(struct.pack(">H", len(sct)) + sct for sct in scts)
    return struct.pack(">H", len(body)) + body


TIMESTAMP_MS = int(NOW.timestamp() * 1000)
SCT_LIST = sct_list(fake_sct(b"log one", TIMESTAMP_MS), fake_sct(b"log two", TIMESTAMP_MS + 17))
