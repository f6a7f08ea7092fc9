"""The append-only, hash-chained audit log (BR 5.4.1) and its verifier.

:meth:`AuditLog.record` appends in the caller's transaction, so an event commits or rolls back together
with the change it describes. Events form one chain: event *n* stores the hash of event *n - 1*. A caller that
holds a write lock while it appends (SQLite's one writer) can do the work on the event's contents before taking
it: :meth:`AuditLog.prepare` checks, serialises and hashes them (a :class:`PreparedEvent`), and
:meth:`AuditLog.append` only inserts it, in the transaction.

An event is first appended to ``audit_pending`` with the SHA-256 of its contents, which takes no lock beyond
the insert. It is then chained (given its ``seq`` and ``prev_hash``, and its hash computed) by
:func:`candor.audit.sequencer.chain_pending` under the chain's lock (a PostgreSQL advisory lock; SQLite's write
lock). A session of a :class:`candor.storage.Database` whose audit events a sequencer chains
(``Database.audit_sequenced``, set by ``candor serve``) leaves its events pending, so that concurrent writers
never queue on the chain; any other session (the CLI commands, tests) chains at once, in its own transaction,
everything pending and then its own event, holding the lock to its commit as before. Whatever slips past the
lock is stopped by the database: ``seq`` is the primary key and ``prev_hash`` is UNIQUE, so a fork fails with
``ErrorKind.CONFLICT``.

Never pass secrets (passphrases, PINs, private keys, tokens) in any field: the log is kept for years and
shown to auditors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy import Connection, Row, func, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from candor.audit.chain import (
    GENESIS,
    canonical_details,
    content_hash_of_text,
    event_hash_of_text,
    is_canonical_details,
)
from candor.audit.sequencer import AUDIT_LOCK_KEY, ChainRun, chain_pending
from candor.clock import Clock, ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.storage import fastsql
from candor.storage.database import AUDIT_SEQUENCED
from candor.storage.dberrors import conflict_from
from candor.storage.models import AUDIT_OUTCOMES, AuditEvent, AuditPending

__all__ = ["AUDIT_LOCK_KEY", "AuditLog", "ChainReport", "PreparedEvent", "verify_chain"]
_APPEND = insert(AuditPending)  # built once: building it cost more than executing it, eight times an order
_APPEND_RETURNING = insert(AuditPending).returning(AuditPending.id)
_LIMITS = {"actor": 128, "action": 64, "subject": 512}


def _check_text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise CandorError(ErrorKind.INTERNAL, f"audit {field} must be a string")
    if field != "subject" and not value:
        raise CandorError(ErrorKind.INTERNAL, f"audit {field} must not be empty")
    if len(value) > _LIMITS[field]:
        raise CandorError(ErrorKind.INTERNAL, f"audit {field} is longer than {_LIMITS[field]} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise CandorError(ErrorKind.INTERNAL, f"audit {field} must not contain control characters")
    return value


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An audit event made by :meth:`AuditLog.prepare`: its fields checked, its details in their stored canonical
    JSON form and its content hash computed, so that :meth:`AuditLog.append` only inserts it. Immutable (the
    details are kept as text: changing the dict they were made from changes nothing). Make it with
    :meth:`AuditLog.prepare` only: the sequencer re-checks the hash, and an event that fails stops the chain."""

    occurred_at: datetime
    actor: str
    action: str
    subject: str
    outcome: str
    details: str  # canonical JSON (candor.audit.chain.canonical_details)
    content_hash: str
    # its insert's parameters processed for one dialect (prepare's *dialect*), for the append of a sequenced one
    bound: fastsql.Bound | None = field(default=None, repr=False, compare=False)

    def values(self) -> dict[str, Any]:
        """The ``audit_pending`` row."""
        return {
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "outcome": self.outcome,
            "details": self.details,
            "content_hash": self.content_hash,
        }


class AuditLog:
    """Appends events stamped with *clock*'s time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def record(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        subject: str,
        outcome: str,
        details: dict[str, Any],
    ) -> AuditEvent | None:
        """Append one event within *session*'s transaction (flushed, not committed): :meth:`prepare` then
        :meth:`append`.

        Returns the chained event, or None when the event is left for the deployment's sequencer (a session of
        a ``Database.audit_sequenced`` database). *outcome* is "success", "failure" or "info"; *details* is a
        JSON object of str, int, float, bool, None, list and dict (string keys) values, and must not contain
        secrets.
        """
        prepared = self.prepare(actor=actor, action=action, subject=subject, outcome=outcome, details=details)
        return self.append(session, prepared)

    def prepare(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        outcome: str,
        details: dict[str, Any],
        dialect: Dialect | None = None,
    ) -> PreparedEvent:
        """Check, serialise and hash one event, stamped with the clock's time now, outside any transaction: what
        :meth:`record` does before it inserts, for a caller that appends it later, holding a write lock (the
        same arguments and the same refusals, ``ErrorKind.INTERNAL``). Its time is the time of this call.

        With *dialect* (the database's, ``db.engine.dialect``), the insert's parameters are processed now too
        (:func:`candor.storage.fastsql.bind`), and the append of a sequenced event is the driver's execute alone."""
        if outcome not in AUDIT_OUTCOMES:
            raise CandorError(
                ErrorKind.INTERNAL, f"audit outcome {outcome!r} is not one of {', '.join(AUDIT_OUTCOMES)}"
            )
        stored_details = canonical_details(details)
        actor, action, subject = (
            _check_text(n, v) for n, v in (("actor", actor), ("action", action), ("subject", subject))
        )
        occurred_at = ensure_utc(self._clock.now())
        digest = content_hash_of_text(
            occurred_at=occurred_at, actor=actor, action=action, subject=subject, outcome=outcome,
            details_text=stored_details,  # what the sequencer checks: the stored text
        )  # fmt: skip
        prepared = PreparedEvent(occurred_at, actor, action, subject, outcome, stored_details, digest)
        if dialect is None:
            return prepared
        return replace(prepared, bound=fastsql.bind(dialect, _APPEND, prepared.values()))

    @overload
    def append(
        self, target: Session, prepared: PreparedEvent, *, sequenced: bool | None = None
    ) -> AuditEvent | None: ...

    @overload
    def append(self, target: Connection, prepared: PreparedEvent, *, sequenced: bool) -> AuditEvent | None: ...

    def append(
        self, target: Session | Connection, prepared: PreparedEvent, *, sequenced: bool | None = None
    ) -> AuditEvent | None:
        """Append *prepared* within *target*'s transaction (a session's, flushed, not committed; or a Core
        connection's, e.g. ``Database.connection()``), as :meth:`record` does.

        *sequenced*: whether the deployment's sequencer chains the event later (then it is only inserted and None
        is returned) or it is chained at once, under the chain's lock, and returned. A session knows (its
        database's ``audit_sequenced``); for a connection, pass the database's ``audit_sequenced``. A prepared
        event is appended once: again only in a retry of a transaction that rolled back."""
        if sequenced is None:
            if not isinstance(target, Session):
                raise CandorError(ErrorKind.INTERNAL, "appending on a connection: say whether it is sequenced")
            sequenced = bool(target.info.get(AUDIT_SEQUENCED))
        # Core statements on the transaction's connection: the same transaction, without a unit-of-work flush per
        # event (an order writes seven events; bench/acme.py measured the ORM path at a tenth of the server).
        if sequenced:
            connection = target.connection() if isinstance(target, Session) else target
            # no unique key: nothing to conflict on
            if prepared.bound is not None:
                fastsql.run_bound(connection, prepared.bound)  # another dialect's: bound again (run_bound)
            else:
                fastsql.run(connection, _APPEND, prepared.values())
            return None
        values = prepared.values()
        try:
            if isinstance(target, Session):
                with target.begin_nested():  # its SAVEPOINT is emitted when the connection is asked for inside it
                    appended, run = _append_and_chain(target.connection(), values)
            else:
                with target.begin_nested():
                    appended, run = _append_and_chain(target, values)
        except IntegrityError as exc:
            error = conflict_from(exc)
            if error.kind is ErrorKind.CONFLICT:
                raise CandorError(
                    ErrorKind.CONFLICT, "audit log head moved: another writer appended concurrently; retry"
                ) from None
            raise error from None
        if appended not in run.chained:
            raise CandorError(ErrorKind.INTEGRITY, f"audit log: {run.refused}")
        return AuditEvent(**run.chained[appended])  # what was stored, for the caller; not added to the session


def _append_and_chain(connection: Connection, values: dict[str, Any]) -> tuple[int, ChainRun]:
    """Append one event and chain what is pending up to it, under the chain's lock: its append id and the run."""
    appended: int = connection.execute(_APPEND_RETURNING, values).scalar_one()
    run = chain_pending(connection)
    while appended not in run.chained and run.full:
        run = chain_pending(connection)
    return appended, run


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify_chain`.

    ``head_seq``/``head_hash`` describe the last event that verified (0 and GENESIS if none did);
    ``broken_seq`` is the stored seq of the first event that did not, and ``problem`` says why; ``pending``
    counts the events appended and not (yet) chained.
    """

    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None
    pending: int = 0  # events appended but not chained (after chaining what could be)


if TYPE_CHECKING:
    _EventRow = Row[int, datetime, str, str, str, str, str, str, str]

_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.subject,
    AuditEvent.outcome,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _recomputed(row: _EventRow) -> str | None:
    """The event's hash from its stored fields, or None if its details are not canonical JSON."""
    try:
        if not is_canonical_details(row.details):
            return None
        return event_hash_of_text(
            seq=row.seq,
            occurred_at=row.occurred_at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            outcome=row.outcome,
            details_text=row.details,
            prev_hash=row.prev_hash,
        )
    except (ValueError, CandorError):
        return None


def verify_chain(
    session: Session, *, expected_head: tuple[int, str] | None = None, chain_pending_first: bool = True
) -> ChainReport:
    """Walk the log in seq order, recomputing every hash and link; report the first broken event.

    Events still pending (appended, not chained yet) are chained first, in *session*'s transaction, unless
    *chain_pending_first* is false; those left pending are counted in the report, and one whose contents no
    longer match the hash stored when it was appended makes the report fail.

    Deleting events from the end of the log leaves a shorter, intact chain; pass *expected_head*, a
    ``(seq, hash)`` recorded earlier (e.g. in a ceremony transcript), to detect that truncation too.
    """
    refused = None
    if chain_pending_first:
        run = chain_pending(session.connection())
        while run.full:
            run = chain_pending(session.connection())
        refused = run.refused
    pending = session.execute(select(func.count()).select_from(AuditPending)).scalar_one()
    result = session.execute(select(*_COLUMNS).order_by(AuditEvent.seq).execution_options(yield_per=1000))
    try:
        report = replace(_walk(result, expected_head), pending=pending)
    finally:
        result.close()  # a server-side cursor on PostgreSQL: release it even when stopping early
    if report.ok and refused is not None:
        return replace(report, ok=False, problem=refused)
    return report


def _walk(rows: Iterable[_EventRow], expected_head: tuple[int, str] | None) -> ChainReport:
    checked, head_seq, head_hash = 0, 0, GENESIS
    anchor_seen = expected_head is None or expected_head == (0, GENESIS)

    def broken(seq: int, problem: str) -> ChainReport:
        return ChainReport(False, checked, head_seq, head_hash, seq, problem)

    for row in rows:
        checked += 1
        if row.seq != head_seq + 1:
            after = f"after event {head_seq}" if head_seq else "at the start of the log"
            return broken(row.seq, f"event {row.seq}: sequence gap {after}")
        if row.prev_hash != head_hash:
            before = f"event {head_seq}" if head_seq else "the genesis value"
            return broken(row.seq, f"event {row.seq}: previous-hash link does not match {before}")
        if _recomputed(row) != row.hash:
            return broken(row.seq, f"event {row.seq}: stored hash does not match its contents")
        if expected_head is not None and row.seq == expected_head[0]:
            if row.hash != expected_head[1]:
                return broken(row.seq, f"event {row.seq}: hash differs from the expected head")
            anchor_seen = True
        head_seq, head_hash = row.seq, row.hash
    if expected_head is not None and not anchor_seen:
        return ChainReport(
            False,
            checked,
            head_seq,
            head_hash,
            head_seq + 1,
            f"log ends at event {head_seq}, before the expected head event {expected_head[0]}: truncated",
        )
    return ChainReport(True, checked, head_seq, head_hash)
