"""Chaining appended audit events: :func:`chain_pending`, and the sequencer that runs it in ``candor serve``.

Writers append an event to ``audit_pending`` in their own transaction, with the SHA-256 of its contents and
without the chain's lock (see :class:`candor.audit.AuditLog`). :func:`chain_pending` takes the lock (a
PostgreSQL advisory lock; SQLite's write lock), re-checks each pending event's content hash, gives it the next
``seq`` and ``prev_hash``, computes its chain hash exactly as :func:`candor.audit.event_hash` always has,
inserts it into ``audit_events`` and deletes it from ``audit_pending``, all in one transaction.

:func:`chain_all_pending` (the sequencer's pass) does the same work with the lock held only for the writes: it
reads the chain head and a batch of pending events in a read-only transaction (no lock), re-checks the content
hashes and computes the chain hashes there, then, holding the lock, stores the batch only if nothing it read has
changed: the head is the same ``(seq, hash)`` (nobody chained meanwhile), and every pending row it chains is
still there with the very values it checked (the ``DELETE`` names each row by all its columns, and must remove
them all). Otherwise the transaction is rolled back, nothing of the batch stored, and :func:`chain_pending` runs
as before, re-reading and re-checking everything under the lock; so does a batch in which an event failed its
check, so that the refusal is made on what the lock holder sees. On SQLite the computation was most of the
lock's hold (a certificate's DER, in hex, in two events of every order). Events are
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
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text

from candor.audit.chain import GENESIS, content_hash_of_text, event_hash_of_text, is_canonical_details
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
_HEAD = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_CHAIN = insert(AuditEvent)
_UNPEND = delete(AuditPending).where(AuditPending.id.in_(bindparam("b_ids", expanding=True)))
# One pending row, only if it still holds exactly what was checked (run for each row of a batch: executemany).
_UNPEND_UNCHANGED = delete(AuditPending).where(
    AuditPending.id == bindparam("b_id"),
    AuditPending.occurred_at == bindparam("b_occurred_at"),
    AuditPending.actor == bindparam("b_actor"),
    AuditPending.action == bindparam("b_action"),
    AuditPending.subject == bindparam("b_subject"),
    AuditPending.outcome == bindparam("b_outcome"),
    AuditPending.details == bindparam("b_details"),
    AuditPending.content_hash == bindparam("b_content_hash"),
)


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
    if not rows:
        return ChainRun()
    run = _linked(rows, _head(connection), full=len(rows) == limit)
    if run.chained:
        fastsql.run(connection, _CHAIN, list(run.chained.values()))
        removed = connection.execute(_UNPEND, {"b_ids": list(run.chained)})
        if removed.rowcount != len(run.chained):
            raise CandorError(ErrorKind.CONFLICT, "pending audit events were chained by another writer; retry")
    return run


def _head(connection: Connection) -> tuple[int, str]:
    """The chain's last ``(seq, hash)``; ``(0, GENESIS)`` while it is empty."""
    head = fastsql.run(connection, _HEAD).one_or_none()
    return (head[0], head[1]) if head is not None else (0, GENESIS)


def _linked(rows: list[Any], head: tuple[int, str], *, full: bool) -> ChainRun:
    """*rows* (pending events, in append order) linked after *head*: their ``audit_events`` values, up to the first
    one whose contents no longer match its content hash (then refused, and not full)."""
    run = ChainRun(full=full)
    seq, prev_hash = head
    for row in rows:
        if not _intact(row):
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
        values["hash"] = prev_hash = event_hash_of_text(
            seq=seq, occurred_at=row.occurred_at, actor=row.actor, action=row.action, subject=row.subject,
            outcome=row.outcome, details_text=row.details, prev_hash=values["prev_hash"],
        )  # fmt: skip
        run.chained[row.id] = values
    return run


def _intact(row: Any) -> bool:
    """Whether the pending event still matches the content hash stored when it was appended (its details still
    canonical JSON, so that its chain hash is over the canonical form)."""
    try:
        if not is_canonical_details(row.details):
            return False
        digest = content_hash_of_text(
            occurred_at=row.occurred_at, actor=row.actor, action=row.action, subject=row.subject,
            outcome=row.outcome, details_text=row.details,
        )  # fmt: skip
    except CandorError:
        return False
    return bool(digest == row.content_hash)


def chain_all_pending(db: Database) -> int:
    """Chain every pending event, one transaction per batch; the number chained. A pending event whose contents
    were changed stops the chain there: ``ErrorKind.INTEGRITY``. Each batch is checked and linked before the
    write transaction, which only stores it (see the module's docstring)."""
    total = 0
    while True:
        # no write transaction (SQLite: the one write lock) for the reads, nor when nothing waits
        with db.reader() as connection:
            head = _head(connection)  # before the rows: if it is unchanged at the write, none of them was chained
            rows = fastsql.run(connection, _PENDING, {"b_limit": CHAIN_BATCH}).all()
        if not rows:
            return total
        run = _linked(rows, head, full=len(rows) == CHAIN_BATCH)
        done = False
        if run.refused is None:  # every row linked: its statements' parameters too are made before the lock
            unpend = fastsql.bind(db.engine.dialect, _UNPEND_UNCHANGED, [_as_checked(row) for row in rows])
            chain = fastsql.bind(db.engine.dialect, _CHAIN, list(run.chained.values()))
            try:
                with db.connection() as connection:
                    if not _store_unchanged(connection, head, unpend, chain, len(rows)):
                        run = chain_pending(connection)  # the head moved: link what is pending now, under the lock
                done = True
            except _Changed:  # rolled back: nothing of the batch was stored
                pass
        if not done:  # a refusal is made, and a changed batch linked again, by the lock holder on what it reads
            with db.connection() as connection:
                run = chain_pending(connection)
        total += len(run.chained)
        if run.refused is not None:
            raise CandorError(ErrorKind.INTEGRITY, f"audit log: {run.refused}")
        if not run.full:
            return total


class _Changed(Exception):
    """A pending row of a batch linked outside the lock was changed or removed before the write: roll back."""


def _as_checked(row: Any) -> dict[str, Any]:
    """The parameters of :data:`_UNPEND_UNCHANGED` for a pending row as it was read and checked."""
    return {
        "b_id": row.id, "b_occurred_at": row.occurred_at, "b_actor": row.actor, "b_action": row.action,
        "b_subject": row.subject, "b_outcome": row.outcome, "b_details": row.details,
        "b_content_hash": row.content_hash,
    }  # fmt: skip


def _store_unchanged(
    connection: Connection, head: tuple[int, str], unpend: fastsql.Bound, chain: fastsql.Bound, count: int
) -> bool:
    """Store a batch of *count* events linked after *head* outside the lock (*chain*, their ``audit_events`` rows;
    *unpend*, the deletion of their pending rows as checked) if the chain's head is still *head*: False, nothing
    written, if it moved; :class:`_Changed` if a row was changed or removed meanwhile (the caller's transaction
    must roll back: the rows before it were deleted)."""
    lock_chain(connection)
    if _head(connection) != head:
        return False
    if fastsql.run_bound(connection, unpend).rowcount != count:
        raise _Changed
    fastsql.run_bound(connection, chain)
    return True


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
