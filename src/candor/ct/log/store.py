"""The log's reads and writes in the database, in Core SQL (these run per batch, on the hot path).

:func:`append_batch` is the write path's one transaction per batch of submissions: it takes the log row's
lock, dedupes against stored entries, assigns leaf indexes, signs the SCTs and stores everything before any
SCT is released. :func:`save_tree_head` stores a tree head with the tiles it covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from candor.ct.log import tls
from candor.ct.log.chain import Submission, fingerprint
from candor.ct.log.merkle import leaf_hash
from candor.ct.log.signer import SignedTreeHead
from candor.storage import Database, add_key, fastsql, key_by_label
from candor.storage.models_ct import CtEntry, CtIssuer, CtLog, CtTile, CtTreeHead

ENTRIES = cast(Table, CtEntry.__table__)
ISSUERS = cast(Table, CtIssuer.__table__)
LOGS = cast(Table, CtLog.__table__)
TILES = cast(Table, CtTile.__table__)
HEADS = cast(Table, CtTreeHead.__table__)
_IN_CHUNK = 500


@dataclass(frozen=True)
class Logged:
    """What an SCT states about an entry (RFC 6962 3.2), new or found again."""

    leaf_index: int
    timestamp: int
    extensions: bytes
    signature: bytes


@dataclass(frozen=True)
class StoredEntry:
    leaf_index: int
    leaf_input: bytes
    entry_type: tls.EntryType
    precertificate: bytes | None
    chain: tuple[bytes, ...]  # issuer fingerprints


SignSct = Callable[[int, tls.SignedEntry, bytes], bytes]  # (timestamp, entry, extensions) -> DER signature


def adopt_key(db: Database, registry: Database, label: str) -> None:
    """Record in *db* (a log's own database) the key record *label* of *registry* (the CA's database, where the
    ceremony records every key), so that the log's row can name its key there too; a record of that label already
    in *db* must be of the same public key."""
    with registry.session() as session:
        record = key_by_label(session, label)
        if record is None:
            raise ValueError(f"no key record labelled {label!r}")
        session.expunge(record)
    with db.session() as session:
        kept = key_by_label(session, label)
        if kept is None:
            add_key(
                session, label=record.label, store=record.store, backend=record.backend, algorithm=record.algorithm,
                handle=record.handle, public_key_der=record.public_key_der, purpose=record.purpose,
                created_at=record.created_at,
            )  # fmt: skip
        elif kept.public_key_der != record.public_key_der:
            raise ValueError(f"the log's database records another key labelled {label!r}")


def ensure_log(
    db: Database, *, name: str, key_label: str, log_id: bytes, now: datetime, registry: Database | None = None
) -> int:
    """The log's row id, creating the row on first start; refuses a name whose stored key differs. A new row's
    key record is first copied from *registry* (:func:`adopt_key`) when that is another database."""
    with db.session() as session:
        row = _existing(session, name, log_id)
    if row is not None:
        return row
    if registry is not None and registry is not db:
        adopt_key(db, registry, key_label)
    with db.session() as session:
        row = _existing(session, name, log_id)  # another process of this log may have created it meanwhile
        if row is not None:
            return row
        key = key_by_label(session, key_label)
        if key is None:
            raise ValueError(f"no key record labelled {key_label!r}")
        log = CtLog(name=name, log_id=log_id, key_id=key.id, size=0, created_at=now)
        session.add(log)
        session.flush()
        return log.id


def _existing(session: Session, name: str, log_id: bytes) -> int | None:
    row = session.execute(select(CtLog).where(CtLog.name == name)).scalar_one_or_none()
    if row is None:
        return None
    if row.log_id != log_id:
        raise ValueError(f"CT log {name!r} was created with another key (LogID {row.log_id.hex()})")
    return row.id


def tree_size_of(connection: Connection, name: str) -> int:
    """The size of the newest tree head stored for the log *name* (0: no such log, or no tree head yet)."""
    size = connection.execute(
        select(HEADS.c.tree_size).join(LOGS, LOGS.c.id == HEADS.c.ct_log_id).where(LOGS.c.name == name)
        .order_by(HEADS.c.tree_size.desc()).limit(1)
    ).scalar_one_or_none()  # fmt: skip
    return int(size or 0)


def stored_size(connection: Connection, log: int) -> int:
    """How many entries the log has sequenced (stored, with SCTs given), integrated or not."""
    return int(connection.execute(select(LOGS.c.size).where(LOGS.c.id == log)).scalar_one())


def lock_logs(connection: Connection, logs: Sequence[int]) -> None:
    """Take the rows of *logs* for the rest of the transaction, in ascending order (PostgreSQL ``FOR UPDATE``;
    SQLite's write lock already excludes every other writer). A batch for several logs takes them all before it
    stores anything: otherwise a process holding one log's row while it inserts a new issuer, and another holding
    the second log's row and inserting the same issuer, would wait on each other (the issuer's unique key)."""
    if connection.dialect.name == "postgresql":
        for log in sorted(logs):
            connection.execute(_SIZE_FOR_UPDATE, {"b_log": log})


def append_batch(
    connection: Connection,
    log: int,
    submissions: Sequence[Submission],
    *,
    now_ms: Callable[[], int],
    sign: SignSct,
    known_issuers: set[bytes],
) -> list[Logged]:
    """Store *submissions* as new entries (or find them stored already), in the caller's transaction.

    Every process that serves the log may append: the log row's lock (SQLite's write lock; ``FOR UPDATE`` on
    PostgreSQL) orders the writers, so leaf indexes are contiguous and unique, and the timestamp, read once the
    lock is held, never goes back as the indexes go up."""
    # one writer at a time per log, across processes (FOR UPDATE on PostgreSQL; SQLite's write lock)
    size_query = _SIZE_FOR_UPDATE if connection.dialect.name == "postgresql" else _SIZE
    size = fastsql.run(connection, size_query, {"b_log": log}).scalar_one()
    timestamp = now_ms()
    found: dict[bytes, Logged] = {}
    for identity, index, ts, leaf_input, signature in _stored(connection, log, list({s.identity for s in submissions})):
        extensions = tls.parse_merkle_tree_leaf(leaf_input).extensions
        found[identity] = Logged(index, ts, extensions, signature)
    new_rows: list[dict[str, object]] = []
    new_issuers: dict[bytes, bytes] = {}
    for submission in submissions:
        if submission.identity in found:
            continue
        index = size + len(new_rows)
        extensions = tls.leaf_index_extension(index)  # static-ct-api: every SCT names its leaf index
        leaf_input = tls.merkle_tree_leaf(timestamp, submission.entry, extensions)
        signature = sign(timestamp, submission.entry, extensions)
        found[submission.identity] = Logged(index, timestamp, extensions, signature)
        chain = [fingerprint(der) for der in submission.chain]
        for print_, der in zip(chain, submission.chain, strict=True):
            if print_ not in known_issuers:
                new_issuers[print_] = der
        new_rows.append(
            {
                "ct_log_id": log,
                "leaf_index": index,
                "identity_hash": submission.identity,
                "leaf_hash": leaf_hash(leaf_input),
                "timestamp": timestamp,
                "entry_type": int(submission.entry.entry_type),
                "leaf_input": leaf_input,
                "precertificate": submission.precertificate,
                "chain": b"".join(chain),
                "sct_signature": signature,
            }
        )
    if new_issuers:
        _insert_ignoring_duplicates(connection, [{"fingerprint": k, "der": v} for k, v in new_issuers.items()])
    if new_rows:
        fastsql.run(connection, _INSERT_ENTRY, new_rows)
        fastsql.run(connection, _SET_SIZE, {"b_log": log, "size": size + len(new_rows)})
    known_issuers.update(new_issuers)
    return [found[s.identity] for s in submissions]


# append_batch's statements, built once (it runs for every batch of every log)
_SIZE = select(LOGS.c.size).where(LOGS.c.id == bindparam("b_log"))
_SIZE_FOR_UPDATE = _SIZE.with_for_update()
_STORED = select(
    ENTRIES.c.identity_hash, ENTRIES.c.leaf_index, ENTRIES.c.timestamp, ENTRIES.c.leaf_input, ENTRIES.c.sct_signature
).where(
    ENTRIES.c.ct_log_id == bindparam("b_log"), ENTRIES.c.identity_hash.in_(bindparam("b_identities", expanding=True))
)
_STORED_ONE = select(
    ENTRIES.c.identity_hash, ENTRIES.c.leaf_index, ENTRIES.c.timestamp, ENTRIES.c.leaf_input, ENTRIES.c.sct_signature
).where(ENTRIES.c.ct_log_id == bindparam("b_log"), ENTRIES.c.identity_hash == bindparam("b_identities"))
_INSERT_ENTRY = insert(ENTRIES)
_SET_SIZE = update(LOGS).where(LOGS.c.id == bindparam("b_log"))


def _stored(connection: Connection, log: int, identities: list[bytes]) -> list[Any]:
    """The stored rows (identity, index, timestamp, leaf input, signature) of those of *identities* the log has."""
    found: list[Any] = []
    for start in range(0, len(identities), _IN_CHUNK):
        chunk = identities[start : start + _IN_CHUNK]
        found += fastsql.rows_for_each(connection, _STORED_ONE, _STORED, {"b_log": log}, "b_identities", chunk)
    return found


def _insert_ignoring_duplicates(connection: Connection, rows: list[dict[str, object]]) -> None:
    statement = (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(ISSUERS)
    connection.execute(statement.on_conflict_do_nothing(index_elements=["fingerprint"]), rows)


def entries(connection: Connection, log: int, start: int, end: int) -> list[StoredEntry]:
    """Entries with leaf indexes in [start, end), in order."""
    rows = connection.execute(_ENTRIES, {"b_log": log, "b_start": start, "b_end": end})
    return [
        StoredEntry(
            index, leaf_input, tls.EntryType(kind), precert, tuple(chain[i : i + 32] for i in range(0, len(chain), 32))
        )
        for index, leaf_input, kind, precert, chain in rows
    ]


_ENTRIES = (  # built once: the sequencer reads new entries every round
    select(ENTRIES.c.leaf_index, ENTRIES.c.leaf_input, ENTRIES.c.entry_type, ENTRIES.c.precertificate,
           ENTRIES.c.chain)
    .where(ENTRIES.c.ct_log_id == bindparam("b_log"), ENTRIES.c.leaf_index >= bindparam("b_start"),
           ENTRIES.c.leaf_index < bindparam("b_end"))
    .order_by(ENTRIES.c.leaf_index)
)  # fmt: skip


def index_of_leaf_hash(connection: Connection, log: int, value: bytes, below: int) -> int | None:
    """The first leaf index below *below* whose leaf hash is *value* (RFC 6962 4.5)."""
    return connection.execute(
        select(ENTRIES.c.leaf_index)
        .where(ENTRIES.c.ct_log_id == log, ENTRIES.c.leaf_hash == value, ENTRIES.c.leaf_index < below)
        .order_by(ENTRIES.c.leaf_index)
        .limit(1)
    ).scalar_one_or_none()


def issuers(connection: Connection, fingerprints: Iterable[bytes]) -> dict[bytes, bytes]:
    wanted = list(set(fingerprints))
    found: dict[bytes, bytes] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        rows = connection.execute(
            select(ISSUERS.c.fingerprint, ISSUERS.c.der).where(
                ISSUERS.c.fingerprint.in_(wanted[start : start + _IN_CHUNK])
            )
        )
        found.update({print_: der for print_, der in rows})
    for print_, der in found.items():
        if hashlib.sha256(der).digest() != print_:
            raise ValueError(f"stored issuer {print_.hex()} does not hash to its fingerprint")
    return found


def latest_tree_head(connection: Connection, log: int) -> SignedTreeHead | None:
    row = connection.execute(
        select(HEADS.c.tree_size, HEADS.c.timestamp, HEADS.c.root_hash, HEADS.c.signature)
        .where(HEADS.c.ct_log_id == log)
        .order_by(HEADS.c.tree_size.desc(), HEADS.c.timestamp.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else SignedTreeHead(row[0], row[1], row[2], row[3])


def tiles(connection: Connection, log: int) -> dict[tuple[int, int], bytes]:
    rows = connection.execute(select(TILES.c.level, TILES.c.tile_index, TILES.c.hashes).where(TILES.c.ct_log_id == log))
    return {(level, index): hashes for level, index, hashes in rows}


def save_tree_head(
    connection: Connection, log: int, head: SignedTreeHead, changed: Sequence[tuple[int, int, bytes]]
) -> None:
    """Store the tiles that changed and the tree head covering them, in the caller's transaction."""
    if changed:
        connection.execute(_DELETE_TILE, [{"b_log": log, "b_level": lv, "b_index": ix} for lv, ix, _ in changed])
        connection.execute(
            _INSERT_TILE, [{"ct_log_id": log, "level": lv, "tile_index": ix, "hashes": hs} for lv, ix, hs in changed]
        )
    values = {"ct_log_id": log, "tree_size": head.tree_size, "timestamp": head.timestamp,
              "root_hash": head.root_hash, "signature": head.signature}  # fmt: skip
    connection.execute(_INSERT_HEAD, values)


# save_tree_head's statements, built once (every integration round of every log)
_DELETE_TILE = delete(TILES).where(
    TILES.c.ct_log_id == bindparam("b_log"),
    TILES.c.level == bindparam("b_level"),
    TILES.c.tile_index == bindparam("b_index"),
)
_INSERT_TILE = insert(TILES)
_INSERT_HEAD = insert(HEADS)
