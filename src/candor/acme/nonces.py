"""Anti-replay nonces (RFC 8555 6.5, 7.2).

A nonce is 128 bits from the CSPRNG, base64url without padding, stored with its expiry. Using one is
deleting its row: the database decides, so a nonce is accepted once across every front-end node, and a
replay, an unknown nonce and an expired nonce are all the same answer, badNonce (RFC 8555 6.5).

Every ACME response carries a fresh nonce and most requests use one, so :meth:`NonceStore.exchange` does
both at once. With ``group_commit`` (``candor serve``) the exchanges of concurrent requests share one
transaction (:class:`candor.storage.group_commit.BatchWriter`): one ``DELETE ... RETURNING`` for the nonces
presented, one insert for the fresh ones, one commit. bench/acme.py measured a transaction per request at a
quarter of the time SQLite's write lock was held; a request's answer still waits for its nonce's commit.

Where they live (:func:`nonce_store`): on PostgreSQL, which the nodes of a multi-node deployment share, here in
the CA's database, which has no global write lock. On SQLite, one host by nature, in memory shared by
``candor serve``'s workers (:class:`candor.acme.shared_nonces.SharedNonces`): no transaction, no writer thread,
no file. They were in a SQLite file of their own beside the CA's database until 2026-11-27 (a group-commit
batch of about 1.2 exchanges, 3.5 ms of wall time per request, 8-10 % of a serving process's GIL samples).
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
from typing import Protocol

from sqlalchemy import Connection, bindparam, delete, insert

from candor.acme.shared_nonces import SharedNonces
from candor.clock import Clock
from candor.storage import Database, fastsql
from candor.storage.group_commit import BatchWriter
from candor.storage.models_acme import Nonce

NONCE_BYTES = 16
PRUNE_EVERY = 500  # issued nonces between sweeps of expired ones, so the table stays bounded
MAX_BATCH = 256
_FORM = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes in base64url without padding
_INSERT = insert(Nonce)  # statements built once
_REDEEM = (  # one nonce per statement: built once and run on the driver (fastsql), cheaper than an expanding IN
    delete(Nonce)
    .where(Nonce.value == bindparam("b_value"), Nonce.expires_at > bindparam("b_now"))
    .returning(Nonce.value)
)


class Nonces(Protocol):
    """What the ACME edge asks of a nonce store (RFC 8555 6.5): each nonce is accepted at most once, by any of the
    processes that share the store, until it expires; a nonce it did not issue is refused."""

    # True if issuing or using a nonce may wait on I/O (a database, a commit): the edge then never does it on the
    # event loop. False for the nonces in shared memory, whose only wait is a lock held for microseconds.
    blocking: bool

    def issue(self) -> str: ...

    def redeem(self, value: str) -> bool: ...

    def exchange(self, value: str | None) -> tuple[bool, str]: ...

    def close(self) -> None: ...


def nonce_store(db: Database, clock: Clock, *, lifetime: timedelta = timedelta(hours=1)) -> Nonces:
    """``candor serve``'s nonces for the CA whose database is *db*: on SQLite (one host) in memory, shared with
    the processes forked after this call, so ``candor serve`` makes them before its workers fork; on PostgreSQL
    in *db*, with group commit, a store per process (it holds no connection until first used)."""
    if db.dialect == "sqlite":
        return SharedNonces(clock, lifetime=lifetime)
    return NonceStore(db, clock, lifetime=lifetime, group_commit=True)


class NonceStore:
    """The nonces in the CA's database, for the nodes of a multi-node deployment (PostgreSQL)."""

    blocking = True  # a transaction (with group commit, a wait for the batch's commit)

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

    def close(self) -> None:
        """Stop this process's group-commit writer."""
        with self._lock:
            if self._writer is not None and self._writer_pid == os.getpid():
                self._writer.stop()
            self._writer = None

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
