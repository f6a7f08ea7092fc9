"""ACME Renewal Information (RFC 9773): the certificate identifier and the suggested renewal window.

Pure functions; the service looks certificates up and the HTTP edge serves the result.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from candor.acme.problems import AcmeProblem

RETRY_AFTER_SECONDS = 6 * 3600  # RFC 9773 4.3: how long a client should wait before asking again


@dataclass(frozen=True)
class CertId:
    """RFC 9773 4.1: the issuer's key identifier (the certificate's AKI) and the serial number."""

    key_identifier: bytes
    serial: int


def _b64url_decode(text: str) -> bytes:
    if not text or "=" in text or any(c not in _B64URL for c in text):
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def serial_octets(serial: int) -> bytes:
    """The content octets of the DER INTEGER encoding of a (positive) serial number (X.690 8.3)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def parse_cert_id(text: str) -> CertId:
    """Parse ``base64url(keyIdentifier) "." base64url(serial)``; malformed input is an ACME ``malformed``."""
    parts = text.split(".")
    try:
        if len(parts) != 2:
            raise ValueError("expected two parts separated by '.'")
        key_identifier, serial = _b64url_decode(parts[0]), _b64url_decode(parts[1])
        if len(serial) > 21:  # 20 octets of serial (RFC 5280 4.1.2.2) plus a leading zero
            raise ValueError("serial number too long")
        if serial[0] & 0x80 or (len(serial) > 1 and serial[0] == 0 and not serial[1] & 0x80):
            raise ValueError("serial is not the DER encoding of a positive INTEGER")
    except ValueError as exc:
        raise AcmeProblem("malformed", f"not an RFC 9773 certificate identifier: {exc}", 400) from None
    return CertId(key_identifier, int.from_bytes(serial, "big"))


def cert_id(certificate: x509.Certificate) -> str:
    """The RFC 9773 4.1 identifier of *certificate* (which must carry an AKI keyIdentifier)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    if aki.key_identifier is None:
        raise ValueError("the certificate's AKI has no keyIdentifier")
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_octets(certificate.serial_number))}"


def suggested_window(
    not_before: datetime, not_after: datetime, *, revoked: bool, now: datetime
) -> tuple[datetime, datetime]:
    """RFC 9773 4.2: for a certificate in good standing, the middle of its last third (from two thirds of the
    validity period to five sixths, well before expiry); for a revoked one, a window already past, so that a
    client renews at once (4.2: "a window in the past")."""
    if revoked:
        return now - timedelta(hours=2), now - timedelta(hours=1)
    validity = not_after - not_before
    return not_before + validity * 2 / 3, not_before + validity * 5 / 6
