"""What a final certificate owes the logs: one ``ct_submissions`` row per log whose SCT it embeds.

RFC 6962 3.3 lets a certificate carry SCTs for its precertificate; the certificate itself is then still
submitted to those logs (add-chain, 4.1) to complete the public record. The rows are written in the
transaction that stores the final certificate (the signer's last stage, through
:meth:`candor.ct.submit.client.CtSubmitter.queue_final`), so a certificate is never stored without its debt,
even across a crash; :class:`candor.ct.submit.final.FinalSubmissions` pays it in the background.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select

from candor.ct.submit.loglist import LogList
from candor.ct.submit.sct import SctError, parse_sct_list
from candor.errors import CandorError, ErrorKind
from candor.storage import fastsql
from candor.storage.models_ct_submit import CtSubmission

UNLISTED = "a log not in the log list"


def log_ids_of(sct_list: bytes) -> list[bytes]:
    """The LogIDs of a SignedCertificateTimestampList (RFC 6962 3.3), in order, each once."""
    try:
        scts = parse_sct_list(sct_list)
    except SctError as exc:
        raise CandorError(ErrorKind.INTERNAL, f"the certificate's SCT list cannot be read: {exc}") from None
    return list(dict.fromkeys(sct.log_id for sct in scts))


def queue_owed(
    connection: Connection,
    log_list: LogList,
    *,
    serial_id: int,
    certificate_der: bytes,
    log_ids: Iterable[bytes],
    now: datetime,
) -> int:
    """Insert a pending row for each of *log_ids* the serial has none for yet (UNIQUE(serial_id, log_id)); how
    many were added."""
    existing = set(fastsql.run(connection, _OWED_BY_SERIAL, {"b_serial": serial_id}).scalars())
    sha256 = hashlib.sha256(certificate_der).hexdigest()
    rows = []
    for log_id in dict.fromkeys(log_ids):
        if log_id in existing:
            continue
        known = log_list.by_id(log_id)
        rows.append(
            {
                "serial_id": serial_id, "log_id": log_id,
                "log_description": known.description if known is not None else UNLISTED,
                "certificate_sha256": sha256, "attempts": 0, "next_attempt_at": now, "last_error": None,
                "done": False, "sct_timestamp": None, "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
    if rows:
        fastsql.run(connection, _INSERT, rows)
    return len(rows)


_OWED_BY_SERIAL = select(CtSubmission.log_id).where(CtSubmission.serial_id == bindparam("b_serial"))
_INSERT = insert(CtSubmission)


__all__ = ["log_ids_of", "queue_owed"]
