"""Statements built once, run on the driver's cursor inside a SQLAlchemy connection's transaction.

``Connection.execute`` of a statement that is already built and compiled costs about 75 µs here (an execution
context, the compiled-cache lookup, parameter processing through several layers, a cursor result with its
metadata), against about 5 µs for the driver's own ``cursor.execute`` of the same SQL. An ACME order runs about
120 statements, so on ``candor serve``'s hot paths (:mod:`.acme_views`, :mod:`.acme_sql`, :mod:`.issuance_sql`,
the audit append, the rate-limit counts) that overhead was a tenth of the server's CPU (bench/acme.py).

:func:`run` keeps what SQLAlchemy contributes and drops the rest. The SQL text, the parameter order and the type
processors come from SQLAlchemy's own compilation of the statement for the connection's dialect (once per
statement, dialect and set of parameter names, as SQLAlchemy's compiled cache keys it); parameters pass through
the same bind processors (``UTCDateTime``, booleans, JSON) and rows through the same result processors; driver
errors become the same :class:`sqlalchemy.exc.DBAPIError` subclasses, so ``IntegrityError`` handling and
:func:`candor.storage.dberrors.translated` are unchanged. The statement runs in the connection's transaction (on
SQLite the ``BEGIN IMMEDIATE`` or deferred ``BEGIN`` of :mod:`.database`): a connection not in a transaction is
refused, as is anything :func:`run` cannot reproduce exactly, which then goes through ``Connection.execute``:
expanding ``IN`` parameters, Python-side column defaults, escaped parameter names.

:func:`bind` does the parameter half of :func:`run` ahead, for one dialect, and :func:`run_bound` the rest, in a
transaction: for work done before taking a lock (SQLite's one writer) that the statement then runs under.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None


class Rows:
    """The rows of one statement (fetched at once), with the part of SQLAlchemy's ``Result`` the callers use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when one or none was required")
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if not self._rows:
            raise exc.NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> Iterator[Any]:
        return (row[0] for row in self._rows)


class _Plan:
    """One compilation: the SQL, how to turn the caller's parameters into the driver's, and how to read rows."""

    __slots__ = ("binds", "columns", "compiled", "names", "results", "row_type", "sql")

    def __init__(self, compiled: Any, positional: bool) -> None:
        self.compiled = compiled
        self.sql: str = compiled.string
        self.names: tuple[str, ...] | None = tuple(compiled.positiontup) if positional else None
        self.binds: dict[str, _Processor] = dict(compiled._bind_processors)
        self.columns = list(compiled._result_columns) if compiled._result_columns else []
        keys = [column[0] for column in self.columns]
        self.row_type: Any = namedtuple("Row", keys, rename=True) if keys else None
        self.results: list[_Processor] | None = None  # from the first cursor's description

    def parameters(self, params: Params) -> Any:
        values = self.compiled.construct_params(params)
        for name, process in self.binds.items():
            if process is not None and name in values:
                values[name] = process(values[name])
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)

    def rows(self, dialect: Dialect, cursor: Any) -> list[Any]:
        if self.row_type is None or cursor.description is None:
            return []
        fetched = cursor.fetchall()
        if self.results is None:
            self.results = [
                column[3]._cached_result_processor(dialect, description[1])
                for column, description in zip(self.columns, cursor.description, strict=True)
            ]
        make, processors = self.row_type._make, self.results
        if not any(processors):
            return [make(row) for row in fetched]
        return [
            make([value if p is None or value is None else p(value) for p, value in zip(processors, row, strict=True)])
            for row in fetched
        ]


_NOT_FAST = object()  # a statement run through Connection.execute
MAX_PLANS = 1024  # statements are built once, at import; one built per call is not planned beyond this many
_plans: dict[tuple[int, str, frozenset[str], bool], Any] = {}
_plans_lock = threading.Lock()
_statements: dict[int, ClauseElement] = {}  # keeps each planned statement alive, so its id() is never reused


def _plan(statement: ClauseElement, dialect: Dialect, keys: frozenset[str], many: bool) -> Any:
    key = (id(statement), dialect.name, keys, many)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    if len(_plans) >= MAX_PLANS:
        return _NOT_FAST
    compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(keys), for_executemany=many)
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.escaped_bind_names
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or any(bind.expanding or bind.callable is not None for bind in compiled.binds.values())
        or dialect.paramstyle not in ("qmark", "pyformat")
    ):
        plan = _NOT_FAST
    else:
        plan = _Plan(compiled, dialect.positional)
    with _plans_lock:
        _statements[id(statement)] = statement
        return _plans.setdefault(key, plan)


def run(connection: Connection, statement: ClauseElement, params: Params | Sequence[Params] | None = None) -> Any:
    """Execute *statement* (built once, at import) with *params* (a mapping, or a sequence of mappings for an
    executemany without RETURNING) in *connection*'s transaction; returns :class:`Rows` (or SQLAlchemy's
    result where it falls back to ``Connection.execute``)."""
    many = isinstance(params, Sequence)
    first: Params = (params[0] if params else {}) if isinstance(params, Sequence) else (params or {})
    dialect = connection.dialect
    plan = _plan(statement, dialect, frozenset(first), many)
    if plan is _NOT_FAST or not connection.in_transaction() or (many and plan.row_type is not None):
        return connection.execute(cast(Executable, statement), params)
    if many:
        assert isinstance(params, Sequence)
        driver_params: Any = [plan.parameters(each) for each in params]
    else:
        driver_params = plan.parameters(first)
    return _execute(connection, plan, driver_params, many)


class Bound:
    """*statement* with *params* already processed into its driver's parameters for one dialect (:func:`bind`);
    :func:`run_bound` executes it. What *params* held at :func:`bind` is what runs."""

    __slots__ = ("dialect_name", "driver_params", "many", "params", "plan", "statement")

    def __init__(
        self, statement: ClauseElement, params: Params | Sequence[Params] | None, dialect_name: str, plan: Any,
        driver_params: Any, many: bool,
    ) -> None:  # fmt: skip
        self.statement, self.params, self.dialect_name = statement, params, dialect_name
        self.plan, self.driver_params, self.many = plan, driver_params, many


def bind(dialect: Dialect, statement: ClauseElement, params: Params | Sequence[Params] | None = None) -> Bound:
    """What :func:`run` does to *params* before it executes (SQLAlchemy's compilation for *dialect*, its bind
    processors), done now, e.g. before taking a lock; :func:`run_bound` then only executes."""
    many = isinstance(params, Sequence)
    first: Params = (params[0] if params else {}) if isinstance(params, Sequence) else (params or {})
    plan = _plan(statement, dialect, frozenset(first), many)
    driver_params: Any = None
    if plan is not _NOT_FAST and not (many and plan.row_type is not None):
        if isinstance(params, Sequence):
            driver_params = [plan.parameters(each) for each in params]
        else:
            driver_params = plan.parameters(first)
    return Bound(statement, params, dialect.name, plan, driver_params, many)


FEW = 8  # up to this many values, :func:`rows_for_each` runs one built statement per value


def rows_for_each(
    connection: Connection, each: ClauseElement, many: ClauseElement, params: Params, name: str, values: Sequence[Any]
) -> list[Any]:
    """The rows *many* returns, whose bind parameter *name* is an expanding ``IN`` over *values*. Up to
    :data:`FEW` values, *each* (the same statement with ``= :name``) runs once per value through :func:`run`, which
    costs less than one expanding statement through ``Connection.execute`` (an ``IN`` list is rendered per call, so
    it cannot run on the cursor). Rows come grouped by value, not in the order one ``IN`` would return them; a
    value given twice gives its rows twice."""
    if len(values) <= FEW:
        return [row for value in values for row in run(connection, each, {**params, name: value})]
    return list(connection.execute(cast(Executable, many), {**params, name: list(values)}))


def run_bound(connection: Connection, bound: Bound) -> Any:
    """Execute a :func:`bind` result in *connection*'s transaction, as :func:`run` would have (through
    :func:`run` itself, binding again, if it was bound for another dialect or cannot run on the cursor)."""
    if bound.driver_params is None or connection.dialect.name != bound.dialect_name or not connection.in_transaction():
        return run(connection, bound.statement, bound.params)
    return _execute(connection, bound.plan, bound.driver_params, bound.many)


def _execute(connection: Connection, plan: _Plan, driver_params: Any, many: bool) -> Rows:
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        try:
            if many:
                cursor.executemany(plan.sql, driver_params)
            else:
                cursor.execute(plan.sql, driver_params)
            rows = plan.rows(dialect, cursor)
            return Rows(rows, cursor.rowcount)
        finally:
            cursor.close()
    except dialect.loaded_dbapi.Error as error:
        if dialect.is_disconnect(error, dbapi_connection, cursor):
            connection.invalidate(error)
        raise exc.DBAPIError.instance(
            plan.sql, driver_params, error, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many
        ) from error
