"""Anti-replay nonces (RFC 8555 6.5, 7.2).

A nonce is 128 bits from the CSPRNG, base64url without padding, stored with its expiry. Using one is
deleting its row: the database decides, so a nonce is accepted once across every front-end node, and a
replay, an unknown nonce and an expired nonce are all the same answer, badNonce (RFC 8555 6.5).

Every ACME response carries a fresh nonce and most requests use one, so :meth:`NonceStore.exchange` does
both at once. With ``group_commit`` (``candor serve``) the exchanges of concurrent requests share one
transaction (:class:`candor.storage.group_commit.BatchWriter`): one ``DELETE ... RETURNING`` for the nonces
presented, one insert for the fresh ones, one commit. bench/acme.py measured a transaction per request at a
quarter of the time SQLite's write lock was held; a request's answer still waits for its nonce's commit.

Where they live (:meth:`NonceStore.beside`): on PostgreSQL in the CA's database, which has no global write lock.
On SQLite, whose one write lock every write of the CA queues for (bench/acme.py: held 87-95 % of the time, about
3 of an order's 19 write transactions were nonce commits, each with its own fsync), in a file of their own beside
it (``<database>.nonces``), with its own write queue and lock (:class:`candor.storage.Database` queues per file)
and without an fsync per commit (``durable=False``: WAL, ``synchronous = NORMAL``). Nonces need no durability:
RFC 8555 6.5 asks only that a nonce be accepted at most once, and a lost nonce is a badNonce the client retries
with the fresh Replay-Nonce that comes with it (RFC 8555 6.5, 7.2: every client handles it). A crash of the
process loses nothing committed; an operating-system crash or power loss may undo the last commits, deletions of
used nonces among them, which would make them acceptable again. So ``candor serve`` empties the file when it
starts (:meth:`NonceStore.empty_at_start`, in the parent before any worker forks), after which every nonce issued
before is badNonce; a worker the supervisor replaces must not empty it (the others' nonces are live, and nothing
was undone: the machine did not go down).
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import secrets
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, insert

from candor.clock import Clock
from candor.storage import Database, fastsql
from candor.storage.group_commit import BatchWriter
from candor.storage.models_acme import Nonce

NONCE_BYTES = 16
PRUNE_EVERY = 500  # issued nonces between sweeps of expired ones, so the table stays bounded
MAX_BATCH = 256
NONCE_FILE_SUFFIX = ".nonces"  # on SQLite: <database>.nonces beside the CA's database
_FORM = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes in base64url without padding
_TABLE = cast(Table, Nonce.__table__)
_INSERT = insert(Nonce)  # statements built once
_REDEEM = (  # one nonce per statement: built once and run on the driver (fastsql), cheaper than an expanding IN
    delete(Nonce)
    .where(Nonce.value == bindparam("b_value"), Nonce.expires_at > bindparam("b_now"))
    .returning(Nonce.value)
)


class NonceStore:
    def __init__(
        self, db: Database, clock: Clock, *, lifetime: timedelta = timedelta(hours=1), group_commit: bool = False
    ) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = lifetime
        self._issued = itertools.count(1)
        self._group_commit = group_commit
        self._writer: BatchWriter[str | None, tuple[bool, str]] | None = None
        self._writer_pid = 0
        self._lock = threading.Lock()
        self._own_db = False  # a database this store opened (beside), disposed by close()

    @classmethod
    def beside(
        cls, db: Database, clock: Clock, *, lifetime: timedelta = timedelta(hours=1), group_commit: bool = False
    ) -> NonceStore:
        """The nonces of the CA whose database is *db*: in *db* itself on PostgreSQL, in a file of their own on
        SQLite (see the module's docstring), its table created if missing (it is not part of the CA's
        migrations). No connection stays open: a parent that forks workers after this holds none."""
        if db.dialect != "sqlite":
            return cls(db, clock, lifetime=lifetime, group_commit=group_commit)
        nonces = Database(f"sqlite:///{db.engine.url.database}{NONCE_FILE_SUFFIX}", durable=False)
        try:
            with nonces.connection() as connection:  # in the file's write queue: workers may start together
                _TABLE.create(connection, checkfirst=True)
        finally:
            nonces.dispose()
        store = cls(nonces, clock, lifetime=lifetime, group_commit=group_commit)
        store._own_db = True
        return store

    def empty_at_start(self) -> int:
        """Forget every nonce, when ``candor serve`` starts and only then (never in a replaced worker): a file
        without an fsync per commit may have lost deletions to a power loss (see the module's docstring). Only
        for a store of its own: on PostgreSQL the nonces are as durable as the CA's database and may be other
        nodes' live ones, so nothing is deleted. Returns how many were deleted."""
        if not self._own_db:
            return 0
        with self._db.connection() as connection:
            return int(connection.execute(delete(Nonce)).rowcount)

    def close(self) -> None:
        """Stop this process's group-commit writer and close the database this store opened, if any."""
        with self._lock:
            if self._writer is not None and self._writer_pid == os.getpid():
                self._writer.stop()
            self._writer = None
        if self._own_db:
            self._db.dispose()

    def issue(self) -> str:
        return self.exchange(None)[1]

    def redeem(self, value: str) -> bool:
        """True exactly once for a nonce this server issued and that has not expired."""
        if not _FORM.match(value):
            return False
        with self._db.connection() as connection:
            return value in self._redeemed(connection, [value])

    def exchange(self, value: str | None) -> tuple[bool, str]:
        """Redeem *value* (as :meth:`redeem`; None: nothing to redeem) and issue a fresh nonce."""
        if not self._group_commit:
            return self._exchange_all([value])[0]
        return self._batcher().submit(value).result()

    def prune(self) -> int:
        """Delete expired nonces; returns how many."""
        with self._db.connection() as connection:
            return self._prune(connection)

    # -- internals ------------------------------------------------------------------------------------------
    def _exchange_all(self, values: Sequence[str | None]) -> list[tuple[bool, str]]:
        """One transaction for a batch: the nonces presented are deleted if they are live, a fresh one is stored
        for each request. A nonce presented twice in one batch is good for one of them only."""
        fresh = [base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode() for _ in values]
        wanted = [v for v in values if v is not None and _FORM.match(v)]
        with self._db.connection() as connection:
            live = self._redeemed(connection, wanted) if wanted else set()
            expires_at = self._clock.now() + self._lifetime
            fastsql.run(connection, _INSERT, [{"value": f, "expires_at": expires_at} for f in fresh])
            counted = [next(self._issued) for _ in fresh]  # every nonce issued counts towards the next sweep
            if any(count % PRUNE_EVERY == 0 for count in counted):
                self._prune(connection)
        answers = []
        for value, new in zip(values, fresh, strict=True):
            used = value is not None and value in live
            if used:
                live.discard(value)
            answers.append((used, new))
        return answers

    def _redeemed(self, connection: Connection, values: Sequence[str]) -> set[str]:
        now = self._clock.now()
        return {
            value
            for value in sorted(set(values))
            if fastsql.run(connection, _REDEEM, {"b_value": value, "b_now": now}).first() is not None
        }

    def _prune(self, connection: Connection) -> int:
        result = connection.execute(delete(Nonce).where(Nonce.expires_at <= self._clock.now()))
        return int(result.rowcount)

    def _batcher(self) -> BatchWriter[str | None, tuple[bool, str]]:
        """This process's writer, started on first use (a forked worker starts its own: threads do not fork)."""
        with self._lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = BatchWriter(
                    self._exchange_all, max_batch=MAX_BATCH, max_queued=100_000, name="acme-nonces"
                )
                self._writer.start()
                self._writer_pid = os.getpid()
            return self._writer
