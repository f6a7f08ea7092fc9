"""Core SQL for the ACME requests every order makes: one statement per function, on the caller's connection (a
session's, so in its transaction), without the ORM's unit of work. bench/acme.py measured the ORM's flushes,
savepoints and identity map at about a third of the server's CPU; these tables have no unique key a request
could collide on except random tokens, so an insert needs no savepoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, insert, select

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
    statement = insert(Order).values(
        account_id=account_id, status=status, identifiers=encode_identifiers(identifiers), profile=profile,
        issuer_id=issuer_id, created_at=created_at, expires_at=expires_at, updated_at=created_at, replaces=replaces,
    )  # fmt: skip
    return int(connection.execute(statement.returning(Order.id)).scalar_one())


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
    statement = insert(Authorization).values(
        account_id=account_id, identifier_type=identifier[0], identifier_value=identifier[1], wildcard=wildcard,
        status="pending", expires_at=expires_at, created_at=created_at,
    )  # fmt: skip
    return int(connection.execute(statement.returning(Authorization.id)).scalar_one())


def insert_challenges(connection: Connection, authorization_id: int, challenges: Sequence[tuple[str, str]]) -> None:
    """Pending challenges, each (type, token), of one authorization."""
    rows = [
        {"authorization_id": authorization_id, "type": t, "token": token, "status": "pending"}
        for t, token in challenges
    ]
    connection.execute(insert(Challenge), rows)


def link_authorizations(connection: Connection, order_id: int, authorization_ids: Sequence[int]) -> None:
    """The authorizations *order_id* rests on."""
    rows = [{"order_id": order_id, "authorization_id": a} for a in authorization_ids]
    connection.execute(insert(OrderAuthorization), rows)


def reusable_authorizations(
    connection: Connection, *, account_id: int, values: Sequence[str]
) -> Sequence[Row[int, str, bool, datetime, datetime | None, str | None]]:
    """The account's valid authorizations for any of *values*: (id, value, wildcard, expires_at, validated_at,
    method); the caller checks the times and the method."""
    query = select(
        Authorization.id, Authorization.identifier_value, Authorization.wildcard, Authorization.expires_at,
        Authorization.validated_at, Authorization.method,
    ).where(
        Authorization.account_id == account_id,
        Authorization.identifier_value.in_(sorted(set(values))),
        Authorization.status == "valid",
    )  # fmt: skip
    return connection.execute(query).all()
