"""Pre-signing (RFC 6960 2.5; RFC 5019): a response for every issued certificate and precertificate as soon as
it is issued (BR 4.9.9 asks for one within 15 minutes; ``candor serve`` calls :meth:`OcspSigner.presign_new`
every second), re-signed at once after a revocation (:meth:`OcspSigner.on_revoked`), and refreshed after
half its validity (BR 4.9.10). This is the signer side: it loads responder keys through the key stores.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Select, Table, and_, bindparam, func, insert, or_, select, update

from candor.audit import AuditLog
from candor.clock import Clock
from candor.keys import KeyStores
from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.identities import Identity, load_identities
from candor.revocation.ocsp.lint import require_clean_response
from candor.revocation.ocsp.responses import Status
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import Database
from candor.storage.models import SerialRecord
from candor.storage.models_ocsp import OcspResponseRecord
from candor.storage.serials import serial_to_hex

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total so far)
BATCH = 5_000  # one pass of presign_new (candor serve, every second)
BULK_BATCH = 50_000  # one pass of presign_all: each pass scans the serials once

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
    ) -> None:
        self.db = db
        self.stores = stores
        self.clock = clock
        self.settings = settings
        self.actor = actor
        self.audit = AuditLog(clock)
        self.sinks = list(sinks)
        self._identities: dict[int, Identity] = {}

    # -- what candor serve calls ------------------------------------------------------------------------
    def presign_new(self, *, limit: int = BATCH) -> int:
        """One pass: sign serials without a response, whose status or reason changed, or whose response is
        due for refresh; at most *limit* of them. Returns how many were signed (call again while > 0)."""
        now = self.clock.now()
        identities = self._load_identities(now)
        if not identities:
            return 0
        with self.db.engine.connect() as connection:
            rows = connection.execute(_work_query(list(identities), now, limit)).all()
        return self._sign_rows(rows, identities, now)

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
        with self.db.engine.connect() as connection:
            rows = connection.execute(_columns().where(or_(*clauses), S.c.status.in_(("issued", "revoked")))).all()
        return self._sign_rows(rows, identities, now)

    def presign_all(self, *, progress: Progress | None = None) -> int:
        """Bulk run: every pass of :meth:`presign_new` until nothing is left, reporting progress."""
        total = 0
        while True:
            signed = self.presign_new(limit=BULK_BATCH)
            if signed == 0:
                return total
            total += signed
            if progress is not None:
                progress(total, total)

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

    def _sign_rows(self, rows: Sequence[_Row], identities: dict[int, Identity], now: datetime) -> int:
        if not rows:
            return 0
        signed: dict[int, list[tuple[_Row, bytes, datetime]]] = {}
        entries: list[Entry] = []
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        refresh_at = now + self.settings.refresh_after
        for identity in identities.values():
            next_update = identity.builder.validity(now, self.settings.validity)
            hashes = identity.builder.issuer
            for row in (r for r in rows if r.issuer_id == identity.issuer_id):
                serial = int(row.serial_hex, 16)
                status = Status(row.revoked_at, row.revocation_reason) if row.status == "revoked" else Status()
                response, cert_ids = identity.builder.build_with_ids(
                    serial, status, this_update=now, next_update=next_update
                )
                if status.name not in identity.linted:  # every response of a builder has this shape
                    require_clean_response(response, what=f"{identity.issuer_name} {status.name} response")
                    identity.linted.add(status.name)
                signed.setdefault(identity.issuer_id, []).append((row, response, next_update))
                values: dict[str, object] = {
                    "status": status.name,
                    "revocation_reason": row.revocation_reason,
                    "der": response,
                    "etag": hashlib.sha256(response).hexdigest(),
                    "this_update": now,
                    "next_update": next_update,
                    "refresh_at": min(refresh_at, next_update),
                    "responder_id": identity.responder_id,
                }
                if row.response_id is None:
                    inserts.append(
                        {
                            **values,
                            "serial_id": row.id,
                            "issuer_key_sha1": hashes.key_sha1,
                            "serial_hex": row.serial_hex,
                        }
                    )
                else:
                    updates.append({**values, "rid": row.response_id})
                entries.append(
                    Entry.make(
                        hashes,
                        serial,
                        response,
                        now,
                        next_update,
                        sha256=self.settings.sha256_cert_ids,
                        cert_ids=cert_ids,
                    )
                )
        with self.db.engine.begin() as connection:
            if inserts:
                _bulk_insert(connection, inserts)
            if updates:
                connection.execute(update(R).where(R.c.id == bindparam("rid")), updates)
        self._audit(signed)
        for sink in self.sinks:
            sink.publish(entries)
        return len(entries)

    def _audit(self, signed: dict[int, list[tuple[_Row, bytes, datetime]]]) -> None:
        """One ``ocsp.sign`` event per issuer and batch (BR 5.4.1 "OCSP signing"): the count, the serials and
        the SHA-256 over the concatenated DER responses, so the log commits to exactly what was signed."""
        with self.db.session() as session:
            for issuer_id, items in signed.items():
                identity = self._identities[issuer_id]
                digest = hashlib.sha256(b"".join(response for _, response, _ in items)).hexdigest()
                serials = ",".join(row.serial_hex for row, _, _ in items)
                self.audit.record(
                    session,
                    actor=self.actor,
                    action="ocsp.sign",
                    subject=identity.issuer_name,
                    outcome="success",
                    details={
                        "count": len(items),
                        "responder_id": identity.responder_id,
                        "serials_sha256": hashlib.sha256(serials.encode()).hexdigest(),
                        "first_serial": items[0][0].serial_hex,
                        "responses_sha256": digest,
                        "next_update": items[0][2].isoformat(),
                    },
                )


class _Row(Protocol):
    id: int
    issuer_id: int
    serial_hex: str
    status: str
    revoked_at: datetime | None
    revocation_reason: int | None
    response_id: int | None


def _bulk_insert(connection: Connection, rows: list[dict[str, object]]) -> None:
    """INSERT many responses through the driver's executemany: the statement compiled once for this dialect,
    each column's bind processor applied once per distinct value (a batch shares its times and status), where
    ``connection.execute(insert(R), rows)`` would run the type processors on every row (a third of the cost of
    pre-signing on SQLite)."""
    columns = list(rows[0])
    compiled = insert(R).compile(dialect=connection.dialect, column_keys=columns)
    dialect = connection.dialect
    processors = {}
    for name in columns:
        processor = R.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = functools.lru_cache(maxsize=8)(processor) if name in _SHARED else processor
    names = compiled.positiontup if compiled.positional else None

    def value(row: dict[str, object], name: str) -> object:
        processor = processors.get(name)
        return row[name] if processor is None else processor(row[name])

    if names is not None:
        params: list[Any] = [tuple(value(row, name) for name in names) for row in rows]
    else:
        params = [{name: value(row, name) for name in columns} for row in rows]
    connection.exec_driver_sql(str(compiled), params)


_SHARED = frozenset({"this_update", "next_update", "refresh_at", "status", "responder_id", "revocation_reason"})


def _columns() -> Select[Any]:
    return select(
        S.c.id,
        S.c.issuer_id,
        S.c.serial_hex,
        S.c.status,
        S.c.revoked_at,
        S.c.revocation_reason,
        R.c.id.label("response_id"),
    ).select_from(S.outerjoin(R, R.c.serial_id == S.c.id))


def _work_query(issuer_ids: list[int], now: datetime, limit: int) -> Select[Any]:
    """Serials of these issuers that are issued (a precertificate counts: BR 7.1.2.9) and not expired, whose
    response is missing, says something else than the serial now does, or is due for refresh."""
    return (
        _columns()
        .where(
            S.c.issuer_id.in_(issuer_ids),
            S.c.status.in_(("issued", "revoked")),
            or_(S.c.expires_at.is_(None), S.c.expires_at > now),
            or_(
                R.c.id.is_(None),
                and_(S.c.status == "issued", R.c.status != "good"),
                and_(S.c.status == "revoked", R.c.status != "revoked"),
                func.coalesce(R.c.revocation_reason, -1) != func.coalesce(S.c.revocation_reason, -1),
                R.c.refresh_at <= now,
            ),
        )
        .limit(limit)
    )


def serial_key(issuer: str, serial: int) -> str:
    """The "issuer:serialhex" form :func:`candor.revocation.revoke` returns, for :meth:`OcspSigner.on_revoked`."""
    return f"{issuer}:{serial_to_hex(serial)}"
