"""Chaining appended audit events: :func:`chain_pending`, and the sequencer that runs it in ``candor serve``.

Writers append an event to ``audit_pending`` in their own transaction, with the SHA-256 of its contents and
without the chain's lock (see :class:`candor.audit.AuditLog`). :func:`chain_pending` takes the lock (a
PostgreSQL advisory lock; SQLite's write lock), re-checks each pending event's content hash, gives it the next
``seq`` and ``prev_hash``, computes its chain hash exactly as :func:`candor.audit.event_hash` always has,
inserts it into ``audit_events`` and deletes it from ``audit_pending``, all in one transaction. Events are
chained in the order of their append ids among those committed when the chainer looks, so an event whose
transaction commits late is chained after events appended after it: the chain's order is the order in which
events became durable and visible, close to commit order, and every chained event is as tamper-evident as
before. What is not chained yet is only as safe as a row in the database (see docs/storage-and-audit.md).

Who chains: :class:`AuditSequencer` in ``candor serve``'s primary worker, every :data:`SEQUENCE_INTERVAL`
seconds; every CLI command that audits (it chains in its own transaction, see ``AuditLog``); and
``candor audit verify`` before it walks the chain (:func:`candor.audit.verify_chain`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text

from candor.audit.chain import GENESIS, canonical_details, content_hash, event_hash
from candor.errors import CandorError, ErrorKind
from candor.storage import Database, fastsql
from candor.storage.models import AuditEvent, AuditPending

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key for the chain head ("candor-a" as a 64-bit integer).
AUDIT_LOCK_KEY = 0x63616E646F722D61
CHAIN_BATCH = 1000  # pending events chained per transaction
SEQUENCE_INTERVAL = 0.2  # seconds between the sequencer's passes: the usual window before an event is chained

_PENDING_COLUMNS = (
    AuditPending.id,
    AuditPending.occurred_at,
    AuditPending.actor,
    AuditPending.action,
    AuditPending.subject,
    AuditPending.outcome,
    AuditPending.details,
    AuditPending.content_hash,
)


@dataclass
class ChainRun:
    """What one :func:`chain_pending` did: the chained events by their pending id (the values stored in
    ``audit_events``), whether the batch was full (more may be waiting) and, if a pending event could not be
    chained because its contents no longer match its content hash, why (nothing after it was chained)."""

    chained: dict[int, dict[str, Any]] = field(default_factory=dict)
    full: bool = False
    refused: str | None = None


# Built once (a pass runs five times a second in candor serve).
_PENDING = select(*_PENDING_COLUMNS).order_by(AuditPending.id).limit(bindparam("b_limit"))
_ANY_PENDING = select(AuditPending.id).limit(1)
_HEAD = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_CHAIN = insert(AuditEvent)
_UNPEND = delete(AuditPending).where(AuditPending.id.in_(bindparam("b_ids", expanding=True)))


def lock_chain(connection: Connection) -> None:
    """Take the chain head for the rest of *connection*'s transaction (SQLite: its write lock already is)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})


def chain_pending(connection: Connection, *, limit: int = CHAIN_BATCH) -> ChainRun:
    """Chain up to *limit* pending events, oldest append first, in *connection*'s transaction (which holds the
    chain's lock from here to its commit). A conflict (a fork, or an event chained twice) raises
    ``ErrorKind.CONFLICT``; the caller's transaction must then roll back."""
    lock_chain(connection)
    rows = fastsql.run(connection, _PENDING, {"b_limit": limit}).all()
    run = ChainRun(full=len(rows) == limit)
    if not rows:
        return run
    head = fastsql.run(connection, _HEAD).one_or_none()
    seq, prev_hash = (head[0], head[1]) if head is not None else (0, GENESIS)
    for row in rows:
        details = _intact_details(row)
        if details is None:
            run.refused = (
                f"pending audit event {row.id} ({row.action} by {row.actor}): its contents do not match the hash"
                " stored when it was appended; it was changed before it was chained"
            )
            run.full = False
            break
        seq += 1
        values = {
            "seq": seq,
            "occurred_at": row.occurred_at,
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "outcome": row.outcome,
            "details": row.details,
            "prev_hash": prev_hash,
        }
        values["hash"] = prev_hash = event_hash(**{**values, "details": details})
        run.chained[row.id] = values
    if run.chained:
        fastsql.run(connection, _CHAIN, list(run.chained.values()))
        removed = connection.execute(_UNPEND, {"b_ids": list(run.chained)})
        if removed.rowcount != len(run.chained):
            raise CandorError(ErrorKind.CONFLICT, "pending audit events were chained by another writer; retry")
    return run


def _intact_details(row: Any) -> dict[str, Any] | None:
    """The pending event's details, if the row still matches the content hash stored when it was appended."""
    try:
        details = json.loads(row.details)
        if not isinstance(details, dict) or canonical_details(details) != row.details:
            return None
        digest = content_hash(
            occurred_at=row.occurred_at, actor=row.actor, action=row.action, subject=row.subject,
            outcome=row.outcome, details=details,
        )  # fmt: skip
    except (ValueError, CandorError):
        return None
    return details if digest == row.content_hash else None


def chain_all_pending(db: Database) -> int:
    """Chain every pending event, one transaction per batch; the number chained. A pending event whose contents
    were changed stops the chain there: ``ErrorKind.INTEGRITY``."""
    with db.reader() as connection:  # no write transaction (SQLite: the one write lock) when nothing waits
        if fastsql.run(connection, _ANY_PENDING).first() is None:
            return 0
    total = 0
    while True:
        with db.connection() as connection:
            run = chain_pending(connection)
        total += len(run.chained)
        if run.refused is not None:
            raise CandorError(ErrorKind.INTEGRITY, f"audit log: {run.refused}")
        if not run.full:
            return total


class AuditSequencer:
    """``candor serve``'s audit sequencer: a background singleton of the primary worker that chains what the
    workers append, every *interval* seconds, and once more when it stops. A pending event that fails its
    content hash stops it (and so the worker, which the supervisor restarts, and which fails again): the CA
    does not go on issuing with an audit log it cannot extend. A database that does not answer is retried."""

    def __init__(self, db: Database, *, interval: float = SEQUENCE_INTERVAL) -> None:
        self.db, self.interval = db, interval

    async def __call__(self) -> None:
        try:
            while True:
                await asyncio.to_thread(self._pass)
                await asyncio.sleep(self.interval)
        finally:
            self._pass()  # stopping (cancelled): chain what the last requests appended

    def _pass(self) -> None:
        try:
            chain_all_pending(self.db)
        except CandorError as exc:
            if exc.kind is not ErrorKind.STORAGE:
                raise
            log.warning("audit sequencer: %s; retrying", exc.message)
