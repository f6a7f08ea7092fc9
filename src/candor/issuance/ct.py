"""The signer's view of Certificate Transparency: something that turns a precertificate into SCTs.

The CT role implements this (submission to the configured logs, SCT verification, the log policy). Until a
source is configured only an issuer marked private may issue, with no SCTs embedded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from cryptography import x509
from sqlalchemy import Connection
from sqlalchemy.orm import Session


class SctSource(Protocol):
    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """A TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3) meeting the CT policy, or raise
        ``CandorError(ErrorKind.UNAVAILABLE, ...)``: the signer then builds no final certificate."""
        ...


class ObtainedScts(Protocol):
    """An SCT list meeting the CT policy, and the CT role's record of how it was obtained (its audit event: every
    log's outcome), to be written by ``record(target)`` in the transaction that stores the list: a session, or a
    Core connection with *sequenced* (the database's ``audit_sequenced``)."""

    @property
    def sct_list(self) -> bytes: ...

    def record(self, target: Session | Connection, *, sequenced: bool | None = None) -> None: ...


@runtime_checkable
class RecordingSctSource(Protocol):
    """An SctSource whose record of a success can go into the signer's own transaction (one write less per
    certificate): the signer writes it with the final intent that stores the SCT list. A failure is recorded by
    the source at once, as ``obtain`` records both."""

    def obtain_unrecorded(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> ObtainedScts: ...


@runtime_checkable
class FinalQueue(Protocol):
    """An SctSource that also keeps the queue of final certificates owed to the logs (the CT role's submitter).
    The signer calls it in the transaction that stores the final certificate, so that no certificate is stored
    without the record of that debt (RFC 6962 4.1: the certificate goes to the logs whose SCTs it embeds)."""

    def queue_final(
        self, connection: Connection, *, serial_id: int, certificate_der: bytes, scts: bytes, now: datetime
    ) -> None: ...
