"""The ACME objects as stored: finding them for their owner, and rendering them as RFC 8555 7.1 JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from candor.acme.problems import URN, AcmeProblem, problem_type_for
from candor.errors import ErrorKind
from candor.storage import orders
from candor.storage.acme_views import AuthorizationView, ChallengeView, OrderView
from candor.storage.models_issuance import Account


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def require_owner(found: OrderView | AuthorizationView | None, account_id: int, what: str) -> None:
    """404 unless *found* exists and belongs to *account_id*, so that account A cannot even learn whether account
    B's order, authorization or challenge exists (RFC 8555 10.4)."""
    if found is None or found.account_id != account_id:
        raise AcmeProblem("malformed", f"no such {what}", 404)


def account_json(account: Account, base: str) -> dict[str, Any]:
    return {
        "status": account.status,
        "contact": json.loads(account.contact),
        "orders": f"{base}/acct/{account.id}/orders",
    }


def challenge_json(challenge: ChallengeView, base: str) -> dict[str, Any]:
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


def authorization_json(
    authorization: AuthorizationView, challenges: Sequence[ChallengeView], base: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": {"type": authorization.identifier_type, "value": authorization.identifier_value},
        "status": authorization.status,
        "expires": rfc3339(authorization.expires_at),
        "challenges": [challenge_json(c, base) for c in challenges],
    }
    if authorization.wildcard:
        body["wildcard"] = True
    return body


def order_json(order: OrderView, authorization_ids: Sequence[int], base: str, *, issued: bool) -> dict[str, Any]:
    """RFC 8555 7.1.3; *issued*: a certificate is stored for the order (its URL is given once it is valid)."""
    body: dict[str, Any] = {
        "status": order.status,
        "expires": rfc3339(order.expires_at),
        "identifiers": [{"type": t, "value": v} for t, v in orders.decode_identifiers(order.identifiers)],
        "authorizations": [f"{base}/authz/{a}" for a in authorization_ids],
        "finalize": f"{base}/order/{order.id}/finalize",
        "profile": order.profile,
    }
    if order.status == "valid" and issued:
        body["certificate"] = f"{base}/cert/{order.id}"
    if order.replaces:
        body["replaces"] = order.replaces  # RFC 9773 5
    if order.error:
        stored = json.loads(order.error)
        acme_type, status = problem_type_for(ErrorKind(stored["kind"]))
        acme_type, status = stored.get("type", acme_type), stored.get("status", status)
        body["error"] = {"type": URN + acme_type, "detail": stored["detail"], "status": status}
    return body
