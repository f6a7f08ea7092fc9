"""The ACME objects as the front end reads and moves them after newOrder (orders, authorizations, challenges,
the certificate download), in Core SQL: one statement per function, on the caller's connection (a session's,
so in its transaction). The views are plain frozen values; the front end renders them (RFC 8555 7.1) and checks
who owns them. bench/acme.py measured ``Session.get`` with its identity map and the unit-of-work flushes of these
requests at about a tenth of the server's CPU. The statements are built once, with bound parameters (see
:mod:`.issuance_sql`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from candor.storage.fastsql import run
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_acme import Challenge, OrderAuthorization
from candor.storage.models_issuance import Account, Authorization, Issuance, Order

INVALIDATING = ("invalid", "deactivated", "expired", "revoked")  # RFC 8555 7.1.6: one makes its orders invalid


@dataclass(frozen=True)
class OrderView:
    id: int
    account_id: int
    status: str
    identifiers: str  # canonical JSON (candor.storage.orders.decode_identifiers)
    profile: str
    expires_at: datetime
    replaces: str | None
    error: str | None


@dataclass(frozen=True)
class AuthorizationView:
    id: int
    account_id: int
    identifier_type: str
    identifier_value: str
    wildcard: bool
    status: str
    expires_at: datetime
    method: str | None
    caa_checked_at: datetime | None


@dataclass(frozen=True)
class ChallengeView:
    id: int
    authorization_id: int
    type: str
    token: str
    status: str
    validated_at: datetime | None
    error: str | None


_ORDER = (Order.id, Order.account_id, Order.status, Order.identifiers, Order.profile, Order.expires_at,
          Order.replaces, Order.error)  # fmt: skip
_AUTHORIZATION = (
    Authorization.id, Authorization.account_id, Authorization.identifier_type, Authorization.identifier_value,
    Authorization.wildcard, Authorization.status, Authorization.expires_at, Authorization.method,
    Authorization.caa_checked_at,
)  # fmt: skip
_CHALLENGE = (Challenge.id, Challenge.authorization_id, Challenge.type, Challenge.token, Challenge.status,
              Challenge.validated_at, Challenge.error)  # fmt: skip


_ORDER_VIEW = select(*_ORDER).where(Order.id == bindparam("b_id"))
_ORDER_AUTHORIZATIONS = (
    select(*_AUTHORIZATION)
    .join(OrderAuthorization, OrderAuthorization.authorization_id == Authorization.id)
    .where(OrderAuthorization.order_id == bindparam("b_order"))
    .order_by(Authorization.id)
)
_HAS_ISSUANCE = select(Issuance.id).where(Issuance.order_id == bindparam("b_order"))
_AUTHORIZATION_VIEW = select(*_AUTHORIZATION).where(Authorization.id == bindparam("b_id"))
_CHALLENGES = (
    select(*_CHALLENGE).where(Challenge.authorization_id == bindparam("b_authorization")).order_by(Challenge.id)
)
_CHALLENGE_VIEW = (
    select(*_CHALLENGE, *_AUTHORIZATION)
    .join(Authorization, Authorization.id == Challenge.authorization_id)
    .where(Challenge.id == bindparam("b_id"))
)
_ACCOUNT_JWK = select(Account.jwk).where(Account.id == bindparam("b_id"))
_CHALLENGE_IF = update(Challenge).where(Challenge.id == bindparam("b_id"), Challenge.status == bindparam("b_status"))
_CHALLENGE_SET = update(Challenge).where(Challenge.id == bindparam("b_id"))
_AUTHORIZATION_SET = update(Authorization).where(Authorization.id == bindparam("b_id"))
# a validation's outcome lands only on an authorization still pending: one the client deactivated meanwhile stays
# deactivated (RFC 8555 7.5.2), and is never revived as valid for reuse
_PENDING_AUTHORIZATION_SET = _AUTHORIZATION_SET.where(Authorization.status == "pending")
_PENDING_ORDERS = (
    select(Order.id)
    .join(OrderAuthorization, OrderAuthorization.order_id == Order.id)
    .where(OrderAuthorization.authorization_id == bindparam("b_authorization"), Order.status == "pending")
)
_STATUSES_OF_ORDER = (
    select(Authorization.status)
    .join(OrderAuthorization, OrderAuthorization.authorization_id == Authorization.id)
    .where(OrderAuthorization.order_id == bindparam("b_order"))
)
_ORDER_IF = update(Order).where(Order.id == bindparam("b_id"), Order.status == bindparam("b_status"))
_CERTIFICATE_OF_ORDER = (
    select(CertificateRecord.der, SerialRecord.issuer_id)
    .join(Issuance, Issuance.serial_id == CertificateRecord.serial_id)
    .join(SerialRecord, SerialRecord.id == CertificateRecord.serial_id)
    .where(Issuance.order_id == bindparam("b_order"), CertificateRecord.kind == "certificate")
)


def order_view(connection: Connection, order_id: int) -> OrderView | None:
    row = run(connection, _ORDER_VIEW, {"b_id": order_id}).one_or_none()
    return OrderView(*row) if row is not None else None


def order_authorizations(connection: Connection, order_id: int) -> list[AuthorizationView]:
    """The authorizations *order_id* rests on, oldest first."""
    return [AuthorizationView(*row) for row in run(connection, _ORDER_AUTHORIZATIONS, {"b_order": order_id})]


def has_issuance(connection: Connection, order_id: int) -> bool:
    return run(connection, _HAS_ISSUANCE, {"b_order": order_id}).first() is not None


def authorization_view(connection: Connection, authorization_id: int) -> AuthorizationView | None:
    row = run(connection, _AUTHORIZATION_VIEW, {"b_id": authorization_id}).one_or_none()
    return AuthorizationView(*row) if row is not None else None


def challenges_of(connection: Connection, authorization_id: int) -> list[ChallengeView]:
    return [ChallengeView(*row) for row in run(connection, _CHALLENGES, {"b_authorization": authorization_id})]


def challenge_view(connection: Connection, challenge_id: int) -> tuple[ChallengeView, AuthorizationView] | None:
    """A challenge and its authorization, in one statement."""
    row = run(connection, _CHALLENGE_VIEW, {"b_id": challenge_id}).one_or_none()
    if row is None:
        return None
    values: tuple[Any, ...] = tuple(row)
    return ChallengeView(*values[: len(_CHALLENGE)]), AuthorizationView(*values[len(_CHALLENGE) :])


def account_jwk(connection: Connection, account_id: int) -> str | None:
    jwk: str | None = run(connection, _ACCOUNT_JWK, {"b_id": account_id}).scalar_one_or_none()
    return jwk


def start_challenge(connection: Connection, challenge_id: int) -> bool:
    """pending -> processing (RFC 8555 7.1.6); False if another request started it first."""
    result = run(connection, _CHALLENGE_IF, {"b_id": challenge_id, "b_status": "pending", "status": "processing"})
    return bool(result.rowcount == 1)


def record_validation(
    connection: Connection,
    challenge: ChallengeView,
    *,
    method: str | None,
    checked_at: datetime,
    error: str | None,
) -> ChallengeView:
    """A validation's outcome (valid without *error*, else invalid) on the challenge and its authorization; a
    valid authorization records the BR method and, since CAA is part of every successful validation, when CAA
    was checked. The challenge as it now is."""
    status = "valid" if error is None else "invalid"
    run(
        connection, _CHALLENGE_SET, {"b_id": challenge.id, "status": status, "validated_at": checked_at, "error": error}
    )
    values: dict[str, object] = {"b_id": challenge.authorization_id, "status": status}
    if error is None:
        values.update(method=method, validated_at=checked_at, caa_checked_at=checked_at)
    run(connection, _PENDING_AUTHORIZATION_SET, values)
    return ChallengeView(challenge.id, challenge.authorization_id, challenge.type, challenge.token, status,
                         checked_at, error)  # fmt: skip


def deactivate_authorization(connection: Connection, authorization_id: int) -> None:
    run(connection, _AUTHORIZATION_SET, {"b_id": authorization_id, "status": "deactivated"})


def refresh_orders(connection: Connection, authorization_id: int) -> None:
    """RFC 8555 7.1.6 for each pending order resting on the authorization: ready once every authorization is
    valid, invalid once one is invalid, deactivated, expired or revoked."""
    for order_id in list(run(connection, _PENDING_ORDERS, {"b_authorization": authorization_id}).scalars()):
        statuses = set(run(connection, _STATUSES_OF_ORDER, {"b_order": order_id}).scalars())
        if statuses & set(INVALIDATING):
            status = "invalid"
        elif statuses == {"valid"}:
            status = "ready"
        else:
            continue
        run(connection, _ORDER_IF, {"b_id": order_id, "b_status": "pending", "status": status})


def certificate_of_order(connection: Connection, order_id: int) -> tuple[bytes, int] | None:
    """The final certificate issued for *order_id* (DER) and its issuer's id, once there is one."""
    row = run(connection, _CERTIFICATE_OF_ORDER, {"b_order": order_id}).one_or_none()
    return (row.der, row.issuer_id) if row is not None else None


def chain_below_root(connection: Connection, issuer_id: int) -> list[bytes]:
    """The issuer's certificate and those above it, the root excluded (what a server presents), DER. (Read once
    per issuer by its callers: issuers' certificates never change.)"""
    chain: list[bytes] = []
    current: int | None = issuer_id
    while current is not None:
        row = connection.execute(  # built per call: callers cache the chain per issuer
            select(Issuer.kind, Issuer.certificate_der, Issuer.parent_id).where(Issuer.id == current)
        ).one_or_none()
        if row is None or row.kind == "root":
            break
        chain.append(row.certificate_der)
        current = row.parent_id
    return chain


__all__ = [
    "AuthorizationView",
    "ChallengeView",
    "OrderView",
    "account_jwk",
    "authorization_view",
    "certificate_of_order",
    "chain_below_root",
    "challenge_view",
    "challenges_of",
    "deactivate_authorization",
    "has_issuance",
    "order_authorizations",
    "order_view",
    "record_validation",
    "refresh_orders",
    "start_challenge",
]
