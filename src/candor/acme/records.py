"""The ACME objects as stored: finding them for their owner, and rendering them as RFC 8555 7.1 JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.acme.problems import URN, AcmeProblem, problem_type_for
from candor.errors import ErrorKind
from candor.storage import orders
from candor.storage.models_acme import Challenge, OrderAuthorization
from candor.storage.models_issuance import Account, Authorization, Issuance, Order


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def owned(session: Session, model: type[Any], object_id: int, account: Account) -> Any:
    """The object if it exists and belongs to *account*; 404 otherwise, so that account A cannot even learn
    whether account B's order, authorization or challenge exists (RFC 8555 10.4)."""
    found = session.get(model, object_id)
    account_id = getattr(found, "account_id", None)
    if isinstance(found, Challenge):
        parent = session.get(Authorization, found.authorization_id)
        account_id = parent.account_id if parent is not None else None
    if found is None or account_id != account.id:
        raise AcmeProblem("malformed", f"no such {model.__name__.lower()}", 404)
    return found


def order_authorizations(session: Session, order: Order) -> list[Authorization]:
    query = (
        select(Authorization)
        .join(OrderAuthorization, OrderAuthorization.authorization_id == Authorization.id)
        .where(OrderAuthorization.order_id == order.id)
        .order_by(Authorization.id)
    )
    return list(session.scalars(query))


def challenges_of(session: Session, authorization: Authorization) -> list[Challenge]:
    query = select(Challenge).where(Challenge.authorization_id == authorization.id).order_by(Challenge.id)
    return list(session.scalars(query))


def account_json(account: Account, base: str) -> dict[str, Any]:
    return {
        "status": account.status,
        "contact": json.loads(account.contact),
        "orders": f"{base}/acct/{account.id}/orders",
    }


def challenge_json(challenge: Challenge, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": challenge.type,
        "url": f"{base}/chall/{challenge.id}",
        "status": challenge.status,
        "token": challenge.token,
    }
    if challenge.validated_at is not None:
        body["validated"] = rfc3339(challenge.validated_at)
    if challenge.error:
        body["error"] = json.loads(challenge.error)
    return body


def authorization_json(session: Session, authorization: Authorization, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": {"type": authorization.identifier_type, "value": authorization.identifier_value},
        "status": authorization.status,
        "expires": rfc3339(authorization.expires_at),
        "challenges": [challenge_json(c, base) for c in challenges_of(session, authorization)],
    }
    if authorization.wildcard:
        body["wildcard"] = True
    return body


def order_json(session: Session, order: Order, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": order.status,
        "expires": rfc3339(order.expires_at),
        "identifiers": [{"type": t, "value": v} for t, v in orders.decode_identifiers(order.identifiers)],
        "authorizations": [f"{base}/authz/{a.id}" for a in order_authorizations(session, order)],
        "finalize": f"{base}/order/{order.id}/finalize",
        "profile": order.profile,
    }
    if order.status == "valid" and orders.issuance_for_order(session, order.id) is not None:
        body["certificate"] = f"{base}/cert/{order.id}"
    if order.replaces:
        body["replaces"] = order.replaces  # RFC 9773 5
    if order.error:
        stored = json.loads(order.error)
        acme_type, status = problem_type_for(ErrorKind(stored["kind"]))
        acme_type, status = stored.get("type", acme_type), stored.get("status", status)
        body["error"] = {"type": URN + acme_type, "detail": stored["detail"], "status": status}
    return body


def issuance_state(session: Session, order: Order) -> Issuance | None:
    return orders.issuance_for_order(session, order.id)


def orders_with(session: Session, authorization: Authorization) -> list[Order]:
    query = (
        select(Order)
        .join(OrderAuthorization, OrderAuthorization.order_id == Order.id)
        .where(OrderAuthorization.authorization_id == authorization.id)
    )
    return list(session.scalars(query))


def refresh_order(session: Session, order: Order) -> None:
    """RFC 8555 7.1.6: pending -> ready when every authorization is valid; invalid when one is not."""
    if order.status != "pending":
        return
    statuses = {a.status for a in order_authorizations(session, order)}
    if statuses & {"invalid", "deactivated", "expired", "revoked"}:
        order.status = "invalid"
    elif statuses == {"valid"}:
        order.status = "ready"
    session.flush()
