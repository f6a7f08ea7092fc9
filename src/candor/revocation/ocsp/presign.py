"""Pre-signing (RFC 6960 2.5; RFC 5019): a response for every issued certificate and precertificate as soon as
it is issued (BR 4.9.9 asks for one within 15 minutes; ``candor serve`` calls :meth:`OcspSigner.presign_new`
every second), re-signed at once after a revocation (:meth:`OcspSigner.on_revoked`), and refreshed after
half its validity (BR 4.9.10). This is the signer side: it loads responder keys through the key stores.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import BigInteger, Integer, Select, Table, and_, bindparam, func, or_, select, type_coerce
from sqlalchemy.types import NullType

from candor.audit import AuditLog
from candor.clock import Clock
from candor.keys import KeyStores
from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.identities import Identity, load_identities
from candor.revocation.ocsp.lint import require_clean_response
from candor.revocation.ocsp.responses import Status
from candor.revocation.ocsp.settings import OcspSettings
from candor.revocation.ocsp.store import ResponseWriter
from candor.revocation.ocsp.template import BatchSigner
from candor.storage import Database
from candor.storage.fastsql import run
from candor.storage.models import SerialRecord
from candor.storage.models_crl import CrlShard
from candor.storage.models_ocsp import OcspResponseRecord
from candor.storage.serials import serial_to_hex
from candor.storage.types import UTCDateTime
from candor.timekeeping import ClockWatch, TrustedClock, require_trustworthy

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total so far)
BATCH = 5_000  # one pass of presign_new (candor serve, every second)
BULK_BATCH = 50_000  # one pass of presign_all (each pass reads on from where the last stopped)
FULL_SCAN_EVERY = timedelta(minutes=1)  # presign_new's whole scan at least this often (BR 4.9.9: 15 minutes)
RECENT_SLACK = 256  # serial ids below the newest at a full scan that short passes look at again

S = cast(Table, SerialRecord.__table__)
R = cast(Table, OcspResponseRecord.__table__)
_SERIAL_HEX = operator.itemgetter(2)  # of a row of _columns


class ResponseSink(Protocol):
    """Where signed responses go besides the database: the in-memory index, Redis."""

    def publish(self, entries: Sequence[Entry]) -> None: ...


class OcspSigner:
    """Signs and stores OCSP responses for every issuer that has an active responder (or that the settings
    sign with the CA key), and hands them to *sinks*."""

    def __init__(
        self,
        db: Database,
        stores: KeyStores,
        clock: Clock,
        settings: OcspSettings,
        *,
        actor: str = "ocsp-presigner",
        sinks: Sequence[ResponseSink] = (),
        clock_watch: ClockWatch | None = None,
    ) -> None:
        self.db = db
        self.clock_watch = clock_watch if clock_watch is not None else TrustedClock()
        self.stores = stores
        self.clock = clock
        self.settings = settings
        self.actor = actor
        self.audit = AuditLog(clock)
        self.sinks = list(sinks)
        self._identities: dict[int, Identity] = {}
        self._writer: ResponseWriter | None = None
        # presign_new's short passes: the serial id they look from (None: the next pass scans everything), what
        # the revocation marks were and when the last complete full scan read them
        self._scan_from: int | None = None
        self._marks: Any = None
        self._full_at = datetime.min.replace(tzinfo=UTC)

    # -- what candor serve calls ------------------------------------------------------------------------
    def presign_new(self, *, limit: int = BATCH) -> int:
        """One pass: sign serials without a response, whose status or reason changed, or whose response is
        due for refresh; at most *limit* of them. Returns how many were signed (call again while > 0).

        A pass must not cost in proportion to every certificate ever issued (0.5 s of CPU for a pass with nothing
        due over 100,000 serials, twice a second in ``candor serve``; 13 ms now). So the whole scan runs when
        this signer has not completed one yet, every :data:`FULL_SCAN_EVERY`, and whenever a revocation may have
        been recorded since the last (the newest revocation time, read from its index ix_serials_revoked_at, or
        a CRL shard's revision moved: both are written in the revocation's transaction). Between those, a pass
        reads the serials from the last full scan's newest on (less :data:`RECENT_SLACK` ids, for reservations
        still in flight then; a primary-key range) and the responses due for refresh (their index); a serial
        reserved before the last full scan and issued long after it is found by the next full scan."""
        now = self.clock.now()
        identities = self._load_identities(now)
        if not identities:
            return 0
        with self.db.reader() as connection:  # a read: no write transaction
            newest_serial, newest_revocation, revisions = run(connection, _MARKS).one()
            marks = (newest_revocation, int(revisions))
            full = (
                self._scan_from is None
                or marks != self._marks
                or not (self._full_at <= now < self._full_at + FULL_SCAN_EVERY)
            )
            if full:
                rows: list[Any] = []
                for issuer_id in identities:  # one query per issuer: an expanding IN would not run through fastsql
                    if len(rows) < limit:
                        rows += run(connection, _WORK, {"issuer": issuer_id, "now": now, "limit": limit - len(rows)})
            else:
                assert self._scan_from is not None
                recent = run(connection, _RECENT, {"start": self._scan_from, "now": now, "limit": limit}).all()
                seen = {row[0] for row in recent}
                due = run(connection, _REFRESH, {"now": now, "limit": limit}).all()
                rows = [row for row in (*recent, *(row for row in due if row[0] not in seen)) if row[1] in identities]
                rows = rows[:limit]
        signed = self._sign_rows(rows, identities, now)
        if full and len(rows) < limit:  # the scan saw everything due when it read: the next passes may be short
            self._scan_from = max(int(newest_serial or 0) + 1 - RECENT_SLACK, 0)
            self._marks, self._full_at = marks, now
        return signed

    def on_revoked(self, revoked: Iterable[str]) -> int:
        """Re-sign at once the serials :func:`candor.revocation.revoke` returned ("issuer:serialhex")."""
        wanted: dict[str, list[str]] = {}
        for item in revoked:
            issuer, _, serial_hex = item.partition(":")
            wanted.setdefault(issuer, []).append(serial_hex)
        now = self.clock.now()
        identities = self._load_identities(now)
        by_name = {identity.issuer_name: identity.issuer_id for identity in identities.values()}
        clauses = [
            and_(S.c.issuer_id == by_name[name], S.c.serial_hex.in_(serials))
            for name, serials in wanted.items()
            if name in by_name
        ]
        if not clauses:
            return 0
        with self.db.reader() as connection:  # a read: no write transaction
            rows = connection.execute(_columns().where(or_(*clauses), _SIGNABLE)).all()
        return self._sign_rows(rows, identities, now)

    def presign_all(self, *, progress: Progress | None = None) -> int:
        """Bulk run: every serial due, in passes of at most :data:`BULK_BATCH` along the serials' primary key, each
        from where the last stopped (so the serials are read once, not once per pass), reporting progress. Each pass
        has its own thisUpdate (the clock when it starts). What becomes due behind the passes (a revocation
        meanwhile) is for :meth:`presign_new`, whose next pass then scans everything.

        For bulk runs in a process of their own (the cyclic garbage collector waits while a pass reads, signs and
        stores: see :func:`_collector_paused`)."""
        total, start = 0, 0
        while True:
            now = self.clock.now()
            identities = self._load_identities(now)
            if not identities:
                return total
            with _collector_paused():
                with self.db.reader() as connection:  # a read: no write transaction
                    rows = run(connection, _RECENT, {"start": start, "now": now, "limit": BULK_BATCH}).all()
                signed = self._sign_rows([row for row in rows if row[1] in identities], identities, now)
                read, start = len(rows), (rows[-1][0] + 1 if rows else start)
                del rows  # before the collector runs again
            total += signed
            if progress is not None and signed:
                progress(total, total)
            if read < BULK_BATCH:
                return total

    def rotate_responders(self) -> list[str]:
        """Issue a new delegated responder certificate (new key) for every issuer whose current one has passed
        its rotation point (half its validity by default). Returns the new responders' key labels."""
        from candor.revocation.ocsp.rotation import rotate_due  # the ceremony profile and lint, loaded here only

        rotated = rotate_due(self.db, self.stores, self.clock, self.settings, self.audit, actor=self.actor)
        if rotated:
            self._identities.clear()
        return rotated

    # -- internals --------------------------------------------------------------------------------------
    def _load_identities(self, now: datetime) -> dict[int, Identity]:
        """The signing identity of each issuer, rebuilt when its active responder changed."""
        self._identities = load_identities(self.db, self.stores, self.settings, now, self._identities)
        return self._identities

    def _sign_rows(self, rows: Sequence[Any], identities: dict[int, Identity], now: datetime) -> int:
        """Sign a response for each row of :func:`_columns` (id, issuer_id, serial_hex, status, revoked_at as the
        driver returns it, revocation_reason, response_id), store them in one transaction, audit, and publish them
        to the sinks.
        Nothing is signed while the clock watch distrusts the clock (thisUpdate and producedAt come from it):
        ``ErrorKind.UNAVAILABLE``, and the rows stay due."""
        if rows:
            require_trustworthy(self.clock_watch, f"{len(rows)} OCSP response(s)")
        by_issuer: dict[int, list[Any]] = {}
        for row in rows:
            by_issuer.setdefault(row[1], []).append(row)
        writer = self._writer_for()
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        entries: list[Entry] = []
        batches: list[_Signed] = []
        for issuer_id, issuer_rows in by_issuer.items():
            identity = identities.get(issuer_id)
            if identity is None:
                continue
            # In serial_hex order, the order of the lookup key (issuerKeyHash, serial_hex): the INSERT then adds to that
            # index's pages in turn instead of at random (SQLite, 50,000 rows: ~1.5 µs a row less, the sort ~0.8 µs)
            issuer_rows.sort(key=_SERIAL_HEX)
            batch = self._sign_batch(identity, issuer_rows, now, writer, inserts, updates, entries)
            batches.append(batch)
        if not batches:
            return 0
        with self.db.connection() as connection:  # queued with the other writers (SQLite: one write lock)
            writer.write(connection, inserts, updates)
        self._audit(batches)
        for sink in self.sinks:
            sink.publish(entries)
        return len(inserts) + len(updates)

    def _sign_batch(
        self,
        identity: Identity,
        rows: list[Any],
        now: datetime,
        writer: ResponseWriter,
        inserts: list[tuple[Any, ...]],
        updates: list[tuple[Any, ...]],
        entries: list[Entry],
    ) -> _Signed:
        """One issuer's rows: each response is the batch's template with the serial spliced in, one signature
        (:class:`BatchSigner`), and a row tuple for the database; an index entry only if there are sinks."""
        builder = identity.builder
        next_update = builder.validity(now, self.settings.validity)
        batch = BatchSigner(builder, now, next_update)
        this_p, next_p = writer.shared("this_update", now), writer.shared("next_update", next_update)
        refresh_p = writer.shared("refresh_at", min(now + self.settings.refresh_after, next_update))
        responder_p = writer.shared("responder_id", identity.responder_id)
        status_p = {name: writer.shared("status", name) for name in ("good", "revoked")}
        key_sha1 = writer.shared("issuer_key_sha1", builder.issuer.key_sha1)
        hashes, sha256_ids, publish = builder.issuer, self.settings.sha256_cert_ids, bool(self.sinks)
        signed = _Signed(identity, next_update)
        good, sign, linted = batch.good, batch.sign, identity.linted
        digest, serials, sha256, fromhex = signed.responses.update, signed.serials.append, hashlib.sha256, bytes.fromhex
        add_insert, add_update = inserts.append, updates.append
        good_p, revocation_time = status_p["good"], writer.revocation_time
        for row_id, _, serial_hex, status, revoked_at, reason, response_id in rows:
            content = fromhex(serial_hex)  # serials.serial_hex is the DER INTEGER content, as signed
            if status == "issued":
                name, response, stored_status = "good", good(content), good_p
            else:
                name, stored_status = "revoked", status_p["revoked"]
                response = sign(content, Status(revocation_time(revoked_at), reason))
            if name not in linted:  # every response of a template has this shape
                require_clean_response(response, what=f"{identity.issuer_name} {name} response")
                linted.add(name)
            etag = sha256(response).hexdigest()
            digest(response)
            serials(serial_hex)
            if response_id is None:  # in the writer's INSERT_COLUMNS / UPDATE_COLUMNS order
                add_insert(
                    (row_id, key_sha1, serial_hex, stored_status, reason, response, etag, this_p, next_p, refresh_p,
                     responder_p)
                )  # fmt: skip
            else:
                add_update((stored_status, reason, response, etag, this_p, next_p, refresh_p, responder_p, response_id))
            if publish:
                entry = Entry.make(hashes, content, response, now, next_update, sha256=sha256_ids, etag_hex=etag)
                entries.append(entry)
        return signed

    def _writer_for(self) -> ResponseWriter:
        if self._writer is None:
            self._writer = ResponseWriter(self.db.engine.dialect)
        return self._writer

    def _audit(self, batches: list[_Signed]) -> None:
        """One ``ocsp.sign`` event per issuer and batch (BR 5.4.1 "OCSP signing"): the count, the serials and
        the SHA-256 over the concatenated DER responses, so the log commits to exactly what was signed."""
        with self.db.session() as session:
            for batch in batches:
                self.audit.record(
                    session,
                    actor=self.actor,
                    action="ocsp.sign",
                    subject=batch.identity.issuer_name,
                    outcome="success",
                    details={
                        "count": len(batch.serials),
                        "responder_id": batch.identity.responder_id,
                        "serials_sha256": hashlib.sha256(",".join(batch.serials).encode()).hexdigest(),
                        "first_serial": batch.serials[0],
                        "responses_sha256": batch.responses.hexdigest(),
                        "next_update": batch.next_update.isoformat(),
                    },
                )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one bulk pass, as it was before after it. A pass allocates a few
    tuples, bytes and strings per response, none of them in a reference cycle (freed by their counts), yet the
    collector's allocation thresholds had it traverse every live object twice per 100,000 responses (gen2) and the
    young ones hundreds of times: 4 % of a pass's CPU (bench/ocsp.py, gc.callbacks). ``candor serve`` raises the
    thresholds for the same reason (candor.server.GC_THRESHOLDS); this process-wide switch is for presign_all's
    bulk runs, not for the server's passes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Signed:
    """What one issuer's batch signed, for its audit event."""

    identity: Identity
    next_update: datetime
    serials: list[str] = field(default_factory=list)
    responses: Any = field(default_factory=hashlib.sha256)  # over the DER responses, in order


def _columns(source: Any = None) -> Select[Any]:
    return select(
        S.c.id,
        S.c.issuer_id,
        S.c.serial_hex,
        S.c.status,
        # As the driver returns it (SQLite: text): the UTCDateTime processor would run on every row read, for the
        # few revoked ones; ResponseWriter.revocation_time converts those
        type_coerce(S.c.revoked_at, NullType()).label("revoked_at"),
        S.c.revocation_reason,
        R.c.id.label("response_id"),
    ).select_from(S.outerjoin(R, R.c.serial_id == S.c.id) if source is None else source)


# The newest serial id and what moves when a revocation is recorded: the newest revocation time (index
# ix_serials_revoked_at) and the CRL shards' revisions (candor.revocation.crl.marks; a backdated revocation
# may not move the first). Built once.
_MARKS = select(
    select(func.max(S.c.id)).scalar_subquery(),
    select(func.max(S.c.revoked_at)).scalar_subquery(),  # set exactly when revoked (ck_serials_revoked_has_time)
    select(func.coalesce(func.sum(CrlShard.revision), 0)).scalar_subquery(),
)


# issued (a precertificate counts: BR 7.1.2.9) or revoked; two comparisons rather than an IN list, which SQLAlchemy
# expands at execution (fastsql.run takes no expanding parameter)
_SIGNABLE = or_(S.c.status == "issued", S.c.status == "revoked")
_NOW = bindparam("now", type_=UTCDateTime())
_LIMIT = bindparam("limit", type_=Integer())


def _due(now: Any) -> Any:
    """Not expired, and its response missing, saying something else than the serial now does, or due for refresh."""
    return and_(
        or_(S.c.expires_at.is_(None), S.c.expires_at > now),
        or_(
            R.c.id.is_(None),
            and_(S.c.status == "issued", R.c.status != "good"),
            and_(S.c.status == "revoked", R.c.status != "revoked"),
            func.coalesce(R.c.revocation_reason, -1) != func.coalesce(S.c.revocation_reason, -1),
            R.c.refresh_at <= now,
        ),
    )


# The statements of presign_new and presign_all, built once (run through fastsql: SQLAlchemy's Result and Row
# objects cost more per row than the driver's fetch), with the parameters now, limit and issuer or start.

# Responses due for refresh (BR 4.9.10: at half their validity), read through their refresh_at index (no condition
# on the issuer, which would let SQLite's planner walk the issuer's serials instead).
_REFRESH = (
    _columns(S.join(R, R.c.serial_id == S.c.id))
    .where(R.c.refresh_at <= _NOW, _SIGNABLE, or_(S.c.expires_at.is_(None), S.c.expires_at > _NOW))
    .order_by(R.c.refresh_at)
    .limit(_LIMIT)
)

# What _WORK finds, among serials from id *start* on, in their order: a range of the primary key (no condition on
# the issuer, for the same reason as _REFRESH).
_RECENT = (
    _columns()
    .where(S.c.id >= bindparam("start", type_=BigInteger()), _SIGNABLE, _due(_NOW))
    .order_by(S.c.id)
    .limit(_LIMIT)
)

# Serials of one issuer that are issued or revoked and not expired, whose response is missing, says something else
# than the serial now does, or is due for refresh.
_WORK = _columns().where(S.c.issuer_id == bindparam("issuer", type_=Integer()), _SIGNABLE, _due(_NOW)).limit(_LIMIT)


def serial_key(issuer: str, serial: int) -> str:
    """The "issuer:serialhex" form :func:`candor.revocation.revoke` returns, for :meth:`OcspSigner.on_revoked`."""
    return f"{issuer}:{serial_to_hex(serial)}"
