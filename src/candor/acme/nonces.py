"""Anti-replay nonces (RFC 8555 6.5, 7.2).

A nonce is 128 bits from the CSPRNG, base64url without padding, stored with its expiry. Using one is
deleting its row: the database decides, so a nonce is accepted once across every front-end node, and a
replay, an unknown nonce and an expired nonce are all the same answer, badNonce (RFC 8555 6.5).

Every ACME response carries a fresh nonce and most requests use one, so :meth:`NonceStore.exchange` does
both in one transaction, with Core statements rather than an ORM session (bench/acme.py: two ORM
transactions per request were a tenth of the server's time).
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
from datetime import timedelta

from sqlalchemy import Connection, bindparam, delete, insert

from candor.clock import Clock
from candor.storage import Database
from candor.storage.models_acme import Nonce

NONCE_BYTES = 16
PRUNE_EVERY = 500  # issued nonces between sweeps of expired ones, so the table stays bounded
_FORM = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes in base64url without padding
_INSERT = insert(Nonce)  # statements built once: two per request
_DELETE = delete(Nonce).where(Nonce.value == bindparam("nonce"), Nonce.expires_at > bindparam("now"))


class NonceStore:
    def __init__(self, db: Database, clock: Clock, *, lifetime: timedelta = timedelta(hours=1)) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = lifetime
        self._issued = itertools.count(1)

    def issue(self) -> str:
        with self._db.connection() as connection:
            value = self._insert(connection)
            self._sweep_now_and_then(connection)
        return value

    def redeem(self, value: str) -> bool:
        """True exactly once for a nonce this server issued and that has not expired."""
        if not _FORM.match(value):
            return False
        with self._db.connection() as connection:
            return self._delete(connection, value)

    def exchange(self, value: str, connection: Connection) -> tuple[bool, str]:
        """Redeem *value* (as :meth:`redeem`) and issue a fresh nonce, in the caller's transaction (the request's
        one transaction before its handler's, which also finds the account's key)."""
        used = _FORM.match(value) is not None and self._delete(connection, value)
        fresh = self._insert(connection)
        self._sweep_now_and_then(connection)
        return used, fresh

    def prune(self) -> int:
        """Delete expired nonces; returns how many."""
        with self._db.connection() as connection:
            return self._prune(connection)

    def _prune(self, connection: Connection) -> int:
        result = connection.execute(delete(Nonce).where(Nonce.expires_at <= self._clock.now()))
        return int(result.rowcount)

    def _insert(self, connection: Connection) -> str:
        value = base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode("ascii")
        connection.execute(_INSERT, {"value": value, "expires_at": self._clock.now() + self._lifetime})
        return value

    def _delete(self, connection: Connection, value: str) -> bool:
        result = connection.execute(_DELETE, {"nonce": value, "now": self._clock.now()})
        return bool(result.rowcount == 1)

    def _sweep_now_and_then(self, connection: Connection) -> None:
        if next(self._issued) % PRUNE_EVERY == 0:
            self._prune(connection)
