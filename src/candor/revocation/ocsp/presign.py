"""Pre-signing (RFC 6960 2.5; RFC 5019): a response for every issued certificate and precertificate as soon as
it is issued (BR 4.9.9 asks for one within 15 minutes; ``candor serve`` calls :meth:`OcspSigner.presign_new`
every second), re-signed at once after a revocation (:meth:`OcspSigner.on_revoked`), and refreshed after
half its validity (BR 4.9.10). This is the signer side: it loads responder keys through the key stores.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Select, Table, and_, func, or_, select

from candor.audit import AuditLog
from candor.clock import Clock
from candor.keys import KeyStores
from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.identities import Identity, load_identities
from candor.revocation.ocsp.lint import require_clean_response
from candor.revocation.ocsp.responses import GOOD, Status
from candor.revocation.ocsp.settings import OcspSettings
from candor.revocation.ocsp.store import ResponseWriter
from candor.revocation.ocsp.template import BatchSigner
from candor.storage import Database
from candor.storage.models import SerialRecord
from candor.storage.models_crl import CrlShard
from candor.storage.models_ocsp import OcspResponseRecord
from candor.storage.serials import serial_to_hex
from candor.timekeeping import ClockWatch, TrustedClock, require_trustworthy

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total so far)
BATCH = 5_000  # one pass of presign_new (candor serve, every second)
BULK_BATCH = 50_000  # one pass of presign_all: each pass scans the serials once
FULL_SCAN_EVERY = timedelta(minutes=1)  # presign_new's whole scan at least this often (BR 4.9.9: 15 minutes)
RECENT_SLACK = 256  # serial ids below the newest at a full scan that short passes look at again

S = cast(Table, SerialRecord.__table__)
R = cast(Table, OcspResponseRecord.__table__)


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
        issuers = list(identities)
        with self.db.reader() as connection:  # a read: no write transaction
            newest_serial, newest_revocation, revisions = connection.execute(_MARKS).one()
            marks = (newest_revocation, int(revisions))
            full = (
                self._scan_from is None
                or marks != self._marks
                or not (self._full_at <= now < self._full_at + FULL_SCAN_EVERY)
            )
            if full:
                rows = connection.execute(_work_query(issuers, now, limit)).all()
            else:
                assert self._scan_from is not None
                recent = connection.execute(_recent_query(self._scan_from, now, limit)).all()
                seen = {row[0] for row in recent}
                due = connection.execute(_refresh_query(now, limit)).all()
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
            rows = connection.execute(_columns().where(or_(*clauses), S.c.status.in_(("issued", "revoked")))).all()
        return self._sign_rows(rows, identities, now)

    def presign_all(self, *, progress: Progress | None = None) -> int:
        """Bulk run: passes of :meth:`presign_new` until one finds fewer serials than it may sign (its query saw
        everything due: a further pass would scan the serials again for nothing), reporting progress."""
        total = 0
        while True:
            signed = self.presign_new(limit=BULK_BATCH)
            total += signed
            if progress is not None and signed:
                progress(total, total)
            if signed < BULK_BATCH:
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
        """Sign a response for each row of :func:`_columns` (id, issuer_id, serial_hex, status, revoked_at,
        revocation_reason, response_id), store them in one transaction, audit, and publish them to the sinks.
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
            batch = self._sign_batch(identity, issuer_rows, now, writer, inserts, updates, entries)
            batches.append(batch)
        if not batches:
            return 0
        with self.db.connection() as connection:  # queued with the other writers (SQLite: one write lock)
            writer.insert.run(connection, inserts)
            writer.update.run(connection, updates)
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
        sign, digest, serials, sha256 = batch.sign, signed.responses, signed.serials, hashlib.sha256
        for row_id, _, serial_hex, status, revoked_at, reason, response_id in rows:
            content = bytes.fromhex(serial_hex)  # serials.serial_hex is the DER INTEGER content, as signed
            state = GOOD if status == "issued" else Status(revoked_at, reason)
            response = sign(content, state)
            if state.name not in identity.linted:  # every response of a template has this shape
                require_clean_response(response, what=f"{identity.issuer_name} {state.name} response")
                identity.linted.add(state.name)
            etag = sha256(response).hexdigest()
            digest.update(response)
            serials.append(serial_hex)
            values = (status_p[state.name], reason, response, etag, this_p, next_p, refresh_p, responder_p)
            if response_id is None:
                inserts.append((row_id, key_sha1, serial_hex, *values))
            else:
                updates.append((*values, response_id))
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
        S.c.revoked_at,
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


def _refresh_query(now: datetime, limit: int) -> Select[Any]:
    """Responses due for refresh (BR 4.9.10: at half their validity), read through their refresh_at index (no
    condition on the issuer, which would let SQLite's planner walk the issuer's serials instead)."""
    return (
        _columns(S.join(R, R.c.serial_id == S.c.id))
        .where(
            R.c.refresh_at <= now,
            S.c.status.in_(("issued", "revoked")),
            or_(S.c.expires_at.is_(None), S.c.expires_at > now),
        )
        .order_by(R.c.refresh_at)
        .limit(limit)
    )


def _recent_query(scan_from: int, now: datetime, limit: int) -> Select[Any]:
    """What :func:`_work_query` finds, among serials from id *scan_from* on: a range of the primary key (no
    condition on the issuer, for the same reason as :func:`_refresh_query`)."""
    return (
        _columns()
        .where(S.c.id >= scan_from, S.c.status.in_(("issued", "revoked")), _due(now))
        .order_by(S.c.id)
        .limit(limit)
    )


def _due(now: datetime) -> Any:
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


def _work_query(issuer_ids: list[int], now: datetime, limit: int) -> Select[Any]:
    """Serials of these issuers that are issued (a precertificate counts: BR 7.1.2.9) and not expired, whose
    response is missing, says something else than the serial now does, or is due for refresh."""
    return (
        _columns().where(S.c.issuer_id.in_(issuer_ids), S.c.status.in_(("issued", "revoked")), _due(now)).limit(limit)
    )


def serial_key(issuer: str, serial: int) -> str:
    """The "issuer:serialhex" form :func:`candor.revocation.revoke` returns, for :meth:`OcspSigner.on_revoked`."""
    return f"{issuer}:{serial_to_hex(serial)}"
