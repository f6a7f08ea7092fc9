"""Reading a PKCS#10 certificate request (RFC 2986) the way a CA must: suspiciously.

Only the public key and the names are taken from a CSR; everything else in the certificate comes from the
profile. A request that asks for more than Candor will give (a CA certificate, other extensions, other name
types) is refused rather than quietly trimmed, so the subscriber learns what they will not get.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from candor.errors import CandorError, ErrorKind
from candor.policy.names import Identifier, is_ip_address, normalize_identifier

# Extensions a client may put in its request without asking for anything Candor would refuse to certify.
# Their values are never copied: the profile decides keyUsage and extKeyUsage.
_TOLERATED = {
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.BASIC_CONSTRAINTS,  # only with cA false, checked below
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,  # only serverAuth / clientAuth, checked below
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
}
_WEAK_HASHES = (hashes.SHA1, hashes.MD5)


@dataclass(frozen=True)
class ParsedCsr:
    spki_der: bytes
    identifiers: tuple[Identifier, ...]  # normalised, unique, sorted (dns before ip)
    common_name: str | None  # normalised like a SAN, or None

    @property
    def spki_sha256(self) -> str:
        return hashlib.sha256(self.spki_der).hexdigest()


def _refuse(message: str) -> CandorError:
    return CandorError(ErrorKind.BAD_CSR, message)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise _refuse("RFC 2986: not a PKCS#10 certificate request") from None


def parse_csr(data: bytes) -> ParsedCsr:
    csr = load_csr(data)
    try:
        signature_hash = csr.signature_hash_algorithm
    except Exception:  # an algorithm cryptography cannot name is one Candor does not accept either
        raise _refuse("RFC 2986 4.2: the request's signature algorithm is not supported") from None
    if isinstance(signature_hash, _WEAK_HASHES):
        raise _refuse(f"BR 7.1.3.2: a request signed with {signature_hash.name} is not accepted")
    try:
        valid = csr.is_signature_valid
    except Exception:  # an unsupported key type cannot prove possession
        valid = False
    if not valid:
        raise _refuse("RFC 2986 4.2: the request's signature does not verify (no proof of key possession)")
    try:
        extensions = list(csr.extensions)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise _refuse(f"RFC 2986: the request's extensions cannot be read: {exc}") from None
    for extension in extensions:
        _check_requested_extension(extension)
    names = _requested_names(csr, extensions)
    common_name = _common_name(csr)
    identifiers = {normalize_identifier(kind, value) for kind, value in names}
    if common_name is not None:
        cn_identifier = normalize_identifier("ip" if is_ip_address(common_name) else "dns", common_name)
        if cn_identifier not in identifiers:
            raise _refuse("BR 7.1.2.7.2: the request's commonName is not one of its subjectAltNames")
        common_name = cn_identifier.value
    if not identifiers:
        raise _refuse("BR 7.1.2.7.12: the request names no dNSName or iPAddress")
    spki = csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ordered = tuple(sorted(identifiers, key=lambda i: (i.type, i.value)))
    return ParsedCsr(spki_der=spki, identifiers=ordered, common_name=common_name)


def _check_requested_extension(extension: x509.Extension[x509.ExtensionType]) -> None:
    if extension.oid not in _TOLERATED:
        name = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
        raise _refuse(f"BR 7.1.2.7.6: the request asks for extension {name}, which Candor does not issue")
    value = extension.value
    if isinstance(value, x509.BasicConstraints) and value.ca:
        raise _refuse("BR 7.1.2.7.8: the request asks for cA TRUE; subscriber certificates are never CAs")
    if isinstance(value, x509.ExtendedKeyUsage):
        extra = [u for u in value if u not in (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)]
        if extra:
            raise _refuse(f"BR 7.1.2.7.10: the request asks for extended key usage {extra[0].dotted_string}")


def _requested_names(
    csr: x509.CertificateSigningRequest, extensions: list[x509.Extension[x509.ExtensionType]]
) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    for extension in extensions:
        if not isinstance(extension.value, x509.SubjectAlternativeName):
            continue
        for general_name in extension.value:
            if isinstance(general_name, x509.DNSName):
                names.append(("dns", general_name.value))
            elif isinstance(general_name, x509.IPAddress):
                names.append(("ip", str(general_name.value)))
            else:
                kind = type(general_name).__name__
                raise _refuse(f"BR 7.1.2.7.12: subjectAltName entries are dNSName or iPAddress only, not {kind}")
    return names


def _common_name(csr: x509.CertificateSigningRequest) -> str | None:
    values = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) > 1:
        raise _refuse("BR 7.1.4.3: the request carries more than one commonName")
    return str(values[0].value) if values else None
