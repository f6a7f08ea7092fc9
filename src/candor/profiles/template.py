"""A certificate template: everything that goes into a TBSCertificate, as plain immutable data.

Profiles are pure functions that return a template; :func:`to_builder` turns it into cryptography's
builder at the edge where a key signs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from candor.policy.algorithms import CAPublicKey


@dataclass(frozen=True)
class CertificateTemplate:
    subject: x509.Name
    issuer: x509.Name
    public_key: CAPublicKey
    serial: int
    not_before: datetime
    not_after: datetime
    extensions: tuple[x509.Extension[x509.ExtensionType], ...]

    def extension(self, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
        return next((e for e in self.extensions if e.oid == oid), None)


def to_builder(template: CertificateTemplate) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(template.public_key)
        .serial_number(template.serial)
        .not_valid_before(template.not_before)
        .not_valid_after(template.not_after)
    )
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder


def ext(value: x509.ExtensionType, *, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.Extension[x509.ExtensionType]:
    """A critical keyUsage with the named bits set and every other bit clear (RFC 5280 4.2.1.3)."""
    return ext(
        x509.KeyUsage(
            digital_signature=digital_signature,
            content_commitment=False,
            key_encipherment=key_encipherment,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=key_cert_sign,
            crl_sign=crl_sign,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
