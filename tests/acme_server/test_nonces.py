"""RFC 8555 6.5: nonces are single use across processes, expire, and unknown ones are refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from candor.acme.nonces import NonceStore
from candor.clock import FakeClock
from candor.storage import Database


def test_a_nonce_is_good_once(db: Database) -> None:
    store = NonceStore(db, FakeClock())
    nonce = store.issue()
    assert len(nonce) == 22 and "=" not in nonce
    assert store.redeem(nonce)
    assert not store.redeem(nonce)


def test_nonces_are_unique(db: Database) -> None:
    store = NonceStore(db, FakeClock())
    assert len({store.issue() for _ in range(500)}) == 500


def test_an_expired_nonce_is_refused_and_pruned(db: Database) -> None:
    clock = FakeClock()
    store = NonceStore(db, clock, lifetime=timedelta(minutes=5))
    old = store.issue()
    clock.advance(timedelta(minutes=5))
    fresh = store.issue()
    assert not store.redeem(old)  # expired at exactly its lifetime
    assert store.prune() == 1  # the expired one goes; the fresh one stays
    assert store.redeem(fresh)
    assert store.prune() == 0


def test_unknown_or_malformed_nonces_are_refused(db: Database) -> None:
    store = NonceStore(db, FakeClock())
    for value in ["", "x" * 22, "not a nonce!!", "A" * 200, "=" * 22]:
        assert not store.redeem(value)


def test_a_nonce_raced_by_many_threads_is_accepted_once(db: Database) -> None:
    store = NonceStore(db, FakeClock())
    nonce = store.issue()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.redeem(nonce), range(16)))
    assert results.count(True) == 1


def test_issuing_sweeps_expired_nonces_so_the_table_stays_bounded(db: Database) -> None:
    from sqlalchemy import func, select

    from candor.acme.nonces import PRUNE_EVERY
    from candor.storage.models_acme import Nonce

    clock = FakeClock()
    store = NonceStore(db, clock, lifetime=timedelta(minutes=5))
    for _ in range(PRUNE_EVERY - 1):
        store.issue()
    clock.advance(timedelta(minutes=10))  # all of them expired, never redeemed
    store.issue()  # the PRUNE_EVERY-th issue sweeps
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Nonce)) == 1


def test_with_group_commit_a_nonce_raced_by_many_requests_is_accepted_once(db: Database) -> None:
    """`candor serve`'s store: concurrent exchanges share transactions (one DELETE ... RETURNING, one insert); a
    nonce presented by several requests at once, even in one batch, is good for exactly one of them, and every
    request gets a fresh nonce of its own that is good once."""
    store = NonceStore(db, FakeClock(), group_commit=True)
    nonce = store.issue()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.exchange(nonce), range(32)))
    assert [used for used, _ in results].count(True) == 1
    fresh = [issued for _, issued in results]
    assert len(set(fresh)) == 32
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(lambda value: store.exchange(value)[0], fresh))
    assert not store.redeem(fresh[0])
