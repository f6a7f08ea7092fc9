"""Core SQL for the ACME requests every order makes: one statement per function, on the caller's connection (a
session's, so in its transaction), without the ORM's unit of work. bench/acme.py measured the ORM's flushes,
savepoints and identity map at about a third of the server's CPU; these tables have no unique key a request
could collide on except random tokens, so an insert needs no savepoint. The statements are built once, with bound
parameters (building one per call cost several times its execution; see :mod:`.issuance_sql`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, insert, select

from candor.storage.fastsql import rows_for_each, run
from candor.storage.models_acme import Challenge, OrderAuthorization
from candor.storage.models_issuance import Authorization, Order
from candor.storage.orders import IdentifierPair, encode_identifiers


def insert_order(
    connection: Connection,
    *,
    account_id: int,
    identifiers: Sequence[IdentifierPair],
    profile: str,
    issuer_id: int,
    status: str,
    created_at: datetime,
    expires_at: datetime,
    replaces: str | None,
) -> int:
    """A new order; its id."""
    values = {
        "account_id": account_id, "status": status, "identifiers": encode_identifiers(identifiers),
        "profile": profile, "issuer_id": issuer_id, "created_at": created_at, "expires_at": expires_at,
        "updated_at": created_at, "replaces": replaces,
    }  # fmt: skip
    return int(run(connection, _INSERT_ORDER, values).scalar_one())


def insert_authorization(
    connection: Connection,
    *,
    account_id: int,
    identifier: IdentifierPair,
    wildcard: bool,
    created_at: datetime,
    expires_at: datetime,
) -> int:
    """A new pending authorization; its id."""
    values = {
        "account_id": account_id, "identifier_type": identifier[0], "identifier_value": identifier[1],
        "wildcard": wildcard, "status": "pending", "expires_at": expires_at, "created_at": created_at,
    }  # fmt: skip
    return int(run(connection, _INSERT_AUTHORIZATION, values).scalar_one())


def insert_challenges(connection: Connection, authorization_id: int, challenges: Sequence[tuple[str, str]]) -> None:
    """Pending challenges, each (type, token), of one authorization."""
    rows = [
        {"authorization_id": authorization_id, "type": t, "token": token, "status": "pending"}
        for t, token in challenges
    ]
    run(connection, _INSERT_CHALLENGE, rows)


def link_authorizations(connection: Connection, order_id: int, authorization_ids: Sequence[int]) -> None:
    """The authorizations *order_id* rests on."""
    rows = [{"order_id": order_id, "authorization_id": a} for a in authorization_ids]
    run(connection, _INSERT_LINK, rows)


def reusable_authorizations(
    connection: Connection, *, account_id: int, values: Sequence[str]
) -> Sequence[Row[int, str, bool, datetime, datetime | None, str | None]]:
    """The account's valid authorizations for any of *values*: (id, value, wildcard, expires_at, validated_at,
    method); the caller checks the times and the method."""
    wanted = sorted(set(values))
    return rows_for_each(connection, _REUSABLE_ONE, _REUSABLE, {"b_account": account_id}, "b_values", wanted)


_INSERT_ORDER = insert(Order).returning(Order.id)
_INSERT_AUTHORIZATION = insert(Authorization).returning(Authorization.id)
_INSERT_CHALLENGE = insert(Challenge)
_INSERT_LINK = insert(OrderAuthorization)
_REUSABLE_BASE = select(
    Authorization.id, Authorization.identifier_value, Authorization.wildcard, Authorization.expires_at,
    Authorization.validated_at, Authorization.method,
).where(Authorization.account_id == bindparam("b_account"), Authorization.status == "valid")  # fmt: skip
_REUSABLE = _REUSABLE_BASE.where(Authorization.identifier_value.in_(bindparam("b_values", expanding=True)))
_REUSABLE_ONE = _REUSABLE_BASE.where(Authorization.identifier_value == bindparam("b_values"))
