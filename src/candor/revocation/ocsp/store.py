"""Writing signed responses to ``ocsp_responses`` in bulk: an INSERT for new serials and an UPDATE for re-signed
ones, each compiled once per dialect and run through the driver's executemany with one tuple per response.

``connection.execute(insert(table), rows)`` runs every column's type processor on every row; here the values a batch
shares (its times, status, responder) are processed once, and the per-row values need none: integers and strings
have no bind processor on SQLite or psycopg, and the binary columns go as ``bytes``, which both drivers take as a
BLOB / bytea (SQLAlchemy's LargeBinary processor only wraps them in a memoryview, a tenth of pre-signing's time).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Dialect, LargeBinary, Table, bindparam, insert, update
from sqlalchemy.sql.expression import Insert, Update

from candor.storage.models_ocsp import OcspResponseRecord
from candor.storage.types import UTCDateTime

R = cast(Table, OcspResponseRecord.__table__)

# The order of a row tuple handed to ResponseWriter.insert / .update.
INSERT_COLUMNS = (
    "serial_id", "issuer_key_sha1", "serial_hex", "status", "revocation_reason", "der", "etag", "this_update",
    "next_update", "refresh_at", "responder_id",
)  # fmt: skip
UPDATE_COLUMNS = (
    "status", "revocation_reason", "der", "etag", "this_update", "next_update", "refresh_at", "responder_id", "rid",
)  # fmt: skip
CACHE_KIB_PER_ROW = 2  # SQLite's page cache while a batch is written (ResponseWriter.write)
PER_ROW = frozenset({"serial_id", "serial_hex", "der", "etag", "rid", "revocation_reason"})


class _Statement:
    def __init__(self, dialect: Dialect, statement: Insert | Update, columns: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=[c for c in columns if c != "rid"])
        self.sql = str(compiled)
        self.columns = tuple(columns)
        self.arrange: Callable[[tuple[Any, ...]], Any] | None  # None: the tuples go to the driver as they are
        if compiled.positional:
            assert compiled.positiontup is not None
            order = [self.columns.index(name) for name in compiled.positiontup]
            self.arrange = None if order == list(range(len(self.columns))) else operator.itemgetter(*order)
        else:
            names = self.columns
            self.arrange = lambda row: dict(zip(names, row, strict=True))
        for name in PER_ROW.intersection(columns) - {"rid"}:
            column_type = R.c[name].type
            if not isinstance(column_type, LargeBinary) and column_type.bind_processor(dialect) is not None:
                raise TypeError(f"ocsp_responses.{name} needs a bind processor on {dialect.name}: bind it per row")

    def run(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            arrange = self.arrange
            connection.exec_driver_sql(self.sql, rows if arrange is None else [arrange(row) for row in rows])


class ResponseWriter:
    """The compiled statements for one dialect, and the bind processing of the values a batch shares."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.insert = _Statement(dialect, insert(R), INSERT_COLUMNS)
        self.update = _Statement(dialect, update(R).where(R.c.id == bindparam("rid")), UPDATE_COLUMNS)
        self._read_time = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)

    def write(self, connection: Connection, inserts: list[tuple[Any, ...]], updates: list[tuple[Any, ...]]) -> None:
        """Store a batch in *connection*'s transaction. On SQLite the connection's page cache is raised for the
        batch to :data:`CACHE_KIB_PER_ROW` per row, then set back: a batch of pre-signing writes about 1 KiB of
        table and index pages per response, and with SQLite's default 2 MiB cache a bulk pass spilled dirty pages to
        the WAL while it inserted and read them back for the random-order (issuerKeyHash, serial) index (bench/ocsp.py:
        about 22 µs per row with the default cache, 19 with this one; memory only while the batch is written)."""
        if not inserts and not updates:
            return
        driver = connection.connection.dbapi_connection if self.dialect.name == "sqlite" else None
        previous = None
        if driver is not None:
            wanted = CACHE_KIB_PER_ROW * (len(inserts) + len(updates))
            (size,) = driver.execute("PRAGMA cache_size").fetchone()  # negative: KiB; positive: pages
            (page_size,) = driver.execute("PRAGMA page_size").fetchone()
            if (-size if size < 0 else size * page_size // 1024) < wanted:
                driver.execute(f"PRAGMA cache_size = {-wanted:d}")
                previous = size
        try:
            self.insert.run(connection, inserts)
            self.update.run(connection, updates)
        finally:
            if driver is not None and previous is not None:
                driver.execute(f"PRAGMA cache_size = {previous:d}")

    def revocation_time(self, value: Any) -> datetime:
        """``serials.revoked_at`` as the driver returned it, as the column type reads it (timezone-aware UTC)."""
        moment = value if self._read_time is None else self._read_time(value)
        assert isinstance(moment, datetime)  # a revoked serial has its time (ck_serials_revoked_has_time)
        return moment

    def shared(self, name: str, value: object) -> object:
        """*value* for column *name* as the driver takes it (the column type's bind processor applied)."""
        column_type = R.c[name].type
        processor = column_type.dialect_impl(self.dialect).bind_processor(self.dialect)
        if isinstance(column_type, LargeBinary) or processor is None:
            return value
        return processor(value)
