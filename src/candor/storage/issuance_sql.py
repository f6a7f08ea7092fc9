"""Core SQL for the signer's issuance cycle: one statement per function, on the caller's connection (a session's,
so in its transaction), without the ORM's unit of work.

bench/acme.py measured the ORM's savepoint-and-flush inserts, ``Session.get`` with chained joined loads and
``refresh`` at about a tenth of the server's CPU in the signer alone. The statements are built once, at import,
with bound parameters: building one and computing its cache key cost about 140-250 us a call, executing a built
one 20-40 us. Uniqueness that matters stays a database
constraint: a serial is claimed by ``INSERT ... ON CONFLICT DO NOTHING`` under UNIQUE(issuer_id, serial_hex)
(no row back means it was taken; no savepoint needed to go on), an order by a conditional UPDATE, a stage by a
conditional UPDATE of the issuance's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from candor.errors import CandorError, ErrorKind
from candor.storage.fastsql import rows_for_each, run
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_issuance import Authorization, BlockedKey, Issuance, IssuedName, Order


@dataclass(frozen=True)
class OrderFacts:
    """An order as the signer reads it (identifiers in their stored canonical JSON)."""

    id: int
    account_id: int
    status: str
    identifiers: str
    profile: str
    issuer_id: int


_ORDER = select(Order.id, Order.account_id, Order.status, Order.identifiers, Order.profile, Order.issuer_id).where(
    Order.id == bindparam("b_id")
)
_ISSUANCE_OF_ORDER = select(Issuance.id).where(Issuance.order_id == bindparam("b_order"))
_ORDER_IF = update(Order).where(Order.id == bindparam("b_id"), Order.status == bindparam("b_status"))
_ORDER_SET = update(Order).where(Order.id == bindparam("b_id"))


def order_facts(connection: Connection, order_id: int) -> OrderFacts | None:
    row = run(connection, _ORDER, {"b_id": order_id}).one_or_none()
    return OrderFacts(*row) if row is not None else None


def issuance_id_for_order(connection: Connection, order_id: int) -> int | None:
    found: int | None = run(connection, _ISSUANCE_OF_ORDER, {"b_order": order_id}).scalar_one_or_none()
    return found


def claim_order(connection: Connection, order_id: int, *, now: datetime) -> bool:
    """Move a ready order to processing; False if it is not ready (another finalization got there first). The
    conditional UPDATE is the lock: of two concurrent finalizations exactly one changes the row."""
    values = {"b_id": order_id, "b_status": "ready", "status": "processing", "updated_at": now}
    return bool(run(connection, _ORDER_IF, values).rowcount == 1)


def finish_order(
    connection: Connection, order_id: int, *, status: str, now: datetime, error: str | None = None
) -> None:
    run(connection, _ORDER_SET, {"b_id": order_id, "status": status, "error": error, "updated_at": now})


def valid_authorizations(
    connection: Connection, *, account_id: int, values: Iterable[str]
) -> Sequence[Row[int, str, str, str, str | None, datetime | None, datetime, datetime | None]]:
    """Every valid authorization of the account for any of *values*: (id, identifier_type, identifier_value,
    status, method, validated_at, expires_at, caa_checked_at); the caller checks time and method."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    return rows_for_each(
        connection, _VALID_AUTHORIZATION, _VALID_AUTHORIZATIONS, {"b_account": account_id}, "b_values", wanted
    )


_AUTHORIZATION_FACTS = select(
    Authorization.id, Authorization.identifier_type, Authorization.identifier_value, Authorization.status,
    Authorization.method, Authorization.validated_at, Authorization.expires_at, Authorization.caa_checked_at,
).where(Authorization.account_id == bindparam("b_account"), Authorization.status == "valid")  # fmt: skip
_VALID_AUTHORIZATIONS = _AUTHORIZATION_FACTS.where(
    Authorization.identifier_value.in_(bindparam("b_values", expanding=True))
)
_VALID_AUTHORIZATION = _AUTHORIZATION_FACTS.where(Authorization.identifier_value == bindparam("b_values"))
_BLOCKED = select(BlockedKey.spki_sha256).where(BlockedKey.spki_sha256 == bindparam("b_spki"))
_ISSUER_STATE = select(Issuer.name, Issuer.kind, Issuer.status, Issuer.not_before, Issuer.not_after).where(
    Issuer.id == bindparam("b_id")
)


def key_blocked(connection: Connection, spki_sha256: str) -> bool:
    return run(connection, _BLOCKED, {"b_spki": spki_sha256}).first() is not None


class IssuerState(NamedTuple):
    name: str
    kind: str
    status: str
    not_before: datetime
    not_after: datetime


def issuer_state(connection: Connection, issuer_id: int) -> IssuerState | None:
    """(name, kind, status, not_before, not_after) of an issuer, read fresh (its status may change)."""
    row = run(connection, _ISSUER_STATE, {"b_id": issuer_id}).one_or_none()
    return None if row is None else IssuerState(*row)


def reserve_serial(
    connection: Connection, *, issuer_id: int, serial_hex: str, order_ref: str | None, created_at: datetime
) -> int | None:
    """Claim *serial_hex* under the issuer (UNIQUE(issuer_id, serial_hex)); its row id, or None if it was taken."""
    values = {
        "issuer_id": issuer_id, "serial_hex": serial_hex, "order_ref": order_ref, "status": "reserved",
        "created_at": created_at,
    }  # fmt: skip
    statement = _RESERVE_PG if connection.dialect.name == "postgresql" else _RESERVE_SQLITE
    found = run(connection, statement, values).scalar_one_or_none()
    return int(found) if found is not None else None


_RESERVE_PG = (
    pg_insert(SerialRecord)
    .on_conflict_do_nothing(index_elements=["issuer_id", "serial_hex"])
    .returning(SerialRecord.id)
)
_RESERVE_SQLITE = (
    sqlite_insert(SerialRecord)
    .on_conflict_do_nothing(index_elements=["issuer_id", "serial_hex"])
    .returning(SerialRecord.id)
)


def insert_issuance(
    connection: Connection,
    *,
    serial_id: int,
    order: OrderFacts,
    precert_tbs: bytes,
    precert_tbs_sha256: str,
    now: datetime,
) -> int:
    """The signer's record of intent (UNIQUE(order_id): one issuance per order); its id."""
    values = {
        "serial_id": serial_id, "order_id": order.id, "account_id": order.account_id, "profile": order.profile,
        "state": "intent", "precert_tbs": precert_tbs, "precert_tbs_sha256": precert_tbs_sha256, "created_at": now,
        "updated_at": now,
    }  # fmt: skip
    return int(run(connection, _INSERT_ISSUANCE, values).scalar_one())


_INSERT_ISSUANCE = insert(Issuance).returning(Issuance.id)
_MOVE = update(Issuance).where(Issuance.id == bindparam("b_id"), Issuance.state == bindparam("b_old"))


def move_issuance(
    connection: Connection, issuance_id: int, old: str, new: str, *, now: datetime, **values: object
) -> bool:
    """Advance an issuance from state *old* to *new* (with *values*); False if another process moved it first."""
    parameters = {"b_id": issuance_id, "b_old": old, "state": new, "updated_at": now, **values}
    return bool(run(connection, _MOVE, parameters).rowcount == 1)


def store_certificate(connection: Connection, values: dict[str, object], *, serial_hex: str) -> None:
    """Insert a checked ``certificates`` row (:func:`candor.storage.repositories.certificate_values`; a second of
    one kind for a serial is refused by UNIQUE(serial_id, kind)) and mark its serial issued until the
    certificate expires (a precertificate counts as issuance, BR 7.1.2.9). A revoked serial is refused."""
    run(connection, _INSERT_CERTIFICATE, values)
    marked = run(
        connection, _MARK_ISSUED, {"b_id": values["serial_id"], "status": "issued", "expires_at": values["not_after"]}
    )
    if marked.rowcount != 1:
        raise CandorError(ErrorKind.POLICY, f"serial {serial_hex} is revoked")


_INSERT_CERTIFICATE = insert(CertificateRecord)
_MARK_ISSUED = update(SerialRecord).where(SerialRecord.id == bindparam("b_id"), SerialRecord.status != "revoked")


def record_issued_names(connection: Connection, issuance_id: int, keys: Iterable[str], *, now: datetime) -> None:
    """The registered domains a completed issuance named (the certificates-per-domain rate limit)."""
    rows = [{"registered_domain": key, "issuance_id": issuance_id, "issued_at": now} for key in sorted(set(keys))]
    if rows:
        run(connection, _INSERT_ISSUED_NAME, rows)


_INSERT_ISSUED_NAME = insert(IssuedName)


__all__ = [
    "OrderFacts",
    "claim_order",
    "finish_order",
    "insert_issuance",
    "issuance_id_for_order",
    "issuer_state",
    "key_blocked",
    "move_issuance",
    "order_facts",
    "record_issued_names",
    "reserve_serial",
    "store_certificate",
    "valid_authorizations",
]
