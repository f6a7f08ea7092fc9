"""The signer's view of Certificate Transparency: something that turns a precertificate into SCTs.

The CT role implements this (submission to the configured logs, SCT verification, the log policy). Until a
source is configured only an issuer marked private may issue, with no SCTs embedded.
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509


class SctSource(Protocol):
    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """A TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3) meeting the CT policy, or raise
        ``CandorError(ErrorKind.UNAVAILABLE, ...)``: the signer then builds no final certificate."""
        ...
