"""The signer's view of Certificate Transparency: something that turns a precertificate into SCTs.

The CT role implements this (submission to the configured logs, SCT verification, the log policy). Until a
source is configured only an issuer marked private may issue, with no SCTs embedded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from cryptography import x509
from sqlalchemy import Connection


class SctSource(Protocol):
    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """A TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3) meeting the CT policy, or raise
        ``CandorError(ErrorKind.UNAVAILABLE, ...)``: the signer then builds no final certificate."""
        ...


@runtime_checkable
class FinalQueue(Protocol):
    """An SctSource that also keeps the queue of final certificates owed to the logs (the CT role's submitter).
    The signer calls it in the transaction that stores the final certificate, so that no certificate is stored
    without the record of that debt (RFC 6962 4.1: the certificate goes to the logs whose SCTs it embeds)."""

    def queue_final(
        self, connection: Connection, *, serial_id: int, certificate_der: bytes, scts: bytes, now: datetime
    ) -> None: ...
