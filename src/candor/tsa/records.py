"""The record of every token issued, written with group commit, and looked up by serial or imprint.

A token leaves the TSA only once its row in ``tsa_tokens`` is committed (fail closed: an operator must be able
to answer "did we issue this token" for every token a client holds). Committing each row on its own would cap
the service at the database's commits per second (one fsync each on SQLite with ``synchronous = FULL``), so
:class:`TokenRecorder` commits whatever rows arrived while the previous commit ran, in one transaction, and under
load (the previous transaction held more than one row) first lets rows gather for a few milliseconds: a request
waits for at most two commits and that pause, and a thousand requests in flight cost a few commits, not a
thousand. An isolated request is committed at once.

The row is written before the token is signed (the intent, as the signer stores what it will sign: DESIGN.md),
while the signature is computed; a row whose token never reached its client (the connection dropped) is
possible, a token without a row is not. A uniqueness violation (a serial used before) fails only the rows that
caused it, and those requests get systemFailure instead of a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.storage import Database, serial_to_hex
from candor.storage.models_tsa import TsaToken, TsaUnit

log = logging.getLogger(__name__)
MAX_BATCH = 2000
# Under load (the previous transaction held more than one row), the recorder lets rows gather this long before
# it commits, up to GATHER rows: a commit costs about as much CPU as 20 rows (SQLite, synchronous = FULL), so
# tiny batches cost more than the signatures. An isolated request is committed at once.
LINGER_SECONDS = 0.003
GATHER = 64
_TABLE: Table = TsaToken.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class TokenRecord:
    serial: int
    unit_id: int
    policy: str
    imprint_algorithm: str  # dotted OID
    imprint: bytes
    gen_time: datetime

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`COLUMNS`."""
        return (
            serial_to_hex(self.serial),
            self.unit_id,
            self.policy,
            self.imprint_algorithm,
            self.imprint,
            self.gen_time,
        )


COLUMNS = ("serial_hex", "unit_id", "policy", "imprint_algorithm", "imprint", "gen_time")
_Waiter = tuple[tuple[Any, ...], "asyncio.Future[None]", asyncio.AbstractEventLoop]


@functools.cache
def _insert_for(dialect: Dialect) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    """The INSERT in the driver's own parameter style, and each column's bind processor (the types' own: the
    UTC timestamp becomes what UTCDateTime stores). Rows go to the driver's executemany as plain tuples, which
    costs a third of what the same insert through SQLAlchemy's per-row parameter handling does."""
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    values = ", ".join([marker] * len(COLUMNS))
    sql = f"INSERT INTO tsa_tokens ({', '.join(COLUMNS)}) VALUES ({values})"  # noqa: S608 (constants only)
    return sql, tuple(_TABLE.c[name].type.bind_processor(dialect) for name in COLUMNS)


class TokenRecorder:
    """Commits token rows in batches from a thread of its own; ``await submit(...)`` returns once committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._wake = threading.Condition()
        self._pending: list[_Waiter] = []
        self._closed = False
        self._idle = False  # the recorder waits for a first row: only then does a new row wake it
        self._busy = False  # the last transaction held more than one row
        self.commits = 0  # transactions committed (for tests and the benchmark)
        self._thread = threading.Thread(target=self._run, name="tsa-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: TokenRecord) -> asyncio.Future[None]:
        """Queue *record*; the future is done once it is committed (or failed with a :class:`CandorError`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._wake:
            if self._closed:
                raise CandorError(ErrorKind.UNAVAILABLE, "the token recorder is closed")
            self._pending.append((record.row(), future, loop))
            if self._idle:
                self._wake.notify()
        return future

    def close(self) -> None:
        """Stop taking records; commit those already queued, then return."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._idle = True
                    self._wake.wait()
                self._idle = False
                if not self._pending:
                    return
                if self._busy and len(self._pending) < GATHER and not self._closed:
                    self._wake.wait(LINGER_SECONDS)  # submit() does not notify meanwhile; close() does
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._busy = len(batch) > 1
            errors = self._write([row for row, _, _ in batch])
            settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]]
            settled = defaultdict(list)
            for (_, future, loop), error in zip(batch, errors, strict=True):
                settled[loop].append((future, error))
            for loop, outcomes in settled.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, outcomes)  # one wake-up of each loop per batch

    def _write(self, rows: list[tuple[Any, ...]]) -> list[BaseException | None]:
        """Insert *rows* in one transaction; after a uniqueness violation, row by row. One outcome per row."""
        try:
            with self._db.connection() as connection:
                sql, processors = _insert_for(connection.dialect)
                values = [tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True)) for row in rows]
                connection.exec_driver_sql(sql, values)
            self.commits += 1
            return [None] * len(rows)
        except CandorError as exc:
            if exc.kind is not ErrorKind.CONFLICT or len(rows) == 1:
                log.error("tsa: recording %d token(s) failed: %s", len(rows), exc.message)
                return [exc] * len(rows)
        except Exception as exc:  # a pool timeout, a lock file, a driver bug: these tokens fail, the recorder lives
            log.exception("tsa: recording %d token(s) failed", len(rows))
            failed = CandorError(ErrorKind.UNAVAILABLE, f"the token record could not be written: {type(exc).__name__}")
            return [failed] * len(rows)
        return [self._write([row])[0] for row in rows]


def _settle(outcomes: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in outcomes:
        if future.done():  # cancelled: the client went away
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass(frozen=True)
class IssuedToken:
    serial_hex: str
    unit: str
    policy: str
    imprint_algorithm: str
    imprint: bytes
    gen_time: datetime


def find_tokens(session: Session, *, serial: int | None = None, imprint: bytes | None = None) -> list[IssuedToken]:
    """The recorded tokens with this serial, or over this imprint, oldest first."""
    query = select(TsaToken, TsaUnit.name).join(TsaUnit, TsaUnit.id == TsaToken.unit_id)
    if serial is not None:
        query = query.where(TsaToken.serial_hex == serial_to_hex(serial))
    if imprint is not None:
        query = query.where(TsaToken.imprint == imprint)
    return [
        IssuedToken(t.serial_hex, name, t.policy, t.imprint_algorithm, t.imprint, t.gen_time)
        for t, name in session.execute(query.order_by(TsaToken.gen_time, TsaToken.id))
    ]
