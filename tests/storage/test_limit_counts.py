"""The rate limits' capped counts on both backends: refused at the limit, with the Retry-After of a full count,
however many more rows the window holds; a Limits with a limit below 1 is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from storage_pki import Hierarchy

from candor.errors import RateLimitError
from candor.policy.names import Identifier
from candor.ra.limits import Limits, check_new_order
from candor.storage import Database
from candor.storage import orders as order_store

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_a_count_capped_at_the_limit_refuses_as_a_full_count_would(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        account = order_store.add_account(session, kind="acme", created_at=START)
        for minute in range(0, 50, 10):  # five orders, ten minutes apart
            order_store.add_order(
                session, account=account, identifiers=[("dns", f"n{minute}.example.com")], profile="dv",
                issuer=hierarchy.tls, created_at=START + timedelta(minutes=minute),
                expires_at=START + timedelta(days=7), status="pending",
            )  # fmt: skip
        account_id = account.id
    now = START + timedelta(hours=1)
    names = [Identifier("dns", "more.example.com")]
    with db.reader() as connection:
        for limit in (1, 2, 5):
            with pytest.raises(RateLimitError) as refused:
                check_new_order(
                    connection, account_id=account_id, identifiers=names, now=now,
                    limits=Limits(orders_per_account=limit),
                )  # fmt: skip
            assert refused.value.retry_after == int((START + timedelta(hours=3) - now).total_seconds()) + 1
        check_new_order(
            connection, account_id=account_id, identifiers=names, now=now, limits=Limits(orders_per_account=6)
        )


@pytest.mark.parametrize("field", ["orders_per_account", "pending_authorizations_per_account", "accounts_window"])
def test_a_limit_below_one_or_an_empty_window_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: timedelta(0) if field.endswith("window") else 0})  # type: ignore[arg-type]
