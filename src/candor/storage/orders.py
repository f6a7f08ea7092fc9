"""Repository functions for accounts, authorizations, orders, issuance records and blocked keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from candor.clock import ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.policy.names import Identifier, rate_limit_key
from candor.storage.dberrors import insert_unique
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_issuance import (
    ACCOUNT_KINDS,
    IDENTIFIER_TYPES,
    Account,
    Authorization,
    BlockedKey,
    Issuance,
    IssuedName,
    Order,
)

IdentifierPair = tuple[str, str]  # (type, normalised value)


def _utc(moment: datetime) -> datetime:
    try:
        return ensure_utc(moment)
    except (ValueError, AttributeError):
        raise CandorError(ErrorKind.INTERNAL, "naive datetime refused: pass timezone-aware UTC times") from None


def encode_identifiers(identifiers: Iterable[IdentifierPair]) -> str:
    """The canonical form stored with an order: sorted, unique, compact JSON."""
    unique = sorted(set(identifiers))
    for kind, _value in unique:
        if kind not in IDENTIFIER_TYPES:
            raise CandorError(ErrorKind.POLICY, f"identifier type {kind!r} is not dns or ip")
    return json.dumps([{"type": k, "value": v} for k, v in unique], separators=(",", ":"))


def decode_identifiers(text: str) -> list[IdentifierPair]:
    return [(item["type"], item["value"]) for item in json.loads(text)]


# --- accounts --------------------------------------------------------------------------------------------


def add_account(
    session: Session,
    *,
    kind: str,
    created_at: datetime,
    label: str | None = None,
    key_thumbprint: str | None = None,
    contact: Sequence[str] = (),
) -> Account:
    if kind not in ACCOUNT_KINDS:
        raise CandorError(ErrorKind.POLICY, f"account kind {kind!r} is not one of {', '.join(ACCOUNT_KINDS)}")
    account = Account(
        kind=kind,
        label=label,
        key_thumbprint=key_thumbprint,
        contact=json.dumps(list(contact)),
        status="valid",
        created_at=_utc(created_at),
    )
    insert_unique(session, account, {"uq_accounts_label": f"an account labelled {label!r}"})
    return account


def account_by_label(session: Session, label: str) -> Account | None:
    return session.scalars(select(Account).where(Account.label == label)).one_or_none()


# --- authorizations --------------------------------------------------------------------------------------


def add_authorization(
    session: Session,
    *,
    account: Account,
    identifier: IdentifierPair,
    status: str,
    expires_at: datetime,
    created_at: datetime,
    wildcard: bool = False,
    method: str | None = None,
    validated_at: datetime | None = None,
) -> Authorization:
    authorization = Authorization(
        account_id=account.id,
        identifier_type=identifier[0],
        identifier_value=identifier[1],
        wildcard=wildcard,
        status=status,
        method=method,
        validated_at=_utc(validated_at) if validated_at is not None else None,
        expires_at=_utc(expires_at),
        created_at=_utc(created_at),
    )
    insert_unique(session, authorization)
    return authorization


def candidate_authorizations(session: Session, *, account_id: int, values: Iterable[str]) -> list[Authorization]:
    """Every valid authorization of the account for any of *values* (the caller checks time and method)."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    query = select(Authorization).where(
        Authorization.account_id == account_id,
        Authorization.identifier_value.in_(wanted),
        Authorization.status == "valid",
    )
    return list(session.scalars(query))


# --- orders ----------------------------------------------------------------------------------------------


def add_order(
    session: Session,
    *,
    account: Account,
    identifiers: Iterable[IdentifierPair],
    profile: str,
    issuer: Issuer,
    created_at: datetime,
    expires_at: datetime,
    status: str = "ready",
) -> Order:
    order = Order(
        account_id=account.id,
        status=status,
        identifiers=encode_identifiers(identifiers),
        profile=profile,
        issuer_id=issuer.id,
        created_at=_utc(created_at),
        expires_at=_utc(expires_at),
        updated_at=_utc(created_at),
    )
    insert_unique(session, order)
    return order


def claim_order(session: Session, order_id: int, *, now: datetime) -> Order | None:
    """Move a ready order to processing; None if another request got there first (or it is not ready).

    A conditional UPDATE is the lock: of two concurrent finalizations exactly one sees a row change.
    """
    result = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "ready")
        .values(status="processing", updated_at=_utc(now))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    order = session.get(Order, order_id, populate_existing=True)
    return order


def finish_order(session: Session, order: Order, *, status: str, now: datetime, error: str | None = None) -> None:
    order.status = status
    order.error = error
    order.updated_at = _utc(now)
    session.flush()


# --- issuance records ------------------------------------------------------------------------------------


def issuance_for_order(session: Session, order_id: int) -> Issuance | None:
    return session.scalars(select(Issuance).where(Issuance.order_id == order_id)).one_or_none()


def unfinished_issuances(session: Session) -> list[Issuance]:
    query = select(Issuance).where(Issuance.state.in_(("intent", "precertificate", "final-intent")))
    return list(session.scalars(query.order_by(Issuance.id)))


def add_issuance(
    session: Session,
    *,
    serial: SerialRecord,
    order: Order,
    profile: str,
    precert_tbs: bytes,
    precert_tbs_sha256: str,
    now: datetime,
) -> Issuance:
    issuance = Issuance(
        serial_id=serial.id,
        order_id=order.id,
        account_id=order.account_id,
        profile=profile,
        state="intent",
        precert_tbs=precert_tbs,
        precert_tbs_sha256=precert_tbs_sha256,
        created_at=_utc(now),
        updated_at=_utc(now),
    )
    insert_unique(session, issuance, {"uq_issuances_order_id": f"an issuance for order {order.id}"})
    return issuance


# --- blocked keys ----------------------------------------------------------------------------------------


def block_key(session: Session, *, spki_sha256: str, reason: str, source: str, created_at: datetime) -> None:
    """Add a key to the blocked list; a key already there stays as first recorded."""
    if session.get(BlockedKey, spki_sha256) is None:
        blocked = BlockedKey(spki_sha256=spki_sha256, reason=reason, source=source, created_at=_utc(created_at))
        try:
            insert_unique(session, blocked)
        except CandorError as exc:
            if exc.kind is not ErrorKind.CONFLICT:  # a concurrent writer blocked it first: fine
                raise


def is_key_blocked(session: Session, spki_sha256: str) -> bool:
    return session.get(BlockedKey, spki_sha256) is not None


def release_stale_orders(session: Session, *, older_than: datetime) -> list[int]:
    """Orders left in processing with no issuance record (a crash before the intent was stored): nothing was
    signed for them, so they go back to ready."""
    stale = session.scalars(
        select(Order).where(
            Order.status == "processing",
            Order.updated_at < _utc(older_than),
            ~select(Issuance.id).where(Issuance.order_id == Order.id).exists(),
        )
    ).all()
    for order in stale:
        order.status = "ready"
    session.flush()
    return [order.id for order in stale]


def find_certificate_der(session: Session, serial_id: int, kind: str) -> bytes | None:
    record = session.scalars(
        select(CertificateRecord).where(CertificateRecord.serial_id == serial_id, CertificateRecord.kind == kind)
    ).one_or_none()
    return record.der if record is not None else None


def certificate_der(session: Session, serial_id: int, kind: str) -> bytes:
    der = find_certificate_der(session, serial_id, kind)
    if der is None:
        raise CandorError(ErrorKind.NOT_FOUND, f"no {kind} stored for serial record {serial_id}")
    return der


def find_certificate_by_der(session: Session, der: bytes) -> tuple[SerialRecord, Issuer] | None:
    """The serial (and its issuer) of a certificate or precertificate stored with exactly these bytes."""
    record = session.scalars(
        select(CertificateRecord).where(CertificateRecord.fingerprint_sha256 == hashlib.sha256(der).hexdigest())
    ).one_or_none()
    if record is None:
        return None
    serial = record.serial
    return serial, serial.issuer


def issuance_for_serial(session: Session, serial_id: int) -> Issuance | None:
    return session.scalars(select(Issuance).where(Issuance.serial_id == serial_id)).one_or_none()


def record_issued_names(session: Session, order: Order, *, issuance_id: int, now: datetime) -> None:
    """Note the registered domains a completed issuance named (the certificates-per-domain rate limit)."""
    keys = {rate_limit_key(Identifier(kind, value)) for kind, value in decode_identifiers(order.identifiers)}  # type: ignore[arg-type]
    for key in sorted(keys):
        session.add(IssuedName(registered_domain=key, issuance_id=issuance_id, issued_at=_utc(now)))
    session.flush()
