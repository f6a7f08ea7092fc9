"""Rate limits (issue 4, RA rules): counted from the records themselves, so every front-end node sees the same
counts. A refusal says which limit, and when the oldest counted event leaves the window (Retry-After)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from candor.errors import RateLimitError
from candor.policy.names import Identifier, rate_limit_key
from candor.storage.fastsql import run
from candor.storage.models_acme import Challenge
from candor.storage.models_issuance import Account, Authorization, IssuedName, Order


@dataclass(frozen=True)
class Limits:
    orders_per_account: int = 300
    orders_window: timedelta = timedelta(hours=3)
    pending_authorizations_per_account: int = 1000
    certificates_per_registered_domain: int = 50
    certificates_window: timedelta = timedelta(days=7)
    failed_validations_per_name: int = 5
    failed_validations_window: timedelta = timedelta(hours=1)
    accounts_per_address: int = 10
    accounts_window: timedelta = timedelta(hours=3)

    def __post_init__(self) -> None:
        """Every limit at least 1 and every window positive (``[acme.limits]`` holds the configured ones to this):
        the counts stop at the limit, so a limit of 0 could not date its Retry-After."""
        for name, value in vars(self).items():
            if isinstance(value, int) and value < 1:
                raise ValueError(f"rate limit {name} must be at least 1, not {value}")
            if isinstance(value, timedelta) and value <= timedelta(0):
                raise ValueError(f"rate limit window {name} must be positive, not {value}")


def rate_keys(identifiers: Iterable[Identifier]) -> list[str]:
    return sorted({rate_limit_key(i) for i in identifiers})


def _refuse(what: str, limit: int, window: timedelta, oldest: datetime | None, now: datetime) -> RateLimitError:
    retry = int(((oldest + window) - now).total_seconds()) + 1 if oldest is not None else int(window.total_seconds())
    hours = window.total_seconds() / 3600
    return RateLimitError(f"rate limit: {what} (at most {limit} per {hours:g} h)", retry_after=retry)


def _window(query: Any, column: Any) -> Any:
    """count(*) and the oldest *column* of *query*'s rows newer than :since, counting at most :cap of them (the
    oldest first, so the oldest is the window's): a limit only needs to know whether the count reached it, and an
    uncapped count reads every row of the window, which for a large subscriber is every order or certificate of
    the week. Built once (building a statement and its cache key costs several times executing a built one, and
    these run on every newOrder)."""
    counted = (
        query.where(column > bindparam("since"))
        .with_only_columns(column.label("at"))
        .order_by(column)
        .limit(bindparam("cap"))
        .subquery()
    )
    return select(func.count(), func.min(counted.c.at))


_ACCOUNTS_FROM = _window(select(Account).where(Account.created_ip == bindparam("address")), Account.created_at)
_ORDERS_OF = _window(select(Order).where(Order.account_id == bindparam("account_id")), Order.created_at)
_PENDING = (
    select(Authorization.id)
    .where(
        Authorization.account_id == bindparam("account_id"),
        Authorization.status == "pending",
        Authorization.expires_at > bindparam("now"),
    )
    .limit(bindparam("cap"))
    .subquery()
)
_PENDING_OF = select(func.count()).select_from(_PENDING)  # counting at most :cap, as _window does
_ISSUED_FOR = _window(select(IssuedName).where(IssuedName.registered_domain == bindparam("key")), IssuedName.issued_at)
_FAILED_FOR = _window(
    select(Challenge)
    .join(Authorization, Authorization.id == Challenge.authorization_id)
    .where(Authorization.identifier_value == bindparam("name"), Challenge.status == "invalid"),
    Challenge.validated_at,
)


def _connection(target: Session | Connection) -> Connection:
    return target.connection() if isinstance(target, Session) else target


def _count_since(session: Session | Connection, query: Any, params: dict[str, Any]) -> tuple[int, datetime | None]:
    row = run(_connection(session), query, params).one()
    return int(row[0]), row[1]


def check_new_account(session: Session | Connection, *, address: str | None, now: datetime, limits: Limits) -> None:
    if address is None:
        return
    since, cap = now - limits.accounts_window, limits.accounts_per_address
    count, oldest = _count_since(session, _ACCOUNTS_FROM, {"address": address, "since": since, "cap": cap})
    if count >= limits.accounts_per_address:
        raise _refuse(f"new accounts from {address}", limits.accounts_per_address, limits.accounts_window, oldest, now)


def check_new_order(
    session: Session | Connection, *, account_id: int, identifiers: Sequence[Identifier], now: datetime, limits: Limits
) -> None:
    since, cap = now - limits.orders_window, limits.orders_per_account
    count, oldest = _count_since(session, _ORDERS_OF, {"account_id": account_id, "since": since, "cap": cap})
    if count >= limits.orders_per_account:
        raise _refuse("new orders for this account", limits.orders_per_account, limits.orders_window, oldest, now)
    cap = limits.pending_authorizations_per_account + 1  # enough to tell whether one more name is over
    pending = run(_connection(session), _PENDING_OF, {"account_id": account_id, "now": now, "cap": cap}).scalar()
    if (pending or 0) + len(identifiers) > limits.pending_authorizations_per_account:
        most = limits.pending_authorizations_per_account
        raise RateLimitError(f"rate limit: pending authorizations for this account (at most {most})", retry_after=3600)
    for key in rate_keys(identifiers):
        since, cap = now - limits.certificates_window, limits.certificates_per_registered_domain
        count, oldest = _count_since(session, _ISSUED_FOR, {"key": key, "since": since, "cap": cap})
        if count >= limits.certificates_per_registered_domain:
            raise _refuse(
                f"certificates for {key}",
                limits.certificates_per_registered_domain,
                limits.certificates_window,
                oldest,
                now,
            )


def check_validation_attempt(session: Session | Connection, *, name: str, now: datetime, limits: Limits) -> None:
    since, cap = now - limits.failed_validations_window, limits.failed_validations_per_name
    count, oldest = _count_since(session, _FAILED_FOR, {"name": name, "since": since, "cap": cap})
    if count >= limits.failed_validations_per_name:
        raise _refuse(
            f"failed validations for {name}",
            limits.failed_validations_per_name,
            limits.failed_validations_window,
            oldest,
            now,
        )
