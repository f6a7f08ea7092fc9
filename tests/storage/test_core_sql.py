"""The Core SQL of the hot paths (issuance_sql, acme_views) keeps the guarantees the ORM code had, on both
backends: a serial, an order, a stage and a challenge are each claimed by exactly one caller, a taken serial
leaves the transaction usable for the next draw, and orders follow their authorizations (RFC 8555 7.1.6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage_pki import Hierarchy

from candor.storage import Database, acme_sql, acme_views, issuance_sql, orders
from candor.storage.models_issuance import Order

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _order(db: Database, hierarchy: Hierarchy, names: list[str], *, status: str = "ready") -> tuple[int, int]:
    """An account and an order of it for *names*: (account id, order id)."""
    with db.session() as session:
        account = orders.add_account(session, kind="acme", label=f"acct-{names[0]}", created_at=NOW)
        order = orders.add_order(
            session, account=account, identifiers=[("dns", n) for n in names], profile="dv",
            issuer=session.merge(hierarchy.tls), created_at=NOW, expires_at=NOW + timedelta(days=7), status=status,
        )  # fmt: skip
        return account.id, order.id


def _pending_authorization(db: Database, hierarchy: Hierarchy, name: str) -> tuple[int, int]:
    """A pending order for *name* with one pending authorization and its http-01 challenge: (order id, authz id)."""
    account_id, order_id = _order(db, hierarchy, [name], status="pending")
    with db.session() as session:
        connection = session.connection()
        authorization_id = acme_sql.insert_authorization(
            connection, account_id=account_id, identifier=("dns", name), wildcard=False,
            created_at=NOW, expires_at=NOW + timedelta(days=7),
        )  # fmt: skip
        acme_sql.link_authorizations(connection, order_id, [authorization_id])
        acme_sql.insert_challenges(connection, authorization_id, [("http-01", f"token-{name}")])
    return order_id, authorization_id


def test_a_taken_serial_is_reported_and_the_transaction_goes_on(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        connection = session.connection()
        first = issuance_sql.reserve_serial(
            connection, issuer_id=hierarchy.tls.id, serial_hex="0123", order_ref=None, created_at=NOW
        )
        again = issuance_sql.reserve_serial(
            connection, issuer_id=hierarchy.tls.id, serial_hex="0123", order_ref=None, created_at=NOW
        )
        other_issuer = issuance_sql.reserve_serial(
            connection, issuer_id=hierarchy.other.id, serial_hex="0123", order_ref=None, created_at=NOW
        )
        next_draw = issuance_sql.reserve_serial(
            connection, issuer_id=hierarchy.tls.id, serial_hex="4567", order_ref=None, created_at=NOW
        )
    assert first is not None and again is None  # UNIQUE(issuer_id, serial_hex)
    assert other_issuer is not None and next_draw is not None  # and PostgreSQL's transaction was not aborted


def test_an_order_and_an_issuance_stage_are_claimed_once(db: Database, hierarchy: Hierarchy) -> None:
    _, order_id = _order(db, hierarchy, ["claim.example.com"])
    with db.session() as session:
        connection = session.connection()
        assert issuance_sql.claim_order(connection, order_id, now=NOW)
        assert not issuance_sql.claim_order(connection, order_id, now=NOW)  # processing, not ready
        serial_id = issuance_sql.reserve_serial(
            connection, issuer_id=hierarchy.tls.id, serial_hex="0abc", order_ref=str(order_id), created_at=NOW
        )
        assert serial_id is not None
        facts = issuance_sql.order_facts(connection, order_id)
        assert facts is not None and facts.status == "processing"
        issuance_id = issuance_sql.insert_issuance(
            connection, serial_id=serial_id, order=facts, precert_tbs=b"tbs", precert_tbs_sha256="00" * 32, now=NOW
        )
        assert issuance_sql.issuance_id_for_order(connection, order_id) == issuance_id
        assert issuance_sql.move_issuance(connection, issuance_id, "intent", "precertificate", now=NOW)
        assert not issuance_sql.move_issuance(connection, issuance_id, "intent", "precertificate", now=NOW)


def test_a_challenge_is_started_once_and_orders_follow_their_authorizations(db: Database, hierarchy: Hierarchy) -> None:
    account_id, order_id = _order(db, hierarchy, ["a.example.com", "b.example.com"], status="pending")
    with db.session() as session:
        connection = session.connection()
        expires = NOW + timedelta(days=7)
        authorizations = [
            acme_sql.insert_authorization(
                connection,
                account_id=account_id,
                identifier=("dns", n),
                wildcard=False,
                created_at=NOW,
                expires_at=expires,
            )
            for n in ("a.example.com", "b.example.com")
        ]
        acme_sql.link_authorizations(connection, order_id, authorizations)
        for number, authorization_id in enumerate(authorizations):
            acme_sql.insert_challenges(connection, authorization_id, [("http-01", f"token-{number}")])
    with db.session() as session:
        connection = session.connection()
        first, second = (acme_views.challenges_of(connection, a)[0] for a in authorizations)
        assert acme_views.start_challenge(connection, first.id)
        assert not acme_views.start_challenge(connection, first.id)  # another request got there first
        acme_views.record_validation(connection, first, method="3.2.2.4.19", checked_at=NOW, error=None)
        acme_views.refresh_orders(connection, first.authorization_id)
        assert session.get(Order, order_id).status == "pending"  # type: ignore[union-attr]  # one still pending
        acme_views.record_validation(connection, second, method="3.2.2.4.19", checked_at=NOW, error=None)
        acme_views.refresh_orders(connection, second.authorization_id)
        view = acme_views.order_view(connection, order_id)
        assert view is not None and view.status == "ready"
        authorization = acme_views.authorization_view(connection, first.authorization_id)
        assert authorization is not None
        assert (authorization.status, authorization.method, authorization.caa_checked_at) == (
            "valid", "3.2.2.4.19", NOW
        )  # fmt: skip


def test_a_validation_finishing_after_the_client_deactivated_the_authorization_does_not_revive_it(
    db: Database, hierarchy: Hierarchy
) -> None:
    _order_id, authorization_id = _pending_authorization(db, hierarchy, "late.example.com")
    with db.session() as session:
        connection = session.connection()
        (challenge,) = acme_views.challenges_of(connection, authorization_id)
        assert acme_views.start_challenge(connection, challenge.id)
        acme_views.deactivate_authorization(connection, authorization_id)  # while the validation runs
        acme_views.record_validation(connection, challenge, method="3.2.2.4.19", checked_at=NOW, error=None)
        authorization = acme_views.authorization_view(connection, authorization_id)
        assert authorization is not None and authorization.status == "deactivated"


def test_an_invalid_authorization_makes_its_pending_orders_invalid(db: Database, hierarchy: Hierarchy) -> None:
    order_id, authorization_id = _pending_authorization(db, hierarchy, "bad.example.com")
    with db.session() as session:
        connection = session.connection()
        [challenge] = acme_views.challenges_of(connection, authorization_id)
        acme_views.record_validation(connection, challenge, method=None, checked_at=NOW, error='{"detail": "no"}')
        acme_views.refresh_orders(connection, authorization_id)
        view = acme_views.order_view(connection, order_id)
    assert view is not None and view.status == "invalid"
