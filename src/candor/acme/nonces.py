"""Anti-replay nonces (RFC 8555 6.5, 7.2).

A nonce is 128 bits from the CSPRNG, base64url without padding, stored with its expiry. Using one is
deleting its row: the database decides, so a nonce is accepted once across every front-end node, and a
replay, an unknown nonce and an expired nonce are all the same answer, badNonce (RFC 8555 6.5).

Every ACME response carries a fresh nonce and most requests use one, so :meth:`NonceStore.exchange` does
both at once. With ``group_commit`` (``candor serve``) the exchanges of concurrent requests share one
transaction (:class:`candor.storage.group_commit.BatchWriter`): one ``DELETE ... RETURNING`` for the nonces
presented, one insert for the fresh ones, one commit. bench/acme.py measured a transaction per request at a
quarter of the time SQLite's write lock was held; a request's answer still waits for its nonce's commit.
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

from sqlalchemy import Connection, bindparam, delete, insert

from candor.clock import Clock
from candor.storage import Database
from candor.storage.group_commit import BatchWriter
from candor.storage.models_acme import Nonce

NONCE_BYTES = 16
PRUNE_EVERY = 500  # issued nonces between sweeps of expired ones, so the table stays bounded
MAX_BATCH = 256
_FORM = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes in base64url without padding
_INSERT = insert(Nonce)  # statements built once
_REDEEM = (
    delete(Nonce)
    .where(Nonce.value.in_(bindparam("values", expanding=True)), Nonce.expires_at > bindparam("now"))
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
            connection.execute(_INSERT, [{"value": f, "expires_at": expires_at} for f in fresh])
            if any(next(self._issued) % PRUNE_EVERY == 0 for _ in fresh):
                self._prune(connection)
        answers = []
        for value, new in zip(values, fresh, strict=True):
            used = value is not None and value in live
            if used:
                live.discard(value)
            answers.append((used, new))
        return answers

    def _redeemed(self, connection: Connection, values: Sequence[str]) -> set[str]:
        rows = connection.execute(_REDEEM, {"values": sorted(set(values)), "now": self._clock.now()})
        return set(rows.scalars())

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
