"""Operator issuance: an operator orders a certificate from the command line.

On a private issuer the operator is the authority for its own names: the order's names are authorized by
operator attestation (method "operator"), recorded and audited like any other authorization. The signer
accepts that method only on an issuer marked private. On a publicly trusted issuer the operator must name an
account whose existing authorizations cover the names; nothing is attested.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from candor.audit import AuditLog
from candor.errors import CandorError, ErrorKind
from candor.policy.names import Identifier
from candor.storage import orders, repositories
from candor.storage.models_issuance import Order

ORDER_LIFETIME = timedelta(days=7)
ATTESTATION_LIFETIME = timedelta(hours=1)


def operator_order(
    session: Session,
    *,
    audit: AuditLog,
    actor: str,
    issuer_name: str,
    identifiers: tuple[Identifier, ...],
    profile: str,
    account_label: str | None,
    now: datetime,
) -> Order:
    issuer = repositories.issuer_by_name(session, issuer_name)
    if issuer is None or issuer.kind != "tls":
        raise CandorError(ErrorKind.NOT_FOUND, f"no TLS issuer named {issuer_name!r}")
    if account_label is not None:
        account = orders.account_by_label(session, account_label)
        if account is None:
            raise CandorError(ErrorKind.NOT_FOUND, f"no account labelled {account_label!r}")
    else:
        if not issuer.private:
            raise CandorError(
                ErrorKind.POLICY,
                f"issuer {issuer_name!r} is publicly trusted: name an --account whose authorizations cover the names",
            )
        label = f"operator:{actor.removeprefix('cli:')}"
        account = orders.account_by_label(session, label) or orders.add_account(
            session, kind="operator", label=label, created_at=now
        )
        for identifier in identifiers:
            orders.add_authorization(
                session,
                account=account,
                identifier=(identifier.type, identifier.value.removeprefix("*.")),
                wildcard=identifier.value.startswith("*."),
                status="valid",
                method="operator",
                validated_at=now,
                expires_at=now + ATTESTATION_LIFETIME,
                created_at=now,
            )
            audit.record(
                session,
                actor=actor,
                action="authorization.attest",
                subject=identifier.value,
                outcome="success",
                details={"issuer": issuer_name, "account": label},
            )
    order = orders.add_order(
        session,
        account=account,
        identifiers=[(i.type, i.value) for i in identifiers],
        profile=profile,
        issuer=issuer,
        created_at=now,
        expires_at=now + ORDER_LIFETIME,
    )
    audit.record(
        session,
        actor=actor,
        action="order.create",
        subject=f"order {order.id}",
        outcome="success",
        details={"issuer": issuer_name, "profile": profile, "identifiers": [i.value for i in identifiers]},
    )
    return order
